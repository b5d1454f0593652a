// Block-wise 4-bit weight formats and their scalar reference kernels (the spec the tests check).
//
// NBits: ONNX Runtime's com.microsoft.MatMulNBits layout, as MLAS' BlockwiseQuantizer (column-wise)
// writes it for weight W [K, N] (row-major, MatMul's B):
//   blocks_per_col = ceil(K / block), blob = block / 2 bytes
//   packed [N, blocks_per_col, blob] uint8: element k of block b of column n sits in
//     packed[(n * blocks_per_col + b) * blob + (k % block) / 2], low nibble when k is even, high when odd.
//     K is padded up to whole blocks; pad nibbles hold the zero point, so they dequantize to exactly 0.
//   scales [N * blocks_per_col] float, column-major (index n * blocks_per_col + b).
//   zero_points [N * ceil(blocks_per_col / 2)] uint8, two per byte, low nibble = even block; an odd last
//     block leaves the high nibble at 8 (what MLAS writes). Absent when symmetric: the kernel then uses 8.
//   symmetric: m = the block's value of largest magnitude (with its sign), scale = m / -8, so m maps to
//     exactly q = 0 (i.e. -8 + 8) and all 16 levels are used (MLAS range2scale; scale may be negative).
//   asymmetric: lo = min(min, 0), hi = max(max, 0), scale = (hi - lo) / 15, zp = clamp(roundf(-lo / scale), 0, 15).
//   q = clamp(roundf(w / scale + zp), 0, 15)   (w * (1 / scale), roundf = half away from zero, as MLAS)
//   w' = (q - zp) * scale
//
// Dq: ONNX DequantizeLinear-21 blocked int4 (data type 22) with the same scale rules, signed:
//   symmetric: q = clamp(roundf(w / scale), -8, 7), no zero point;
//   asymmetric: scale = (hi - lo) / 15, zp = clamp(roundf(-8 - lo / scale), -8, 7),
//     q = clamp(roundf(w / scale) + zp, -8, 7) (MLAS BlockwiseQDQQuantizer order).
//   Elements are stored in the weight's own shape, row-major, two per byte, low nibble first.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <span>
#include <vector>

