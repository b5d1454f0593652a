// The scalar reference of 8-bit linear quantization, q = clamp(round_half_even(w / s) + zp, qmin, qmax)
// and w' = (q - zp) * s, exactly as ONNX's QuantizeLinear/DequantizeLinear define it. It is the spec
// of the quantize-int8 pass and what its tests check bit for bit.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <span>
#include <string>
#include <vector>

#include "passes/error_metrics.h"

namespace compress {

/// The integer range a weight is stored in and whether it is signed (int8) or unsigned (uint8).
struct Int8Grid {
  int32_t qmin = -127;
  int32_t qmax = 127;
  bool is_signed = true;
};

/// symmetric + signed: int8 [-127, 127], zero point 0 (ONNX Runtime's symmetric QInt8).
/// symmetric + unsigned: uint8 [1, 255], zero point 128 (ConvInteger takes uint8 weights only).
/// asymmetric: uint8 [0, 255] with a computed zero point.
/// reduce_range halves the width to 7 bits: [-64, 64], [64, 192], [0, 127] (ONNX Runtime's reduce_range,
/// which keeps u8 x s8 pair sums from saturating int16 on CPUs without VNNI).
inline Int8Grid int8_grid(bool symmetric, bool is_signed, bool reduce_range) {
  if (symmetric && is_signed) return reduce_range ? Int8Grid{-64, 64, true} : Int8Grid{-127, 127, true};
  if (symmetric) return reduce_range ? Int8Grid{64, 192, false} : Int8Grid{1, 255, false};
  return reduce_range ? Int8Grid{0, 127, false} : Int8Grid{0, 255, false};
}

struct QuantParams {
  float scale = 1.0f;
  int32_t zero_point = 0;
};

/// Scale and zero point for values in [min_value, max_value].
/// Symmetric: zero point in the middle of the grid, scale = max|w| / ((qmax - qmin) / 2).
/// Asymmetric: the range is widened to include 0 so that 0 is exactly representable,
/// scale = (max - min) / (qmax - qmin), zero point = round(qmin - min / scale).
/// A range with no usable scale (all zeros, or so tiny the scale would be subnormal) gets scale 1:
/// never 0 or inf, so DequantizeLinear stays finite and every value quantizes to the zero point.
inline QuantParams choose_params(float min_value, float max_value, bool symmetric, const Int8Grid& grid) {
  QuantParams p;
  const double span = static_cast<double>(grid.qmax) - grid.qmin;
  if (symmetric) {
    const double absmax = std::max(std::abs(static_cast<double>(min_value)), std::abs(static_cast<double>(max_value)));
    p.scale = static_cast<float>(absmax / (span / 2));
    p.zero_point = (grid.qmin + grid.qmax) / 2;
    if (!(p.scale >= std::numeric_limits<float>::min()) || !std::isfinite(p.scale)) p.scale = 1.0f;
    return p;
  }
  const double lo = std::min(0.0, static_cast<double>(min_value));
  const double hi = std::max(0.0, static_cast<double>(max_value));
  p.scale = static_cast<float>((hi - lo) / span);
  if (!(p.scale >= std::numeric_limits<float>::min()) || !std::isfinite(p.scale)) {
    p.scale = 1.0f;
    p.zero_point = grid.qmin;
    return p;
  }
  const double zp = std::nearbyint(grid.qmin - lo / p.scale);
  p.zero_point = static_cast<int32_t>(std::clamp(zp, static_cast<double>(grid.qmin), static_cast<double>(grid.qmax)));
  return p;
}

/// ONNX QuantizeLinear of one value: float division, round half to even, add zero point, clamp.
inline int32_t quantize_value(float w, const QuantParams& p, const Int8Grid& grid) {
  const float q = std::nearbyint(w / p.scale) + static_cast<float>(p.zero_point);
  return static_cast<int32_t>(std::clamp(q, static_cast<float>(grid.qmin), static_cast<float>(grid.qmax)));
}

/// ONNX DequantizeLinear of one value.
inline float dequantize_value(int32_t q, const QuantParams& p) { return static_cast<float>(q - p.zero_point) * p.scale; }

/// A weight quantized along `axis` (one QuantParams per index of that axis) or per tensor (axis -1).
struct QuantizedWeight {
  std::string bytes;  // one stored byte per element (int8 two's complement or uint8), input layout
  std::vector<QuantParams> params;
  ReconstructionError error;  // of the dequantized weight against the input
};

/// std::nearbyint (round half to even in the default rounding mode) for |x| <= 2^22, as plain float
/// adds that vectorize on any x86-64 (nearbyint is a libm call without SSE4.1): adding 1.5 * 2^23
/// leaves no fraction bits, so the add rounds to an integer and the subtract is exact.
inline float round_half_even_small(float x) {
  constexpr float kMagic = 12582912.0f;  // 1.5 * 2^23
  return (x + kMagic) - kMagic;
}

/// The stored byte of a grid value: int8 as two's complement, uint8 as is.
inline char stored_byte(int32_t q) { return static_cast<char>(static_cast<uint8_t>(q & 0xff)); }

/// A stored byte back to its grid value.
inline int32_t grid_value(char byte, const Int8Grid& grid) {
  return grid.is_signed ? static_cast<int32_t>(static_cast<int8_t>(byte)) : static_cast<int32_t>(static_cast<uint8_t>(byte));
}

/// Quantizes `w` of shape `dims` per channel along `axis`, or per tensor when axis is -1, with
/// choose_params per channel and quantize_value per element (the same values, tested; faster and
/// with no per-element copy of the weight: int8_quant.cpp).
QuantizedWeight quantize_weight(std::span<const float> w, std::span<const int64_t> dims, int64_t axis,
                                bool symmetric, const Int8Grid& grid);

}  // namespace compress
