#include <compress/error.h>
#include <compress/tensor.h>

#include <bit>
#include <cmath>
#include <cstring>

#include "core/checked.h"
#include "core/mapped_payloads.h"

namespace compress {

static_assert(std::endian::native == std::endian::little, "raw_data is little-endian; big-endian hosts need byte swaps");

namespace {

using TP = onnx::TensorProto;

[[noreturn]] void bad(const TensorProto& t, const std::string& what) {
  throw Error(ExitCode::kBadInput, "tensor '" + t.name() + "': " + what);
}

// Number of values the typed field for this dtype holds (and which field it is).
int64_t typed_field_size(const TensorProto& t) {
  switch (t.data_type()) {
    case TP::FLOAT: return t.float_data_size();
    case TP::DOUBLE: return t.double_data_size();
    case TP::INT64: return t.int64_data_size();
    case TP::UINT64: case TP::UINT32: return t.uint64_data_size();
    case TP::STRING: return t.string_data_size();
    default: return t.int32_data_size();  // int8/16/32, uint8/16, bool, float16, bfloat16
  }
}

template <class T>
T load_le(const char* p) {
  T v;
  std::memcpy(&v, p, sizeof(T));
  return v;
}

float bfloat16_to_float(uint16_t b) { return std::bit_cast<float>(static_cast<uint32_t>(b) << 16); }

// Reads element i of raw_data as double.
double raw_element(const TensorProto& t, const char* raw, int64_t i) {
  switch (t.data_type()) {
    case TP::FLOAT: return load_le<float>(raw + 4 * i);
    case TP::DOUBLE: return load_le<double>(raw + 8 * i);
    case TP::FLOAT16: return half_to_float(load_le<uint16_t>(raw + 2 * i));
    case TP::BFLOAT16: return bfloat16_to_float(load_le<uint16_t>(raw + 2 * i));
    case TP::INT8: return load_le<int8_t>(raw + i);
    case TP::UINT8: case TP::BOOL: return load_le<uint8_t>(raw + i);
    case TP::INT16: return load_le<int16_t>(raw + 2 * i);
    case TP::UINT16: return load_le<uint16_t>(raw + 2 * i);
    case TP::INT32: return load_le<int32_t>(raw + 4 * i);
    case TP::UINT32: return load_le<uint32_t>(raw + 4 * i);
    case TP::INT64: return static_cast<double>(load_le<int64_t>(raw + 8 * i));
    case TP::UINT64: return static_cast<double>(load_le<uint64_t>(raw + 8 * i));
    default: bad(t, "cannot decode data type " + dtype_name(t.data_type()) + " as numbers");
  }
}

double typed_element(const TensorProto& t, int64_t i) {
  switch (t.data_type()) {
    case TP::FLOAT: return t.float_data(i);
    case TP::DOUBLE: return t.double_data(i);
    case TP::INT64: return static_cast<double>(t.int64_data(i));
    case TP::UINT64: case TP::UINT32: return static_cast<double>(t.uint64_data(i));
    case TP::FLOAT16: return half_to_float(static_cast<uint16_t>(t.int32_data(i)));
    case TP::BFLOAT16: return bfloat16_to_float(static_cast<uint16_t>(t.int32_data(i)));
    case TP::INT8: case TP::UINT8: case TP::INT16: case TP::UINT16: case TP::INT32: case TP::BOOL:
      return t.int32_data(i);
    default: bad(t, "cannot decode data type " + dtype_name(t.data_type()) + " as numbers");
  }
}

template <class T>
TensorProto make_from_span(const std::string& name, int32_t dtype, const std::vector<int64_t>& dims,
                           std::span<const T> values) {
  std::string raw(values.size() * sizeof(T), '\0');
  if (!values.empty()) std::memcpy(raw.data(), values.data(), raw.size());
  return make_raw_tensor(name, dtype, dims, std::move(raw));
}

}  // namespace

int dtype_bits(int32_t data_type) {
  switch (data_type) {
    case TP::FLOAT: case TP::INT32: case TP::UINT32: return 32;
    case TP::DOUBLE: case TP::INT64: case TP::UINT64: case TP::COMPLEX64: return 64;
    case TP::COMPLEX128: return 128;
    case TP::FLOAT16: case TP::BFLOAT16: case TP::INT16: case TP::UINT16: return 16;
    case TP::INT8: case TP::UINT8: case TP::BOOL: return 8;
    case 21: case 22: return 4;  // UINT4 / INT4 (ONNX 1.16+, not in ONNX 1.12's enum)
    case 17: case 18: case 19: case 20: return 8;  // float8 variants (ONNX 1.14+)
    default: break;
  }
  throw Error(ExitCode::kBadInput, "unknown tensor data type " + std::to_string(data_type));
}

std::string dtype_name(int32_t data_type) {
  switch (data_type) {
    case TP::FLOAT: return "float32";
    case TP::DOUBLE: return "float64";
    case TP::FLOAT16: return "float16";
    case TP::BFLOAT16: return "bfloat16";
    case TP::INT8: return "int8";
    case TP::UINT8: return "uint8";
    case TP::INT16: return "int16";
    case TP::UINT16: return "uint16";
    case TP::INT32: return "int32";
    case TP::UINT32: return "uint32";
    case TP::INT64: return "int64";
    case TP::UINT64: return "uint64";
    case TP::BOOL: return "bool";
    case TP::STRING: return "string";
    case TP::COMPLEX64: return "complex64";
    case TP::COMPLEX128: return "complex128";
    case 21: return "uint4";
    case 22: return "int4";
    default: return "dtype" + std::to_string(data_type);
  }
}

bool is_float_dtype(int32_t data_type) {
  return data_type == TP::FLOAT || data_type == TP::FLOAT16 || data_type == TP::DOUBLE ||
         data_type == TP::BFLOAT16;
}

int64_t element_count(const TensorProto& t) {
  const auto n = checked_product(t.dims());
  if (!n) {
    std::string dims;
    for (int64_t d : t.dims()) dims += (dims.empty() ? "" : ", ") + std::to_string(d);
    bad(t, "dims [" + dims + "] are negative or their element count overflows 64 bits");
  }
  return *n;
}

int64_t packed_bytes(const TensorProto& t) {
  if (t.data_type() == TP::STRING) {
    int64_t n = 0;
    for (const auto& s : t.string_data()) n += static_cast<int64_t>(s.size());  // bounded by the file size
    return n;
  }
  const auto bits = checked_mul(element_count(t), dtype_bits(t.data_type()));
  if (!bits || *bits > INT64_MAX - 7) bad(t, "byte size overflows 64 bits");
  return (*bits + 7) / 8;
}

void validate_tensor(const TensorProto& t) {
  for (int64_t d : t.dims())
    if (d < 0) bad(t, "negative dimension " + std::to_string(d));
  if (t.data_type() == TP::UNDEFINED) bad(t, "data type is undefined");
  dtype_bits(t.data_type());  // throws for unknown types
  const int64_t n = element_count(t);
  const bool stored_raw = t.has_raw_data() || t.data_location() == TP::EXTERNAL;
  if (stored_raw) {
    const auto size = t.has_raw_data() ? std::optional<int64_t>(t.raw_data().size()) : mapped_payload_size(t);
    if (!size) bad(t, "external data was not loaded");
    if (t.data_type() == TP::STRING) bad(t, "string tensors cannot use raw_data");
    const int64_t expected = packed_bytes(t);
    if (*size != expected)
      bad(t, "raw_data holds " + std::to_string(*size) + " bytes but dims and type need " + std::to_string(expected));
    return;
  }
  const int64_t stored = typed_field_size(t);
  // Packed 4-bit types store two values per int32 entry.
  const int64_t expected = dtype_bits(t.data_type()) == 4 ? (n + 1) / 2 : n;
  if (stored != expected)
    bad(t, "holds " + std::to_string(stored) + " values but dims need " + std::to_string(expected));
}

std::optional<std::string_view> raw_bytes(const TensorProto& t) {
  if (t.has_raw_data()) return std::string_view(t.raw_data());
  return mapped_payload(t);
}

std::vector<float> to_floats(const TensorProto& t) {
  validate_tensor(t);
  const int64_t n = element_count(t);
  std::vector<float> out(static_cast<size_t>(n));
  if (const auto bytes = raw_bytes(t)) {
    const char* raw = bytes->data();
    if (t.data_type() == TP::FLOAT) {
      if (n) std::memcpy(out.data(), raw, static_cast<size_t>(n) * 4);
    } else {
      for (int64_t i = 0; i < n; ++i) out[i] = static_cast<float>(raw_element(t, raw, i));
    }
  } else {
    for (int64_t i = 0; i < n; ++i) out[i] = static_cast<float>(typed_element(t, i));
  }
  return out;
}

std::span<const float> float_view(const TensorProto& t, std::vector<float>& scratch) {
  if (t.data_type() == TP::FLOAT) {
    validate_tensor(t);
    if (const auto bytes = raw_bytes(t)) {
      const auto n = static_cast<size_t>(element_count(t));
      if (reinterpret_cast<uintptr_t>(bytes->data()) % alignof(float) == 0)
        return {reinterpret_cast<const float*>(bytes->data()), n};
      // A payload at an odd offset of the file: copied, into memory the caller reuses.
      if (scratch.size() < n) scratch.resize(n);
      if (n) std::memcpy(scratch.data(), bytes->data(), n * sizeof(float));
      return {scratch.data(), n};
    }
  }
  scratch = to_floats(t);
  return scratch;
}

bool all_finite(std::span<const float> values) {
  // A float is inf or NaN when its exponent bits are all ones; adding one to the lowest exponent
  // bit then carries into bit 31. Integer and/add/or only, with no early exit: SSE2 vectorizes it.
  uint32_t carry = 0;
  for (const float v : values) carry |= (std::bit_cast<uint32_t>(v) & 0x7f800000u) + 0x00800000u;
  return (carry & 0x80000000u) == 0;
}

std::span<float> float_data_in_place(TensorProto& t) {
  if (t.data_type() != TP::FLOAT) bad(t, "expected a float32 tensor, got " + dtype_name(t.data_type()));
  validate_tensor(t);
  materialize_payload(t);
  const auto n = static_cast<size_t>(element_count(t));
  if (!t.has_raw_data() || reinterpret_cast<uintptr_t>(t.raw_data().data()) % alignof(float) != 0) {
    const std::vector<float> values = to_floats(t);
    std::string raw(n * 4, '\0');
    if (n) std::memcpy(raw.data(), values.data(), n * 4);
    t.clear_float_data();
    t.set_raw_data(std::move(raw));
  }
  return {reinterpret_cast<float*>(t.mutable_raw_data()->data()), n};
}

std::vector<int64_t> to_int64s(const TensorProto& t) {
  validate_tensor(t);
  if (is_float_dtype(t.data_type())) bad(t, "expected an integer tensor, got " + dtype_name(t.data_type()));
  const int64_t n = element_count(t);
  std::vector<int64_t> out(static_cast<size_t>(n));
  if (const auto bytes = raw_bytes(t)) {
    const char* raw = bytes->data();
    for (int64_t i = 0; i < n; ++i)
      out[i] = t.data_type() == TP::INT64 ? load_le<int64_t>(raw + 8 * i)
                                          : static_cast<int64_t>(raw_element(t, raw, i));
  } else {
    for (int64_t i = 0; i < n; ++i)
      out[i] = t.data_type() == TP::INT64 ? t.int64_data(i) : static_cast<int64_t>(typed_element(t, i));
  }
  return out;
}

TensorProto make_raw_tensor(const std::string& name, int32_t data_type, const std::vector<int64_t>& dims,
                            std::string raw) {
  TensorProto t;
  t.set_name(name);
  t.set_data_type(data_type);
  for (int64_t d : dims) t.add_dims(d);
  t.set_raw_data(std::move(raw));
  return t;
}

TensorProto make_float_tensor(const std::string& name, const std::vector<int64_t>& dims,
                              std::span<const float> values) {
  return make_from_span(name, TP::FLOAT, dims, values);
}

TensorProto make_float16_tensor(const std::string& name, const std::vector<int64_t>& dims,
                                std::span<const float> values) {
  std::vector<uint16_t> halves(values.size());
  for (size_t i = 0; i < values.size(); ++i) halves[i] = float_to_half(values[i]);
  return make_from_span(name, TP::FLOAT16, dims, std::span<const uint16_t>(halves));
}

TensorProto make_int64_tensor(const std::string& name, const std::vector<int64_t>& dims,
                              std::span<const int64_t> values) {
  return make_from_span(name, TP::INT64, dims, values);
}

TensorProto make_int8_tensor(const std::string& name, const std::vector<int64_t>& dims,
                             std::span<const int8_t> values) {
  return make_from_span(name, TP::INT8, dims, values);
}

TensorProto make_uint8_tensor(const std::string& name, const std::vector<int64_t>& dims,
                              std::span<const uint8_t> values) {
  return make_from_span(name, TP::UINT8, dims, values);
}

TensorProto make_8bit_tensor(const std::string& name, const std::vector<int64_t>& dims,
                             std::span<const int32_t> values, bool is_signed) {
  if (is_signed) return make_int8_tensor(name, dims, std::vector<int8_t>(values.begin(), values.end()));
  return make_uint8_tensor(name, dims, std::vector<uint8_t>(values.begin(), values.end()));
}

uint16_t float_to_half(float value) {
  const uint32_t f = std::bit_cast<uint32_t>(value);
  const uint32_t sign = (f >> 16) & 0x8000u;
  const uint32_t abs = f & 0x7fffffffu;
  if (abs >= 0x7f800000u) {  // inf or nan (keep nan quiet and non-zero)
    return static_cast<uint16_t>(sign | 0x7c00u | (abs > 0x7f800000u ? 0x200u | ((abs >> 13) & 0x3ffu) : 0u));
  }
  if (abs >= 0x477ff000u) return static_cast<uint16_t>(sign | 0x7c00u);  // rounds to >= 65520: inf
  if (abs < 0x38800000u) {  // below the smallest normal half: subnormal or zero
    // Scale so the result's mantissa lands in the low bits, rounding to nearest even.
    const float scaled = std::bit_cast<float>(abs) * 16777216.0f;  // * 2^24
    return static_cast<uint16_t>(sign | static_cast<uint32_t>(std::nearbyint(scaled)));
  }
  const uint32_t mant_odd = (abs >> 13) & 1u;
  const uint32_t rounded = abs + 0xfffu + mant_odd;  // round to nearest even at bit 13
  return static_cast<uint16_t>(sign | ((rounded - 0x38000000u) >> 13));
}

float half_to_float(uint16_t bits) {
  const uint32_t sign = static_cast<uint32_t>(bits & 0x8000u) << 16;
  const uint32_t exp = (bits >> 10) & 0x1fu;
  const uint32_t mant = bits & 0x3ffu;
  if (exp == 0) {
    const float v = static_cast<float>(mant) / 16777216.0f;  // mant * 2^-24
    return sign ? -v : v;
  }
  if (exp == 31) return std::bit_cast<float>(sign | 0x7f800000u | (mant << 13));
  return std::bit_cast<float>(sign | ((exp + 112u) << 23) | (mant << 13));
}

}  // namespace compress
