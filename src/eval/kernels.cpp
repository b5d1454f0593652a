// Fast float32 kernels: packed SGEMM (BLIS-style blocking: B panels of KC x 16, A panels of 6 x KC, a
// 6x16 AVX2+FMA micro-kernel selected at run time) and a direct depthwise convolution that slides each
// kernel tap over an output row (contiguous, vectorizable inner loop for stride 1).
#include "eval/kernels.h"

#include <Eigen/Dense>
#include <algorithm>
#include <atomic>
#include <cstring>
#include <vector>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define COMPRESS_EVAL_X86 1
#endif

namespace compress::eval::kernels {

namespace {

std::atomic<bool> g_reference{false};

using MatR = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using Stride = Eigen::OuterStride<>;

void sgemm_eigen(int64_t m, int64_t n, int64_t k, const float* a, int64_t lda, const float* b, int64_t ldb, float* c,
                 int64_t ldc, bool accumulate) {
  Eigen::Map<const MatR, 0, Stride> am(a, m, k, Stride(lda));
  Eigen::Map<const MatR, 0, Stride> bm(b, k, n, Stride(ldb));
  Eigen::Map<MatR, 0, Stride> cm(c, m, n, Stride(ldc));
  if (accumulate) cm.noalias() += am * bm;
  else cm.noalias() = am * bm;
}

#ifdef COMPRESS_EVAL_X86

constexpr int kMR = 6, kNR = 16;
constexpr int64_t kKC = 256, kMC = 120, kNC = 1024;

bool cpu_has_avx2_fma() {
  static const bool has = [] {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  }();
  return has;
}

// c[mr, nr] (+)= sum_p a[p, 0..5] * b[p * bs + 0..15]: a packed, b packed (bs = 16) or B itself (bs = ldb).
__attribute__((target("avx2,fma"))) void micro_6x16(int64_t kc, const float* a, const float* b, int64_t bs, float* c,
                                                    int64_t ldc, bool acc, int mr, int nr) {
  __m256 c00 = _mm256_setzero_ps(), c01 = _mm256_setzero_ps(), c10 = _mm256_setzero_ps(), c11 = _mm256_setzero_ps();
  __m256 c20 = _mm256_setzero_ps(), c21 = _mm256_setzero_ps(), c30 = _mm256_setzero_ps(), c31 = _mm256_setzero_ps();
  __m256 c40 = _mm256_setzero_ps(), c41 = _mm256_setzero_ps(), c50 = _mm256_setzero_ps(), c51 = _mm256_setzero_ps();
  for (int64_t p = 0; p < kc; ++p) {
    const __m256 b0 = _mm256_loadu_ps(b), b1 = _mm256_loadu_ps(b + 8);
    __m256 av = _mm256_broadcast_ss(a + 0);
    c00 = _mm256_fmadd_ps(av, b0, c00);
    c01 = _mm256_fmadd_ps(av, b1, c01);
    av = _mm256_broadcast_ss(a + 1);
    c10 = _mm256_fmadd_ps(av, b0, c10);
    c11 = _mm256_fmadd_ps(av, b1, c11);
    av = _mm256_broadcast_ss(a + 2);
    c20 = _mm256_fmadd_ps(av, b0, c20);
    c21 = _mm256_fmadd_ps(av, b1, c21);
    av = _mm256_broadcast_ss(a + 3);
    c30 = _mm256_fmadd_ps(av, b0, c30);
    c31 = _mm256_fmadd_ps(av, b1, c31);
    av = _mm256_broadcast_ss(a + 4);
    c40 = _mm256_fmadd_ps(av, b0, c40);
    c41 = _mm256_fmadd_ps(av, b1, c41);
    av = _mm256_broadcast_ss(a + 5);
    c50 = _mm256_fmadd_ps(av, b0, c50);
    c51 = _mm256_fmadd_ps(av, b1, c51);
    a += kMR;
    b += bs;
  }
  alignas(32) float tmp[kMR][kNR];
  _mm256_store_ps(tmp[0], c00);
  _mm256_store_ps(tmp[0] + 8, c01);
  _mm256_store_ps(tmp[1], c10);
  _mm256_store_ps(tmp[1] + 8, c11);
  _mm256_store_ps(tmp[2], c20);
  _mm256_store_ps(tmp[2] + 8, c21);
  _mm256_store_ps(tmp[3], c30);
  _mm256_store_ps(tmp[3] + 8, c31);
  _mm256_store_ps(tmp[4], c40);
  _mm256_store_ps(tmp[4] + 8, c41);
  _mm256_store_ps(tmp[5], c50);
  _mm256_store_ps(tmp[5] + 8, c51);
  if (nr == kNR) {
    for (int i = 0; i < mr; ++i) {
      float* ci = c + i * ldc;
      __m256 r0 = _mm256_load_ps(tmp[i]), r1 = _mm256_load_ps(tmp[i] + 8);
      if (acc) {
        r0 = _mm256_add_ps(r0, _mm256_loadu_ps(ci));
        r1 = _mm256_add_ps(r1, _mm256_loadu_ps(ci + 8));
      }
      _mm256_storeu_ps(ci, r0);
      _mm256_storeu_ps(ci + 8, r1);
    }
    return;
  }
  for (int i = 0; i < mr; ++i) {
    float* ci = c + i * ldc;
    for (int j = 0; j < nr; ++j) ci[j] = acc ? ci[j] + tmp[i][j] : tmp[i][j];
  }
}

void sgemm_avx2(int64_t m, int64_t n, int64_t k, const float* a, int64_t lda, const float* b, int64_t ldb, float* c,
                int64_t ldc, bool accumulate) {
  thread_local std::vector<float> apack, bpack;
  apack.resize(static_cast<size_t>(kMC * kKC));
  bpack.resize(static_cast<size_t>(kKC * kNC));
  const bool direct_b = m <= 4 * kMR;
  for (int64_t jc = 0; jc < n; jc += kNC) {
    const int64_t nc = std::min(kNC, n - jc);
    for (int64_t pc = 0; pc < k; pc += kKC) {
      const int64_t kc = std::min(kKC, k - pc);
      const bool acc = accumulate || pc > 0;
      // B[pc:pc+kc, jc:jc+nc] as panels of kc x 16, zero-padded on the right. With few rows of A a
      // panel is reused only a few times: full panels are then read from B in place, unpacked.
      for (int64_t jr = 0; jr < nc; jr += kNR) {
        const int64_t nr = std::min<int64_t>(kNR, nc - jr);
        if (direct_b && nr == kNR) continue;
        float* dst = bpack.data() + jr * kc;
        const float* src = b + pc * ldb + jc + jr;
        for (int64_t p = 0; p < kc; ++p, dst += kNR, src += ldb) {
          std::memcpy(dst, src, static_cast<size_t>(nr) * sizeof(float));
          for (int64_t j = nr; j < kNR; ++j) dst[j] = 0.0f;
        }
      }
      for (int64_t ic = 0; ic < m; ic += kMC) {
        const int64_t mc = std::min(kMC, m - ic);
        // A[ic:ic+mc, pc:pc+kc] as panels of 6 x kc (column of 6 per step), zero-padded below.
        for (int64_t ir = 0; ir < mc; ir += kMR) {
          const int64_t mr = std::min<int64_t>(kMR, mc - ir);
          float* dst = apack.data() + ir * kc;
          for (int64_t p = 0; p < kc; ++p)
            for (int64_t i = 0; i < kMR; ++i)
              dst[p * kMR + i] = i < mr ? a[(ic + ir + i) * lda + pc + p] : 0.0f;
        }
        for (int64_t jr = 0; jr < nc; jr += kNR) {
          const int nr = static_cast<int>(std::min<int64_t>(kNR, nc - jr));
          for (int64_t ir = 0; ir < mc; ir += kMR) {
            const int mr = static_cast<int>(std::min<int64_t>(kMR, mc - ir));
            const bool in_place = direct_b && nr == kNR;
            micro_6x16(kc, apack.data() + ir * kc, in_place ? b + pc * ldb + jc + jr : bpack.data() + jr * kc,
                       in_place ? ldb : kNR, c + (ic + ir) * ldc + jc + jr, ldc, acc, mr, nr);
          }
        }
      }
    }
  }
}

#endif  // COMPRESS_EVAL_X86

}  // namespace

void set_reference_mode(bool on) { g_reference = on; }
bool reference_mode() { return g_reference; }

bool sgemm_is_avx2() {
#ifdef COMPRESS_EVAL_X86
  return !reference_mode() && cpu_has_avx2_fma();
#else
  return false;
#endif
}

void sgemm(int64_t m, int64_t n, int64_t k, const float* a, int64_t lda, const float* b, int64_t ldb, float* c,
           int64_t ldc, bool accumulate) {
  if (m <= 0 || n <= 0) return;
  if (k <= 0) {
    if (!accumulate)
      for (int64_t i = 0; i < m; ++i) std::fill_n(c + i * ldc, n, 0.0f);
    return;
  }
#ifdef COMPRESS_EVAL_X86
  // Narrow products (GEMV-like) stay with Eigen: the 6x16 tile would mostly compute padding.
  if (n >= kNR && m >= 4 && sgemm_is_avx2()) return sgemm_avx2(m, n, k, a, lda, b, ldb, c, ldc, accumulate);
#endif
  sgemm_eigen(m, n, k, a, lda, b, ldb, c, ldc, accumulate);
}

namespace {

#ifdef COMPRESS_EVAL_X86
// One output plane (stride 1 along the last axis) from its zero-padded input plane xp [p0, p1, p2]:
// 16 or 8 outputs at a time accumulate every tap in registers before one store.
__attribute__((target("avx2,fma"))) void depthwise_plane_avx2(const float* xp, int64_t p1, int64_t p2, const float* wc,
                                                              float bias, float* yc, const int64_t* k, const int64_t* s,
                                                              const int64_t* d, const int64_t* out) {
  const int64_t d2 = d[2], kn = k[2];
  for (int64_t o0 = 0; o0 < out[0]; ++o0)
    for (int64_t o1 = 0; o1 < out[1]; ++o1) {
      float* dst = yc + (o0 * out[1] + o1) * out[2];
      const float* base = xp + ((o0 * s[0]) * p1 + o1 * s[1]) * p2;
      int64_t o2 = 0;
      for (; o2 + 16 <= out[2]; o2 += 16) {
        __m256 a0 = _mm256_set1_ps(bias), a1 = a0;
        for (int64_t k0 = 0; k0 < k[0]; ++k0)
          for (int64_t k1 = 0; k1 < k[1]; ++k1) {
            const float* row = base + (k0 * d[0] * p1 + k1 * d[1]) * p2 + o2;
            const float* wk = wc + (k0 * k[1] + k1) * kn;
            for (int64_t k2 = 0; k2 < kn; ++k2) {
              const __m256 wv = _mm256_set1_ps(wk[k2]);
              a0 = _mm256_fmadd_ps(wv, _mm256_loadu_ps(row + k2 * d2), a0);
              a1 = _mm256_fmadd_ps(wv, _mm256_loadu_ps(row + k2 * d2 + 8), a1);
            }
          }
        _mm256_storeu_ps(dst + o2, a0);
        _mm256_storeu_ps(dst + o2 + 8, a1);
      }
      for (; o2 + 8 <= out[2]; o2 += 8) {
        __m256 a0 = _mm256_set1_ps(bias);
        for (int64_t k0 = 0; k0 < k[0]; ++k0)
          for (int64_t k1 = 0; k1 < k[1]; ++k1) {
            const float* row = base + (k0 * d[0] * p1 + k1 * d[1]) * p2 + o2;
            const float* wk = wc + (k0 * k[1] + k1) * kn;
            for (int64_t k2 = 0; k2 < kn; ++k2)
              a0 = _mm256_fmadd_ps(_mm256_set1_ps(wk[k2]), _mm256_loadu_ps(row + k2 * d2), a0);
          }
        _mm256_storeu_ps(dst + o2, a0);
      }
      for (; o2 < out[2]; ++o2) {
        float acc = bias;
        for (int64_t k0 = 0; k0 < k[0]; ++k0)
          for (int64_t k1 = 0; k1 < k[1]; ++k1) {
            const float* row = base + (k0 * d[0] * p1 + k1 * d[1]) * p2 + o2;
            const float* wk = wc + (k0 * k[1] + k1) * kn;
            for (int64_t k2 = 0; k2 < kn; ++k2) acc += wk[k2] * row[k2 * d2];
          }
        dst[o2] = acc;
      }
    }
}
#endif

// Padded input plane per channel, then the AVX2 plane kernel.
void depthwise_conv_padded(const float* x, const float* w, const float* bias, float* y, int64_t cin, int64_t mult,
                           const int64_t in[3], const int64_t k[3], const int64_t s[3], const int64_t d[3],
                           const int64_t pb[3], const int64_t out[3]) {
#ifdef COMPRESS_EVAL_X86
  const int64_t isz = in[0] * in[1] * in[2], osz = out[0] * out[1] * out[2], ksz = k[0] * k[1] * k[2];
  int64_t p[3];
  for (int t = 0; t < 3; ++t) p[t] = std::max(in[t] + pb[t], (out[t] - 1) * s[t] + (k[t] - 1) * d[t] + 1);
  thread_local std::vector<float> xp;
  xp.assign(static_cast<size_t>(p[0] * p[1] * p[2]), 0.0f);
  for (int64_t ic = 0; ic < cin; ++ic) {
    const float* xc = x + ic * isz;
    for (int64_t i0 = 0; i0 < in[0]; ++i0)
      for (int64_t i1 = 0; i1 < in[1]; ++i1)
        std::copy_n(xc + (i0 * in[1] + i1) * in[2], in[2], xp.data() + ((i0 + pb[0]) * p[1] + i1 + pb[1]) * p[2] + pb[2]);
    for (int64_t oc = ic * mult; oc < (ic + 1) * mult; ++oc)
      depthwise_plane_avx2(xp.data(), p[1], p[2], w + oc * ksz, bias ? bias[oc] : 0.0f, y + oc * osz, k, s, d, out);
  }
#else
  (void)x, (void)w, (void)bias, (void)y, (void)cin, (void)mult, (void)in, (void)k, (void)s, (void)d, (void)pb, (void)out;
#endif
}

}  // namespace

void depthwise_conv(const float* x, const float* w, const float* bias, float* y, int64_t cin, int64_t mult,
                    const int64_t in[3], const int64_t k[3], const int64_t s[3], const int64_t d[3],
                    const int64_t pb[3], const int64_t out[3]) {
#ifdef COMPRESS_EVAL_X86
  if (s[2] == 1 && out[2] >= 8 && cpu_has_avx2_fma())
    return depthwise_conv_padded(x, w, bias, y, cin, mult, in, k, s, d, pb, out);
#endif
  const int64_t isz = in[0] * in[1] * in[2], osz = out[0] * out[1] * out[2], ksz = k[0] * k[1] * k[2];
  // Valid output range [lo, hi) along the last axis for each tap k2: 0 <= o2 * s2 - pb2 + k2 * d2 < in2.
  std::vector<int64_t> lo(static_cast<size_t>(k[2])), hi(static_cast<size_t>(k[2]));
  for (int64_t k2 = 0; k2 < k[2]; ++k2) {
    const int64_t off = k2 * d[2] - pb[2];
    const int64_t l = off >= 0 ? 0 : (-off + s[2] - 1) / s[2];
    const int64_t h = in[2] - 1 - off < 0 ? 0 : std::min(out[2], (in[2] - 1 - off) / s[2] + 1);
    lo[static_cast<size_t>(k2)] = std::min(l, h);
    hi[static_cast<size_t>(k2)] = h;
  }
  for (int64_t oc = 0; oc < cin * mult; ++oc) {
    const float* xc = x + (oc / mult) * isz;
    const float* wc = w + oc * ksz;
    float* yc = y + oc * osz;
    const float b0 = bias ? bias[oc] : 0.0f;
    for (int64_t o0 = 0; o0 < out[0]; ++o0)
      for (int64_t o1 = 0; o1 < out[1]; ++o1) {
        float* dst = yc + (o0 * out[1] + o1) * out[2];
        std::fill_n(dst, out[2], 0.0f);
        for (int64_t k0 = 0; k0 < k[0]; ++k0) {
          const int64_t i0 = o0 * s[0] - pb[0] + k0 * d[0];
          if (i0 < 0 || i0 >= in[0]) continue;
          for (int64_t k1 = 0; k1 < k[1]; ++k1) {
            const int64_t i1 = o1 * s[1] - pb[1] + k1 * d[1];
            if (i1 < 0 || i1 >= in[1]) continue;
            const float* row = xc + (i0 * in[1] + i1) * in[2];
            const float* wk = wc + (k0 * k[1] + k1) * k[2];
            for (int64_t k2 = 0; k2 < k[2]; ++k2) {
              const float wv = wk[k2];
              const int64_t off = k2 * d[2] - pb[2];
              const int64_t l = lo[static_cast<size_t>(k2)], h = hi[static_cast<size_t>(k2)];
              if (s[2] == 1) {
                for (int64_t o2 = l; o2 < h; ++o2) dst[o2] += wv * row[o2 + off];
              } else {
                const int64_t st = s[2];
                for (int64_t o2 = l; o2 < h; ++o2) dst[o2] += wv * row[o2 * st + off];
              }
            }
          }
        }
        if (b0 != 0.0f)
          for (int64_t o2 = 0; o2 < out[2]; ++o2) dst[o2] += b0;
      }
  }
}

}  // namespace compress::eval::kernels
