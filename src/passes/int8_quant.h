// The scalar reference of 8-bit linear quantization, q = clamp(round_half_even(w / s) + zp, qmin, qmax)
// and w' = (q - zp) * s, exactly as ONNX's QuantizeLinear/DequantizeLinear define it. It is the spec
// of the quantize-int8 pass and what its tests check bit for bit.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <span>
#include <vector>

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
  std::vector<int32_t> values;  // same layout as the input
  std::vector<QuantParams> params;
  std::vector<float> dequantized;
};

/// Quantizes `w` of shape `dims` per channel along `axis`, or per tensor when axis is -1.
inline QuantizedWeight quantize_weight(std::span<const float> w, std::span<const int64_t> dims, int64_t axis,
                                       bool symmetric, const Int8Grid& grid) {
  int64_t channels = 1, inner = static_cast<int64_t>(w.size());
  if (axis >= 0) {
    channels = dims[static_cast<size_t>(axis)];
    inner = 1;
    for (size_t d = static_cast<size_t>(axis) + 1; d < dims.size(); ++d) inner *= dims[d];
  }
  const auto channel_of = [&](size_t i) { return static_cast<size_t>((static_cast<int64_t>(i) / inner) % channels); };
  std::vector<float> lo(static_cast<size_t>(channels), std::numeric_limits<float>::infinity());
  std::vector<float> hi(static_cast<size_t>(channels), -std::numeric_limits<float>::infinity());
  for (size_t i = 0; i < w.size(); ++i) {
    const size_t c = channel_of(i);
    lo[c] = std::min(lo[c], w[i]);
    hi[c] = std::max(hi[c], w[i]);
  }
  QuantizedWeight out;
  out.params.resize(static_cast<size_t>(channels));
  for (size_t c = 0; c < out.params.size(); ++c)
    out.params[c] = choose_params(lo[c] <= hi[c] ? lo[c] : 0.0f, lo[c] <= hi[c] ? hi[c] : 0.0f, symmetric, grid);
  out.values.resize(w.size());
  out.dequantized.resize(w.size());
  for (size_t i = 0; i < w.size(); ++i) {
    const QuantParams& p = out.params[channel_of(i)];
    out.values[i] = quantize_value(w[i], p, grid);
    out.dequantized[i] = dequantize_value(out.values[i], p);
  }
  return out;
}

}  // namespace compress
