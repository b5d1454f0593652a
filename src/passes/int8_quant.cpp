// quantize_weight: the per-channel 8-bit quantization the int8 passes share, fast and lean enough
// for multi-GB models: the tensor is walked as [outer, channels, inner] blocks, each contiguous (no
// index division per element, loops that vectorize), and the only output per element is its stored
// byte (the error statistics are summed on the way, no dequantized copy). One thread: threads gained
// little on this memory-bound loop and lost 3-5x when the cores were shared (2-core CI machines).
// On AVX2 CPUs both loops run 8 floats at a time (functions with a target attribute, chosen after a
// CPU check; the build has no -march flag): the same IEEE operations per element, so the same bytes;
// only the error sums are added in another order.
#include "passes/int8_quant.h"

#if defined(__x86_64__)
#include <immintrin.h>
#define COMPRESS_INT8_AVX2 1
#endif

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

#ifdef COMPRESS_INT8_AVX2

bool cpu_has_avx2() {
  static const bool has = [] {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") != 0;
  }();
  return has;
}

// Running min and max of a row: _mm256_min_ps(x, m) is x < m ? x : m, lane by lane what std::min(m, x)
// gives (weights reach here finite: the passes skip non-finite ones first).
__attribute__((target("avx2"))) void min_max_avx2(const float* w, size_t n, float& lo, float& hi) {
  __m256 mn = _mm256_set1_ps(lo), mx = _mm256_set1_ps(hi);
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 x = _mm256_loadu_ps(w + i);
    mn = _mm256_min_ps(x, mn);
    mx = _mm256_max_ps(x, mx);
  }
  alignas(32) float a[8], b[8];
  _mm256_store_ps(a, mn);
  _mm256_store_ps(b, mx);
  for (int k = 0; k < 8; ++k) {
    lo = std::min(lo, a[k]);
    hi = std::max(hi, b[k]);
  }
  for (; i < n; ++i) {
    lo = std::min(lo, w[i]);
    hi = std::max(hi, w[i]);
  }
}

// quantize_row for 8 values at a time. kPerElement: scale[i] and zp[i] per element (channels
// contiguous); otherwise scale[0] and zp[0] for the whole row. The tail (n % 8) goes to the caller.
template <bool kPerElement>
__attribute__((target("avx2"))) ErrorSums quantize_row_avx2(const float* w, size_t n, const float* scale, const float* zp,
                                                           float qlo, float qhi, char* out) {
  const __m256 limit = _mm256_set1_ps(kRoundLimit), neg_limit = _mm256_set1_ps(-kRoundLimit);
  const __m256 magic = _mm256_set1_ps(12582912.0f);  // round_half_even_small's 1.5 * 2^23
  const __m256 lo = _mm256_set1_ps(qlo), hi = _mm256_set1_ps(qhi);
  const __m256d abs_mask = _mm256_castsi256_pd(_mm256_set1_epi64x(0x7fffffffffffffffLL));
  // Byte 0 of each int32 to the low 4 bytes of each 128-bit lane, then both lanes' words together.
  const __m256i low_bytes = _mm256_setr_epi8(0, 4, 8, 12, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,  //
                                             0, 4, 8, 12, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1);
  const __m256i gather = _mm256_setr_epi32(0, 4, 0, 0, 0, 0, 0, 0);
  __m256 s = _mm256_set1_ps(scale[0]), z = _mm256_set1_ps(zp[0]);
  __m256d signal = _mm256_setzero_pd(), noise = _mm256_setzero_pd(), max_abs = _mm256_setzero_pd();
  const size_t full = n - n % 8;
  for (size_t i = 0; i < full; i += 8) {
    if constexpr (kPerElement) {
      s = _mm256_loadu_ps(scale + i);
      z = _mm256_loadu_ps(zp + i);
    }
    const __m256 x = _mm256_loadu_ps(w + i);
    const __m256 scaled = _mm256_max_ps(_mm256_min_ps(_mm256_div_ps(x, s), limit), neg_limit);
    const __m256 rounded = _mm256_sub_ps(_mm256_add_ps(scaled, magic), magic);
    const __m256 v = _mm256_min_ps(_mm256_max_ps(_mm256_add_ps(rounded, z), lo), hi);
    const __m256i q = _mm256_permutevar8x32_epi32(_mm256_shuffle_epi8(_mm256_cvtps_epi32(v), low_bytes), gather);
    _mm_storel_epi64(reinterpret_cast<__m128i*>(out + i), _mm256_castsi256_si128(q));
    const __m256 back = _mm256_mul_ps(_mm256_sub_ps(v, z), s);
    for (int half = 0; half < 2; ++half) {
      const __m128 xh = half == 0 ? _mm256_castps256_ps128(x) : _mm256_extractf128_ps(x, 1);
      const __m128 bh = half == 0 ? _mm256_castps256_ps128(back) : _mm256_extractf128_ps(back, 1);
      const __m256d xd = _mm256_cvtps_pd(xh);
      const __m256d d = _mm256_sub_pd(xd, _mm256_cvtps_pd(bh));
      signal = _mm256_add_pd(signal, _mm256_mul_pd(xd, xd));
      noise = _mm256_add_pd(noise, _mm256_mul_pd(d, d));
      max_abs = _mm256_max_pd(max_abs, _mm256_and_pd(d, abs_mask));
    }
  }
  alignas(32) double a[4], b[4], c[4];
  _mm256_store_pd(a, signal);
  _mm256_store_pd(b, noise);
  _mm256_store_pd(c, max_abs);
  ErrorSums e;
  for (int k = 0; k < 4; ++k) {
    e.signal += a[k];
    e.noise += b[k];
    e.max_abs = std::max(e.max_abs, c[k]);
  }
  return e;
}

