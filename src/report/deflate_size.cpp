#include "report/deflate_size.h"

#include <zlib.h>

#include <stdexcept>
#include <vector>

namespace deflate_size {

namespace {

constexpr size_t kChunk = size_t{4} << 20;

int64_t deflate_chunk(const char* data, size_t size, int level) {
  uLongf bound = compressBound(static_cast<uLong>(size));
  std::vector<Bytef> out(bound);
  if (compress2(out.data(), &bound, reinterpret_cast<const Bytef*>(data), static_cast<uLong>(size), level) != Z_OK)
    throw std::runtime_error("zlib compression failed");
  return static_cast<int64_t>(bound);
}

}  // namespace

int64_t deflated_size(const char* data, size_t size, int level) {
  const auto chunks = static_cast<int64_t>((size + kChunk - 1) / kChunk);
  int64_t total = 0;
#pragma omp parallel for reduction(+ : total) schedule(dynamic)
  for (int64_t i = 0; i < chunks; ++i) {
    const size_t begin = static_cast<size_t>(i) * kChunk;
    total += deflate_chunk(data + begin, std::min(kChunk, size - begin), level);
  }
  return total;
}

int64_t deflated_size_sampled(const char* data, size_t size, int level, int64_t stride) {
  // Small pieces spread evenly: deflate's window is 32 KiB, so a 64 KiB piece compresses about
  // as well as it does inside the stream, and spreading covers every part of the weights.
  constexpr size_t kPiece = size_t{64} << 10;
  const auto pieces = static_cast<int64_t>(size / kPiece);
  if (stride <= 1 || pieces < 16 * stride) return deflated_size(data, size, level);
  int64_t packed = 0, sampled = 0;
#pragma omp parallel for reduction(+ : packed, sampled) schedule(dynamic)
  for (int64_t i = stride / 2; i < pieces; i += stride) {
    packed += deflate_chunk(data + static_cast<size_t>(i) * kPiece, kPiece, level);
    sampled += static_cast<int64_t>(kPiece);
  }
  return static_cast<int64_t>(static_cast<double>(packed) * static_cast<double>(size) / static_cast<double>(sampled));
}

}  // namespace deflate_size
