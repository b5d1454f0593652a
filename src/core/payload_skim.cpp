// skim_payloads: a serialized ModelProto rewritten, at the wire-format level, so that the large
// raw_data of the main graph's initializers stays in the file. Each such TensorProto loses its
// raw_data field and gains data_location = EXTERNAL with external_data {location, offset, length}
// pointing at the bytes where they lie in the original file. Everything else is copied byte for
// byte, so parsing the result gives the model protobuf would give, minus those payload copies.
//
// Model::load parses the result and maps the file: the parse copies kilobytes instead of the
// weights, which stay in the file until a pass or the writer reads them. Anything unusual (a tensor that already names external data, a field the
// scan cannot walk) is left as it is, or the whole skim gives up and the caller loads normally.
#include "core/payload_skim.h"

#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/io/zero_copy_stream_impl_lite.h>
#include <google/protobuf/wire_format_lite.h>

namespace compress {

namespace {

using google::protobuf::internal::WireFormatLite;
using google::protobuf::io::CodedInputStream;

// Field numbers of onnx.proto3 (ONNX 1.12) that the skim walks or writes.
constexpr uint32_t kModelGraph = 7;
constexpr uint32_t kGraphInitializer = 5;
constexpr uint32_t kTensorRawData = 9;
// float_data, int32_data, string_data, int64_data, double_data, uint64_data
constexpr uint32_t kTensorTypedFields[] = {4, 5, 6, 7, 10, 11};
constexpr uint32_t kTensorExternalData = 13;
constexpr uint32_t kTensorDataLocation = 14;
constexpr uint32_t kEntryKey = 1;
constexpr uint32_t kEntryValue = 2;
constexpr int kExternal = 1;  // TensorProto::EXTERNAL

void put_varint(std::string& out, uint64_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<char>(v | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
}

void put_tag(std::string& out, uint32_t field, WireFormatLite::WireType type) {
  put_varint(out, WireFormatLite::MakeTag(static_cast<int>(field), type));
}

void put_bytes(std::string& out, uint32_t field, std::string_view bytes) {
  put_tag(out, field, WireFormatLite::WIRETYPE_LENGTH_DELIMITED);
  put_varint(out, bytes.size());
  out.append(bytes);
}

void put_entry(std::string& out, const std::string& key, const std::string& value) {
  std::string entry;
  put_bytes(entry, kEntryKey, key);
  put_bytes(entry, kEntryValue, value);
  put_bytes(out, kTensorExternalData, entry);
}

// One field of a message as it lies in the file: [start, end) is the whole field (tag included);
// for a length-delimited field, [payload, end) is its payload.
struct Field {
  uint32_t number = 0;
  bool delimited = false;
  size_t start = 0, payload = 0, end = 0;
  size_t length() const { return end - payload; }
};

// Walks the fields of one message in [begin, begin + size) of `file`, calling on_field(Field).
// Returns false when the bytes are not a walkable message.
template <class Fn>
bool walk(const char* file, size_t begin, size_t size, Fn&& on_field) {
  CodedInputStream in(reinterpret_cast<const uint8_t*>(file + begin), static_cast<int>(size));
  in.SetTotalBytesLimit(INT32_MAX);
  for (;;) {
    Field f;
    f.start = begin + static_cast<size_t>(in.CurrentPosition());
    const uint32_t tag = in.ReadTag();
    if (tag == 0) return in.ConsumedEntireMessage() && static_cast<size_t>(in.CurrentPosition()) == size;
    f.number = WireFormatLite::GetTagFieldNumber(tag);
    f.delimited = WireFormatLite::GetTagWireType(tag) == WireFormatLite::WIRETYPE_LENGTH_DELIMITED;
    if (f.delimited) {
      uint32_t length = 0;
      if (!in.ReadVarint32(&length) || length > static_cast<uint32_t>(INT32_MAX)) return false;
      f.payload = begin + static_cast<size_t>(in.CurrentPosition());
      if (!in.Skip(static_cast<int>(length))) return false;
    } else if (!WireFormatLite::SkipField(&in, tag)) {
      return false;
    }
    f.end = begin + static_cast<size_t>(in.CurrentPosition());
    if (!f.delimited) f.payload = f.end;
    on_field(f);
  }
}

// One TensorProto: without its raw_data (when larger than `min_bytes` and the tensor names no
// external data of its own nor typed values beside it) and with a reference to where the bytes
// lie; otherwise as it was.
bool skim_tensor(const char* file, size_t begin, size_t size, const SkimOptions& options, std::string& out,
                 int64_t& skimmed) {
  std::optional<Field> raw;
  bool keep = false;  // external data or typed values: the load reports what is wrong with it
  const bool ok = walk(file, begin, size, [&](const Field& f) {
    if (f.number == kTensorExternalData || f.number == kTensorDataLocation) keep = true;
    for (uint32_t typed : kTensorTypedFields) keep = keep || f.number == typed;
    if (f.number == kTensorRawData && f.delimited) raw = f;  // the last one wins, as in a parse
  });
  if (!ok) return false;
  if (!raw || keep || raw->length() <= options.min_bytes) {
    out.append(file + begin, size);
    return true;
  }
  walk(file, begin, size, [&](const Field& f) {
    if (f.number != kTensorRawData) out.append(file + f.start, f.end - f.start);
  });
  put_tag(out, kTensorDataLocation, WireFormatLite::WIRETYPE_VARINT);
  put_varint(out, kExternal);
  put_entry(out, "location", options.location);
  put_entry(out, "offset", std::to_string(raw->payload));
  put_entry(out, "length", std::to_string(raw->length()));
  skimmed += static_cast<int64_t>(raw->length());
  return true;
}

}  // namespace

std::optional<SkimmedModel> skim_payloads(const char* file, size_t size, const SkimOptions& options) {
  if (size > static_cast<size_t>(INT32_MAX)) return std::nullopt;
  SkimmedModel result;
  bool ok = true;
  const auto copy = [&](std::string& out, const Field& f) { out.append(file + f.start, f.end - f.start); };
  const bool walked = walk(file, 0, size, [&](const Field& model_field) {
    if (model_field.number != kModelGraph || !model_field.delimited) return copy(result.bytes, model_field);
    std::string graph;
    ok = walk(file, model_field.payload, model_field.length(), [&](const Field& f) {
      if (f.number != kGraphInitializer || !f.delimited) return copy(graph, f);
      std::string tensor;
      if (!skim_tensor(file, f.payload, f.length(), options, tensor, result.skimmed_bytes)) ok = false;
      put_bytes(graph, kGraphInitializer, tensor);
    }) && ok;
    put_bytes(result.bytes, kModelGraph, graph);
  });
  if (!walked || !ok) return std::nullopt;
  return result;
}

}  // namespace compress
