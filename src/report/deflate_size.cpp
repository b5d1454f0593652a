#include "report/deflate_size.h"

#include <zlib.h>

#include <stdexcept>

namespace deflate_size {

struct Counter::State {
  z_stream z{};
};

Counter::Counter() : state_(std::make_unique<State>()) {
  if (deflateInit(&state_->z, 6) != Z_OK) throw std::runtime_error("zlib init failed");
}

Counter::~Counter() { deflateEnd(&state_->z); }

void Counter::feed(const char* data, size_t size, bool finish) {
  z_stream& z = state_->z;
  unsigned char out[1 << 16];
  // zlib counts in uInt; feed huge buffers in slices.
  do {
    const size_t slice = size > (1u << 30) ? (1u << 30) : size;
    const bool last = finish && slice == size;
    z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data));
    z.avail_in = static_cast<uInt>(slice);
    int rc = Z_OK;
    do {
      z.next_out = out;
      z.avail_out = sizeof(out);
      rc = deflate(&z, last ? Z_FINISH : Z_NO_FLUSH);
      total_ += static_cast<int64_t>(sizeof(out) - z.avail_out);
    } while (z.avail_out == 0 || (last && rc != Z_STREAM_END));
    data += slice;
    size -= slice;
  } while (size > 0);
}

}  // namespace deflate_size
