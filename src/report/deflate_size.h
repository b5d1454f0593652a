// zlib's global `compress()` function clashes with our namespace, so zlib lives in its own
// translation unit behind this tiny interface (no compress headers included there).
#pragma once

#include <cstddef>
#include <cstdint>

namespace deflate_size {

/// Bytes of `data` after zlib at `level`, compressed in independent 4 MiB chunks on all cores (like
/// pigz: within ~0.1% of one stream).
int64_t deflated_size(const char* data, size_t size, int level);

/// An estimate of deflated_size for big inputs: one 64 KiB piece in every `stride`, evenly spread,
/// is compressed and the total scaled by size / sampled bytes (exact below 16 x stride pieces).
int64_t deflated_size_sampled(const char* data, size_t size, int level, int64_t stride);

/// Chunk size to feed deflated_size with when streaming a file (a multiple of the chunk).
constexpr size_t kBlockBytes = size_t{64} << 20;

}  // namespace deflate_size
