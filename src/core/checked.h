// Overflow-checked int64 arithmetic for element counts, byte sizes and file offsets: values taken from
// a model file are untrusted, and a product that wraps (dims [2^32, 2^32] -> 0 elements) would let a
// tensor with no data pass every size check.
#pragma once

#include <cstdint>
#include <optional>

namespace compress {

/// a * b, or nullopt when the product does not fit in int64.
inline std::optional<int64_t> checked_mul(int64_t a, int64_t b) {
  int64_t r = 0;
  if (__builtin_mul_overflow(a, b, &r)) return std::nullopt;
  return r;
}

/// a + b, or nullopt when the sum does not fit in int64.
inline std::optional<int64_t> checked_add(int64_t a, int64_t b) {
  int64_t r = 0;
  if (__builtin_add_overflow(a, b, &r)) return std::nullopt;
  return r;
}

/// Product of non-negative dims, or nullopt on overflow or a negative dim.
template <class Dims>
std::optional<int64_t> checked_product(const Dims& dims) {
  int64_t n = 1;
  for (int64_t d : dims) {
    if (d < 0) return std::nullopt;
    const auto next = checked_mul(n, d);
    if (!next) return std::nullopt;
    n = *next;
  }
  return n;
}

}  // namespace compress
