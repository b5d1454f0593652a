// zlib's global `compress()` function clashes with our namespace, so zlib lives in its own
// translation unit behind this tiny interface (no compress headers included there).
#pragma once

#include <cstddef>
#include <cstdint>

namespace deflate_size {

/// Bytes of `data` after zlib at `level`, compressed in independent 4 MiB chunks on all cores (like
/// pigz: within ~0.1% of one stream).
int64_t deflated_size(const char* data, size_t size, int level);

/// The piece an estimate samples: deflate's window is 32 KiB, so a 64 KiB piece compresses about
/// as well alone as it does inside the stream.
constexpr size_t kPieceBytes = size_t{64} << 10;

/// Sum of the zlib sizes of `count` consecutive kPieceBytes pieces at `data`, each compressed alone
/// (on all cores).
int64_t deflated_pieces(const char* data, size_t count, int level);

/// Chunk size to feed deflated_size with when streaming a file (a multiple of the chunk).
constexpr size_t kBlockBytes = size_t{64} << 20;

}  // namespace deflate_size
