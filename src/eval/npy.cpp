// .npy files: magic, version, a Python-dict header {'descr', 'fortran_order', 'shape'}, then the raw
// little-endian data in C order.
#include <compress/error.h>
#include <compress/npy.h>
#include <compress/tensor.h>

#include <cstring>
#include <fstream>
#include <sstream>

namespace compress::eval {

namespace {

struct Descr {
  const char* text;
  int32_t dtype;
  int bytes;
};

constexpr Descr kDescrs[] = {
    {"<f4", onnx::TensorProto::FLOAT, 4}, {"<f2", onnx::TensorProto::FLOAT16, 2},
    {"<f8", onnx::TensorProto::DOUBLE, 8}, {"<i8", onnx::TensorProto::INT64, 8},
    {"<i4", onnx::TensorProto::INT32, 4}, {"|i1", onnx::TensorProto::INT8, 1},
    {"|u1", onnx::TensorProto::UINT8, 1}, {"|b1", onnx::TensorProto::BOOL, 1},
};

std::string header_value(const std::string& header, const std::string& key) {
  const auto k = header.find("'" + key + "'");
  if (k == std::string::npos) return "";
  auto v = header.find(':', k);
  if (v == std::string::npos) return "";
  ++v;
  while (v < header.size() && header[v] == ' ') ++v;
  if (header[v] == '(') return header.substr(v, header.find(')', v) - v + 1);
  if (header[v] == '\'') return header.substr(v + 1, header.find('\'', v + 1) - v - 1);
  return header.substr(v, header.find_first_of(",}", v) - v);
}

}  // namespace

Tensor read_npy(const std::filesystem::path& path) {
  auto fail = [&](const std::string& why) -> Error { return Error(ExitCode::kBadInput, path.string() + ": " + why); };
  std::ifstream in(path, std::ios::binary);
  if (!in) throw fail("cannot open");
  std::string data((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (data.size() < 10 || data.compare(0, 6, "\x93NUMPY") != 0) throw fail("not a .npy file");
  const int major = static_cast<unsigned char>(data[6]);
  size_t header_len = 0, start = 0;
  if (major == 1) {
    header_len = static_cast<unsigned char>(data[8]) | (static_cast<size_t>(static_cast<unsigned char>(data[9])) << 8);
    start = 10;
  } else if (major == 2 || major == 3) {
    if (data.size() < 12) throw fail("truncated header");
    for (int k = 0; k < 4; ++k) header_len |= static_cast<size_t>(static_cast<unsigned char>(data[8 + k])) << (8 * k);
    start = 12;
  } else {
    throw fail("unsupported .npy version " + std::to_string(major));
  }
  if (data.size() < start + header_len) throw fail("truncated header");
  const std::string header = data.substr(start, header_len);
  const std::string descr = header_value(header, "descr");
  if (header_value(header, "fortran_order") != "False") throw fail("Fortran-order arrays are not supported");
  const Descr* d = nullptr;
  for (const auto& c : kDescrs)
    if (descr == c.text || (c.bytes == 1 && descr.size() == 3 && descr.substr(1) == std::string(c.text).substr(1))) d = &c;
  if (!d) throw fail("dtype '" + descr + "' is not supported (float32/16/64, int64/32/8, uint8, bool)");
  Tensor t;
  t.dtype = d->dtype == onnx::TensorProto::DOUBLE ? onnx::TensorProto::FLOAT : d->dtype;
  const std::string shape = header_value(header, "shape");
  std::stringstream dims(shape.substr(1, shape.size() >= 2 ? shape.size() - 2 : 0));
  std::string dim;
  while (std::getline(dims, dim, ',')) {
    if (dim.find_first_not_of(' ') == std::string::npos) continue;
    t.dims.push_back(std::stoll(dim));
  }
  const int64_t n = t.numel();
  const char* p = data.data() + start + header_len;
  if (static_cast<int64_t>(data.size() - start - header_len) < n * d->bytes)
    throw fail("holds fewer bytes than its shape needs");
  if (t.is_float()) t.f.resize(static_cast<size_t>(n)); else t.i.resize(static_cast<size_t>(n));
  for (int64_t k = 0; k < n; ++k) {
    const char* e = p + k * d->bytes;
    switch (d->dtype) {
      case onnx::TensorProto::FLOAT: std::memcpy(&t.f[k], e, 4); break;
      case onnx::TensorProto::FLOAT16: { uint16_t h; std::memcpy(&h, e, 2); t.f[k] = half_to_float(h); break; }
      case onnx::TensorProto::DOUBLE: { double v; std::memcpy(&v, e, 8); t.f[k] = static_cast<float>(v); break; }
      case onnx::TensorProto::INT64: std::memcpy(&t.i[k], e, 8); break;
      case onnx::TensorProto::INT32: { int32_t v; std::memcpy(&v, e, 4); t.i[k] = v; break; }
      case onnx::TensorProto::INT8: t.i[k] = static_cast<int8_t>(*e); break;
      default: t.i[k] = static_cast<uint8_t>(*e); break;
    }
  }
  return t;
}

void write_npy(const std::filesystem::path& path, const Tensor& t) {
  const Descr* d = nullptr;
  for (const auto& c : kDescrs)
    if (c.dtype == t.dtype) d = &c;
  if (!d) throw Error(ExitCode::kWriteFailed, path.string() + ": cannot write " + dtype_name(t.dtype) + " as .npy");
  std::string shape = "(";
  for (size_t k = 0; k < t.dims.size(); ++k) shape += std::to_string(t.dims[k]) + (t.dims.size() == 1 ? "," : (k + 1 < t.dims.size() ? ", " : ""));
  shape += ")";
  std::string header = "{'descr': '" + std::string(d->text) + "', 'fortran_order': False, 'shape': " + shape + ", }";
  while ((10 + header.size() + 1) % 64 != 0) header += ' ';
  header += '\n';
  std::string out = "\x93NUMPY";
  out += '\x01';
  out += '\x00';
  out += static_cast<char>(header.size() & 0xFF);
  out += static_cast<char>(header.size() >> 8);
  out += header;
  const int64_t n = t.numel();
  for (int64_t k = 0; k < n; ++k) {
    char e[8];
    switch (t.dtype) {
      case onnx::TensorProto::FLOAT: std::memcpy(e, &t.f[k], 4); break;
      case onnx::TensorProto::FLOAT16: { const uint16_t h = float_to_half(t.f[k]); std::memcpy(e, &h, 2); break; }
      case onnx::TensorProto::DOUBLE: { const double v = t.f[k]; std::memcpy(e, &v, 8); break; }
      case onnx::TensorProto::INT64: std::memcpy(e, &t.i[k], 8); break;
      case onnx::TensorProto::INT32: { const auto v = static_cast<int32_t>(t.i[k]); std::memcpy(e, &v, 4); break; }
      default: e[0] = static_cast<char>(t.i[k]); break;
    }
    out.append(e, static_cast<size_t>(d->bytes));
  }
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f.write(out.data(), static_cast<std::streamsize>(out.size()));
  if (!f.flush()) throw Error(ExitCode::kWriteFailed, path.string() + ": cannot write");
}

}  // namespace compress::eval
