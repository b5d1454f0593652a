// Fast float32 kernels behind the op functions: a packed SGEMM (AVX2+FMA micro-kernel chosen at run
// time when the CPU has it, Eigen otherwise) and a direct depthwise convolution. The build uses no
// -march flag: the AVX2 code lives in functions with a target attribute and runs only after a CPU check.
#pragma once

#include <cstdint>

namespace compress::eval::kernels {

/// C[m, n] = A[m, k] * B[k, n] (+ C when `accumulate`), all row-major with row strides lda, ldb, ldc.
void sgemm(int64_t m, int64_t n, int64_t k, const float* a, int64_t lda, const float* b, int64_t ldb, float* c,
           int64_t ldc, bool accumulate);

/// True when sgemm runs the AVX2+FMA micro-kernel on this CPU (and reference mode is off).
bool sgemm_is_avx2();

/// Depthwise-style convolution of one image: input channel ic = oc / mult feeds output channel oc.
/// x [cin, in0, in1, in2], w [cin * mult, k0, k1, k2], y [cin * mult, out0, out1, out2], bias nullable.
/// Spatial geometry padded to 3 dims (leading dims of size 1): in, k, stride, dilation, pad-begin, out.
void depthwise_conv(const float* x, const float* w, const float* bias, float* y, int64_t cin, int64_t mult,
                    const int64_t in[3], const int64_t k[3], const int64_t s[3], const int64_t d[3],
                    const int64_t pb[3], const int64_t out[3]);

/// Reference mode (tests only): when on, ops take their generic paths (im2col + Eigen GEMM for every
/// Conv, Eigen for sgemm, the index-walking broadcast loop) so fast paths can be compared with them.
void set_reference_mode(bool on);
bool reference_mode();

}  // namespace compress::eval::kernels
