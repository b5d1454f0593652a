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

int64_t deflated_pieces(const char* data, size_t count, int level) {
  int64_t packed = 0;
#pragma omp parallel for reduction(+ : packed) schedule(dynamic)
  for (int64_t i = 0; i < static_cast<int64_t>(count); ++i)
    packed += deflate_chunk(data + static_cast<size_t>(i) * kPieceBytes, kPieceBytes, level);
  return packed;
}

}  // namespace deflate_size
