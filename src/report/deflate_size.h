// zlib's global `compress()` function clashes with our namespace, so zlib lives in its own
// translation unit behind this tiny interface (no compress headers included there).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>

namespace deflate_size {

/// Counts the bytes deflate (zlib level 6) makes of a stream fed in chunks.
class Counter {
 public:
  Counter();
  ~Counter();
  Counter(const Counter&) = delete;
  Counter& operator=(const Counter&) = delete;
  void feed(const char* data, size_t size, bool finish);
  int64_t total() const { return total_; }

 private:
  struct State;
  std::unique_ptr<State> state_;
  int64_t total_ = 0;
};

}  // namespace deflate_size
