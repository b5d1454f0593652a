// quantize_weight: the per-channel 8-bit quantization the int8 passes share, fast and lean enough
// for multi-GB models: the tensor is walked as [outer, channels, inner] blocks, each contiguous (no
// index division per element, loops that vectorize), and the only output per element is its stored
// byte (the error statistics are summed on the way, no dequantized copy). One thread: threads gained
// little on this memory-bound loop and lost 3-5x when the cores were shared (2-core CI machines).
#include "passes/int8_quant.h"

namespace compress {

namespace {

constexpr float kRoundLimit = 4194304.0f;  // 2^22: round_half_even_small's range; the grid clamp hides it

// Sums for ReconstructionError, added up over rows.
struct ErrorSums {
  double signal = 0, noise = 0, max_abs = 0;
};

// quantize_value + dequantize_value over `n` values that share one scale and zero point.
ErrorSums quantize_row(const float* w, size_t n, float scale, float zp, float qlo, float qhi, char* out) {
  ErrorSums e;
  for (size_t i = 0; i < n; ++i) {
    const float scaled = std::clamp(w[i] / scale, -kRoundLimit, kRoundLimit);
    const float v = std::clamp(round_half_even_small(scaled) + zp, qlo, qhi);
    out[i] = stored_byte(static_cast<int32_t>(v));
    const double d = static_cast<double>(w[i]) - static_cast<double>((v - zp) * scale);
    e.signal += static_cast<double>(w[i]) * w[i];
    e.noise += d * d;
    e.max_abs = std::max(e.max_abs, std::abs(d));
  }
  return e;
}

}  // namespace

QuantizedWeight quantize_weight(std::span<const float> w, std::span<const int64_t> dims, int64_t axis,
                                bool symmetric, const Int8Grid& grid) {
  int64_t channels = 1, inner = static_cast<int64_t>(w.size());
  if (axis >= 0) {
    channels = dims[static_cast<size_t>(axis)];
    inner = 1;
    for (size_t d = static_cast<size_t>(axis) + 1; d < dims.size(); ++d) inner *= dims[d];
  }
  const int64_t outer = channels * inner > 0 ? static_cast<int64_t>(w.size()) / (channels * inner) : 0;
  const auto at = [&](int64_t o, int64_t c) { return static_cast<size_t>((o * channels + c) * inner); };
  std::vector<float> lo(static_cast<size_t>(channels), std::numeric_limits<float>::infinity());
  std::vector<float> hi(static_cast<size_t>(channels), -std::numeric_limits<float>::infinity());
  for (int64_t o = 0; o < outer; ++o) {
    if (inner == 1) {  // channels contiguous ([K, N] along N): an element-wise min/max that vectorizes
      const float* row = w.data() + at(o, 0);
      for (int64_t c = 0; c < channels; ++c) {
        lo[static_cast<size_t>(c)] = std::min(lo[static_cast<size_t>(c)], row[c]);
        hi[static_cast<size_t>(c)] = std::max(hi[static_cast<size_t>(c)], row[c]);
      }
      continue;
    }
    for (int64_t c = 0; c < channels; ++c) {
      const float* row = w.data() + at(o, c);
      float mn = lo[static_cast<size_t>(c)], mx = hi[static_cast<size_t>(c)];
      for (int64_t j = 0; j < inner; ++j) {  // plain min/max: vectorizes, unlike minmax_element
        mn = std::min(mn, row[j]);
        mx = std::max(mx, row[j]);
      }
      lo[static_cast<size_t>(c)] = mn;
      hi[static_cast<size_t>(c)] = mx;
    }
  }
  QuantizedWeight out;
  out.params.resize(static_cast<size_t>(channels));
  std::vector<float> scales(out.params.size()), zps(out.params.size());
  for (size_t c = 0; c < out.params.size(); ++c) {
    out.params[c] = choose_params(lo[c] <= hi[c] ? lo[c] : 0.0f, lo[c] <= hi[c] ? hi[c] : 0.0f, symmetric, grid);
    scales[c] = out.params[c].scale;
    zps[c] = static_cast<float>(out.params[c].zero_point);
  }
  out.bytes.resize(w.size());
  const float qlo = static_cast<float>(grid.qmin), qhi = static_cast<float>(grid.qmax);
  double signal = 0, noise = 0, max_abs = 0;
  if (inner == 1 && channels > 1) {
    // Channels contiguous: one row of `channels` values, each with its own scale and zero point.
    for (int64_t o = 0; o < outer; ++o) {
      const size_t base = at(o, 0);
      for (size_t c = 0; c < scales.size(); ++c) {
        const float x = w[base + c];
        const float scaled = std::clamp(x / scales[c], -kRoundLimit, kRoundLimit);
        const float v = std::clamp(round_half_even_small(scaled) + zps[c], qlo, qhi);
        out.bytes[base + c] = stored_byte(static_cast<int32_t>(v));
        const double d = static_cast<double>(x) - static_cast<double>((v - zps[c]) * scales[c]);
        signal += static_cast<double>(x) * x;
        noise += d * d;
        max_abs = std::max(max_abs, std::abs(d));
      }
    }
  } else {
    const int64_t blocks = outer * channels;
    for (int64_t b = 0; b < blocks; ++b) {
      const size_t first = static_cast<size_t>(b * inner);
      const size_t c = static_cast<size_t>(b % channels);
      const ErrorSums e = quantize_row(w.data() + first, static_cast<size_t>(inner), scales[c], zps[c], qlo, qhi,
                                       out.bytes.data() + first);
      signal += e.signal;
      noise += e.noise;
      max_abs = std::max(max_abs, e.max_abs);
    }
  }
  out.error = reconstruction_error_from_sums(signal, noise, max_abs);
  return out;
}

}  // namespace compress