#endif  // COMPRESS_INT8_AVX2

void add(ErrorSums& total, const ErrorSums& e) {
  total.signal += e.signal;
  total.noise += e.noise;
  total.max_abs = std::max(total.max_abs, e.max_abs);
}

// One row's running min/max.
void min_max(const float* row, size_t n, float& lo, float& hi) {
#ifdef COMPRESS_INT8_AVX2
  if (cpu_has_avx2()) return min_max_avx2(row, n, lo, hi);
#endif
  float mn = lo, mx = hi;
  for (size_t j = 0; j < n; ++j) {
    mn = std::min(mn, row[j]);
    mx = std::max(mx, row[j]);
  }
  lo = mn;
  hi = mx;
}

// A row of `n` values with one scale and zero point.
ErrorSums quantize_row_shared(const float* w, size_t n, float scale, float zp, float qlo, float qhi, char* out) {
  size_t done = 0;
  ErrorSums e;
#ifdef COMPRESS_INT8_AVX2
  if (cpu_has_avx2()) {
    e = quantize_row_avx2<false>(w, n, &scale, &zp, qlo, qhi, out);
    done = n - n % 8;
  }
#endif
  add(e, quantize_row(w + done, n - done, scale, zp, qlo, qhi, out + done));
  return e;
}

// A row of `n` values, value i with scale[i] and zp[i].
ErrorSums quantize_row_per_element(const float* w, size_t n, const float* scale, const float* zp, float qlo, float qhi,
                                   char* out) {
  size_t done = 0;
  ErrorSums e;
#ifdef COMPRESS_INT8_AVX2
  if (cpu_has_avx2()) {
    e = quantize_row_avx2<true>(w, n, scale, zp, qlo, qhi, out);
    done = n - n % 8;
  }
#endif
  for (size_t i = done; i < n; ++i) add(e, quantize_row(w + i, 1, scale[i], zp[i], qlo, qhi, out + i));
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
    for (int64_t c = 0; c < channels; ++c)
      min_max(w.data() + at(o, c), static_cast<size_t>(inner), lo[static_cast<size_t>(c)], hi[static_cast<size_t>(c)]);
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
  ErrorSums total;
  if (inner == 1 && channels > 1) {
    // Channels contiguous: one row of `channels` values, each with its own scale and zero point.
    for (int64_t o = 0; o < outer; ++o) {
      const size_t base = at(o, 0);
      add(total, quantize_row_per_element(w.data() + base, scales.size(), scales.data(), zps.data(), qlo, qhi,
                                          out.bytes.data() + base));
    }
  } else {
    const int64_t blocks = outer * channels;
    for (int64_t b = 0; b < blocks; ++b) {
      const size_t first = static_cast<size_t>(b * inner);
      const size_t c = static_cast<size_t>(b % channels);
      add(total, quantize_row_shared(w.data() + first, static_cast<size_t>(inner), scales[c], zps[c], qlo, qhi,
                                     out.bytes.data() + first));
    }
  }
  out.error = reconstruction_error_from_sums(total.signal, total.noise, total.max_abs);
  return out;
}

}  // namespace compress
