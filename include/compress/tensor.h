// Reading and writing onnx::TensorProto: one reader for typed fields and raw_data, one writer
// (raw_data, little-endian). The readers also see payloads that Model::load left in their files.
#pragma once

#include <onnx/onnx_pb.h>

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace compress {

using onnx::TensorProto;

/// Bits per element of an ONNX data type (4 for INT4/UINT4); throws Error(kBadInput) for unknown types.
int dtype_bits(int32_t data_type);
/// Short lowercase name used in reports: "float32", "float16", "int8", "int4", "bool", ...
std::string dtype_name(int32_t data_type);
/// True for FLOAT, FLOAT16, DOUBLE and BFLOAT16.
bool is_float_dtype(int32_t data_type);

/// Product of dims (1 for a scalar).
int64_t element_count(const TensorProto& t);
/// Bytes the elements occupy when densely packed: ceil(count * bits / 8).
int64_t packed_bytes(const TensorProto& t);
/// Throws Error(kBadInput) naming the tensor when its stored data does not match its dims and type
/// (wrong raw_data length, wrong typed-field count, unknown data type, unresolved external data).
void validate_tensor(const TensorProto& t);

/// The little-endian bytes of a tensor stored raw, wherever they lie: its raw_data, or its payload
/// left in the model's file (Model::load). nullopt when it stores typed fields.
std::optional<std::string_view> raw_bytes(const TensorProto& t);

/// Decodes any numeric tensor (float, double, float16, bfloat16, (u)int8/16/32/64, bool) to float.
std::vector<float> to_floats(const TensorProto& t);
/// The float32 values of `t` without a copy when they are FLOAT raw bytes at a float-aligned
/// address (the bytes are little-endian floats, as on every host this reads), else copied or
/// decoded into `scratch` (its capacity is reused: pass one scratch for many tensors).
/// Valid while `t` and `scratch` are unchanged.
std::span<const float> float_view(const TensorProto& t, std::vector<float>& scratch);
/// True when no value is inf or NaN (a scan that vectorizes on any x86-64, for multi-GB weights).
bool all_finite(std::span<const float> values);
/// The values of a float32 tensor to edit in place: `t` is first stored as raw_data if it held
/// typed float_data or its payload was left in the model's file. Valid while `t` is not otherwise changed.
std::span<float> float_data_in_place(TensorProto& t);
/// Decodes an integer (or bool) tensor to int64.
std::vector<int64_t> to_int64s(const TensorProto& t);

/// A tensor whose data is `raw` bytes already in ONNX's little-endian layout.
TensorProto make_raw_tensor(const std::string& name, int32_t data_type, const std::vector<int64_t>& dims,
                            std::string raw);
/// A FLOAT tensor stored as raw_data.
TensorProto make_float_tensor(const std::string& name, const std::vector<int64_t>& dims,
                              std::span<const float> values);
/// A FLOAT16 tensor stored as raw_data, rounding each value to nearest even.
TensorProto make_float16_tensor(const std::string& name, const std::vector<int64_t>& dims,
                                std::span<const float> values);
/// An INT64 tensor stored as raw_data.
TensorProto make_int64_tensor(const std::string& name, const std::vector<int64_t>& dims,
                              std::span<const int64_t> values);
/// An INT8 (signed) or UINT8 tensor stored as raw_data.
TensorProto make_int8_tensor(const std::string& name, const std::vector<int64_t>& dims,
                             std::span<const int8_t> values);
TensorProto make_uint8_tensor(const std::string& name, const std::vector<int64_t>& dims,
                              std::span<const uint8_t> values);
/// INT8 (is_signed) or UINT8 from quantized values already inside that type's range.
TensorProto make_8bit_tensor(const std::string& name, const std::vector<int64_t>& dims,
                             std::span<const int32_t> values, bool is_signed);

/// IEEE half <-> float, round to nearest even, with inf/nan/subnormals.
uint16_t float_to_half(float value);
float half_to_float(uint16_t bits);

}  // namespace compress
