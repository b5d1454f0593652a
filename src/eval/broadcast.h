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

/// Like for_each_broadcast, but in runs: body(k, len, offsets, steps) covers output elements
/// [k, k + len), where input n reads offsets[n] + j * steps[n] (steps 0 or 1) for j < len. A run is the
/// longest suffix of the output dims along which every input is either contiguous or broadcast, so
/// same-shape, scalar and per-channel operands get long branch-free loops. `unit_runs` forces len 1
/// (the reference path the tests compare against).
template <size_t N, class F>
void for_each_broadcast_run(const std::vector<int64_t>& out, const std::array<const std::vector<int64_t>*, N>& ins,
                            bool unit_runs, F&& body) {
  if (unit_runs) {
    const std::array<int64_t, N> zero{};
    for_each_broadcast<N>(out, ins, [&](int64_t k, const std::array<int64_t, N>& off) { body(k, 1, off, zero); });
    return;
  }
  const size_t r = out.size();
  int64_t total = 1;
  for (auto d : out) total *= d;
  if (total == 0) return;
  auto dim_of = [&](size_t n, size_t k) {
    const auto& d = *ins[n];
    const size_t lead = r - d.size();
    return k < lead ? int64_t{1} : d[k - lead];
  };
  // kind: 0 undetermined, 1 contiguous, 2 broadcast.
  std::array<int, N> kind{};
  size_t split = r;
  int64_t len = 1;
  while (split > 0) {
    const size_t k = split - 1;
    std::array<int, N> next = kind;
    bool ok = true;
    if (out[k] != 1)
      for (size_t n = 0; n < N && ok; ++n) {
        const int want = dim_of(n, k) == out[k] ? 1 : 2;
        if (next[n] != 0 && next[n] != want) ok = false;
        next[n] = want;
      }
    if (!ok) break;
    kind = next;
    len *= out[k];
    --split;
  }
  std::array<int64_t, N> steps{};
  for (size_t n = 0; n < N; ++n) steps[n] = kind[n] == 1 ? 1 : 0;
  // Strides of each input over the outer dims [0, split), 0 along broadcast dims.
  std::vector<std::array<int64_t, N>> stride(split);
  for (size_t n = 0; n < N; ++n) {
    int64_t s = 1;
    for (size_t k = r; k-- > 0;) {
      const int64_t dim = dim_of(n, k);
      if (k < split) stride[k][n] = dim == 1 ? 0 : s;
      s *= dim;
    }
  }
  std::array<int64_t, N> offs{};
  std::vector<int64_t> idx(split, 0);
  for (int64_t k = 0; k < total; k += len) {
    body(k, len, offs, steps);
    for (size_t d = split; d-- > 0;) {
      ++idx[d];
      for (size_t n = 0; n < N; ++n) offs[n] += stride[d][n];
      if (idx[d] < out[d]) break;
      for (size_t n = 0; n < N; ++n) offs[n] -= stride[d][n] * out[d];
      idx[d] = 0;
    }
  }
}

}  // namespace compress::eval