namespace compress::int4 {

struct NBitsWeight {
  int64_t k = 0, n = 0, block = 0, blocks_per_col = 0, blob = 0;
  std::vector<uint8_t> packed;       // [n * blocks_per_col * blob]
  std::vector<float> scales;         // [n * blocks_per_col]
  std::vector<uint8_t> zero_points;  // [n * ceil(blocks_per_col / 2)], empty when symmetric
};

inline int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

struct BlockRange {
  float min = std::numeric_limits<float>::max();
  float max = -std::numeric_limits<float>::max();
};

inline float symmetric_scale(const BlockRange& r) { return (std::fabs(r.max) > std::fabs(r.min) ? r.max : r.min) / -8.0f; }

/// Scale and zero point of an asymmetric block; zp in [zp_lo, zp_lo + 15].
inline void asymmetric_params(BlockRange r, float zp_lo, float& scale, float& zp) {
  const float lo = std::min(r.min, 0.0f), hi = std::max(r.max, 0.0f);
  scale = (hi - lo) / 15.0f;
  float z = lo;
  if (scale != 0.0f) z = zp_lo - lo / scale;
  zp = z < zp_lo ? zp_lo : (z > zp_lo + 15.0f ? zp_lo + 15.0f : std::roundf(z));
}

/// Quantizes W [k, n] (row-major) to the MatMulNBits layout. Walks W a block of rows at a time,
/// each row left to right (W is row-major: a column walk would miss the cache on wide weights).
inline NBitsWeight quantize_nbits(std::span<const float> w, int64_t k, int64_t n, int64_t block, bool symmetric) {
  NBitsWeight q;
  q.k = k;
  q.n = n;
  q.block = block;
  q.blocks_per_col = ceil_div(k, block);
  q.blob = block / 2;
  q.packed.assign(static_cast<size_t>(n * q.blocks_per_col * q.blob), 0);
  q.scales.assign(static_cast<size_t>(n * q.blocks_per_col), 0.0f);
  const int64_t zp_bytes = ceil_div(q.blocks_per_col, 2);
  if (!symmetric) q.zero_points.assign(static_cast<size_t>(n * zp_bytes), 0x88);
  std::vector<BlockRange> ranges(static_cast<size_t>(n));
  std::vector<float> zps(static_cast<size_t>(n)), reciprocals(static_cast<size_t>(n));
  for (int64_t b = 0; b < q.blocks_per_col; ++b) {
    const int64_t r0 = b * block, r1 = std::min(k, r0 + block);
    std::fill(ranges.begin(), ranges.end(), BlockRange{});
    for (int64_t r = r0; r < r1; ++r) {
      const float* row = w.data() + r * n;
      for (int64_t c = 0; c < n; ++c) {
        ranges[static_cast<size_t>(c)].min = std::min(ranges[static_cast<size_t>(c)].min, row[c]);
        ranges[static_cast<size_t>(c)].max = std::max(ranges[static_cast<size_t>(c)].max, row[c]);
      }
    }
    for (int64_t c = 0; c < n; ++c) {
      float scale = 0, zp = 8;
      if (symmetric) {
        scale = symmetric_scale(ranges[static_cast<size_t>(c)]);
      } else {
        asymmetric_params(ranges[static_cast<size_t>(c)], 0.0f, scale, zp);
        uint8_t& byte = q.zero_points[static_cast<size_t>(c * zp_bytes + b / 2)];
        const int shift = 4 * static_cast<int>(b % 2);
        byte = static_cast<uint8_t>((byte & ~(0xF << shift)) | (static_cast<int>(zp) << shift));
      }
      q.scales[static_cast<size_t>(c * q.blocks_per_col + b)] = scale;
      zps[static_cast<size_t>(c)] = zp;
      reciprocals[static_cast<size_t>(c)] = scale != 0.0f ? 1.0f / scale : 0.0f;
    }
    for (int64_t r = r0; r < r0 + block; ++r) {
      const int64_t i = r - r0;
      const int shift = 4 * static_cast<int>(i % 2);
      for (int64_t c = 0; c < n; ++c) {
        const float zp = zps[static_cast<size_t>(c)];
        const int value =
            r < r1 ? static_cast<int>(std::clamp(std::roundf(w[static_cast<size_t>(r * n + c)] * reciprocals[static_cast<size_t>(c)] + zp), 0.0f, 15.0f))
                   : static_cast<int>(zp);
        uint8_t& byte = q.packed[static_cast<size_t>((c * q.blocks_per_col + b) * q.blob + i / 2)];
        byte = static_cast<uint8_t>(byte | (value << shift));
      }
    }
  }
  return q;
}

/// What MatMulNBits computes with: W' [k, n] row-major.
inline std::vector<float> dequantize_nbits(const NBitsWeight& q) {
  std::vector<float> w(static_cast<size_t>(q.k * q.n));
  const int64_t zp_bytes = ceil_div(q.blocks_per_col, 2);
  for (int64_t c = 0; c < q.n; ++c) {
    for (int64_t r = 0; r < q.k; ++r) {
      const int64_t b = r / q.block, i = r % q.block;
      const int value = (q.packed[static_cast<size_t>((c * q.blocks_per_col + b) * q.blob + i / 2)] >> (4 * (i % 2))) & 0xF;
      const int zp = q.zero_points.empty()
                         ? 8
                         : (q.zero_points[static_cast<size_t>(c * zp_bytes + b / 2)] >> (4 * (b % 2))) & 0xF;
      w[static_cast<size_t>(r * q.n + c)] = static_cast<float>(value - zp) * q.scales[static_cast<size_t>(c * q.blocks_per_col + b)];
    }
  }
  return w;
}

/// sum w^2, sum (w - w')^2 and max |w - w'| of W against what MatMulNBits computes with, without
/// materializing W'.
inline void nbits_error_sums(std::span<const float> w, const NBitsWeight& q, double& signal, double& noise,
                             double& max_abs) {
  const int64_t zp_bytes = ceil_div(q.blocks_per_col, 2);
  signal = noise = max_abs = 0;
  for (int64_t r = 0; r < q.k; ++r) {
    const int64_t b = r / q.block, i = r % q.block;
    for (int64_t c = 0; c < q.n; ++c) {
      const int value = (q.packed[static_cast<size_t>((c * q.blocks_per_col + b) * q.blob + i / 2)] >> (4 * (i % 2))) & 0xF;
      const int zp = q.zero_points.empty()
                         ? 8
                         : (q.zero_points[static_cast<size_t>(c * zp_bytes + b / 2)] >> (4 * (b % 2))) & 0xF;
      const float restored = static_cast<float>(value - zp) * q.scales[static_cast<size_t>(c * q.blocks_per_col + b)];
      const float x = w[static_cast<size_t>(r * q.n + c)];
      const double d = static_cast<double>(x) - static_cast<double>(restored);
      signal += static_cast<double>(x) * x;
      noise += d * d;
      max_abs = std::max(max_abs, std::abs(d));
    }
  }
}

/// A weight blocked along one axis for DequantizeLinear-21: values keep the weight's shape.
struct DqWeight {
  std::vector<int64_t> dims;         // the weight's dims
  std::vector<int64_t> scale_dims;   // dims with dims[axis] -> ceil(dims[axis] / block)
  std::vector<int8_t> values;        // [-8, 7], row-major
  std::vector<float> scales;         // row-major over scale_dims
  std::vector<int8_t> zero_points;   // same shape as scales, empty when symmetric
};

/// Quantizes a weight of any rank in blocks of `block` consecutive elements along `axis`.
inline DqWeight quantize_dq(std::span<const float> w, const std::vector<int64_t>& dims, int64_t axis, int64_t block,
                            bool symmetric) {
  DqWeight q;
  q.dims = dims;
  q.scale_dims = dims;
  q.scale_dims[static_cast<size_t>(axis)] = ceil_div(dims[static_cast<size_t>(axis)], block);
  int64_t outer = 1, inner = 1;
  for (int64_t d = 0; d < axis; ++d) outer *= dims[static_cast<size_t>(d)];
  for (size_t d = static_cast<size_t>(axis) + 1; d < dims.size(); ++d) inner *= dims[d];
  const int64_t len = dims[static_cast<size_t>(axis)], nb = q.scale_dims[static_cast<size_t>(axis)];
  q.values.assign(w.size(), 0);
  q.scales.assign(static_cast<size_t>(outer * nb * inner), 0.0f);
  if (!symmetric) q.zero_points.assign(q.scales.size(), 0);
  for (int64_t o = 0; o < outer; ++o) {
    for (int64_t b = 0; b < nb; ++b) {
      for (int64_t in = 0; in < inner; ++in) {
        const int64_t a0 = b * block, a1 = std::min(len, a0 + block);
        auto at = [&](int64_t a) { return static_cast<size_t>((o * len + a) * inner + in); };
        BlockRange range;
        for (int64_t a = a0; a < a1; ++a) {
          range.min = std::min(range.min, w[at(a)]);
          range.max = std::max(range.max, w[at(a)]);
        }
        const size_t s = static_cast<size_t>((o * nb + b) * inner + in);
        float scale = 0, zp = 0;
        if (symmetric) {
          scale = symmetric_scale(range);
        } else {
          asymmetric_params(range, -8.0f, scale, zp);
          q.zero_points[s] = static_cast<int8_t>(zp);
        }
        q.scales[s] = scale;
        const float reciprocal = scale != 0.0f ? 1.0f / scale : 0.0f;
        for (int64_t a = a0; a < a1; ++a)
          q.values[at(a)] = static_cast<int8_t>(std::clamp(std::roundf(w[at(a)] * reciprocal) + zp, -8.0f, 7.0f));
      }
    }
  }
  return q;
}

/// What DequantizeLinear-21 computes: (q - zp) * scale, in the weight's shape.
inline std::vector<float> dequantize_dq(const DqWeight& q, int64_t axis, int64_t block) {
  int64_t outer = 1, inner = 1;
  for (int64_t d = 0; d < axis; ++d) outer *= q.dims[static_cast<size_t>(d)];
  for (size_t d = static_cast<size_t>(axis) + 1; d < q.dims.size(); ++d) inner *= q.dims[d];
  const int64_t len = q.dims[static_cast<size_t>(axis)], nb = q.scale_dims[static_cast<size_t>(axis)];
  std::vector<float> w(q.values.size());
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t a = 0; a < len; ++a)
      for (int64_t in = 0; in < inner; ++in) {
        const size_t i = static_cast<size_t>((o * len + a) * inner + in);
        const size_t s = static_cast<size_t>((o * nb + a / block) * inner + in);
        const int zp = q.zero_points.empty() ? 0 : q.zero_points[s];
        w[i] = static_cast<float>(q.values[i] - zp) * q.scales[s];
      }
  return w;
}

/// INT4 raw_data: two values per byte, element 0 in the low nibble; an odd count leaves the last high nibble 0.
inline std::vector<uint8_t> pack_int4(std::span<const int8_t> values) {
  std::vector<uint8_t> raw((values.size() + 1) / 2, 0);
  for (size_t i = 0; i < values.size(); ++i)
    raw[i / 2] = static_cast<uint8_t>(raw[i / 2] | ((values[i] & 0xF) << (4 * (i % 2))));
  return raw;
}

}  // namespace compress::int4
