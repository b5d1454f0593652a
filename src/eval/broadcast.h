// Numpy-style broadcasting loops for the element-wise kernels.
#pragma once

#include <array>
#include <cstdint>
#include <vector>

namespace compress::eval {

/// Calls body(k, offsets) for every element k of `out` (row-major) with the offset of that element in
/// each of the N inputs, whose dims broadcast to `out` (already checked).
template <size_t N, class F>
void for_each_broadcast(const std::vector<int64_t>& out, const std::array<const std::vector<int64_t>*, N>& ins, F&& body) {
  const size_t r = out.size();
  int64_t total = 1;
  for (auto d : out) total *= d;
  if (total == 0) return;
  bool same = true;
  for (const auto* d : ins) same = same && *d == out;
  std::array<int64_t, N> offs{};
  if (same) {
    for (int64_t k = 0; k < total; ++k) {
      offs.fill(k);
      body(k, offs);
    }
    return;
  }
  // Strides of each input aligned to the output rank, 0 along broadcast dims.
  std::vector<std::array<int64_t, N>> stride(r);
  for (size_t n = 0; n < N; ++n) {
    const auto& d = *ins[n];
    int64_t s = 1;
    for (size_t k = r; k-- > 0;) {
      const size_t lead = r - d.size();
      const int64_t dim = k < lead ? 1 : d[k - lead];
      stride[k][n] = dim == 1 ? 0 : s;
      s *= dim;
    }
  }
  if (r == 0) {
    body(0, offs);
    return;
  }
  std::vector<int64_t> idx(r, 0);
  const int64_t inner = out[r - 1];
  const auto inner_stride = stride[r - 1];
  int64_t k = 0;
  while (k < total) {
    std::array<int64_t, N> base = offs;
    for (int64_t j = 0; j < inner; ++j) {
      body(k++, base);
      for (size_t n = 0; n < N; ++n) base[n] += inner_stride[n];
    }
    // Advance the odometer over the outer dims.
    for (size_t d = r - 1; d-- > 0;) {
      ++idx[d];
      for (size_t n = 0; n < N; ++n) offs[n] += stride[d][n];
      if (idx[d] < out[d]) break;
      for (size_t n = 0; n < N; ++n) offs[n] -= stride[d][n] * out[d];
      idx[d] = 0;
    }
  }
}

}  // namespace compress::eval
