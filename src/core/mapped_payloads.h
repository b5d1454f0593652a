// Weights left in their files. Model::load maps the model file and its external data files
// read-only for the rest of the process, and each large payload stays there: the tensor becomes an
// EXTERNAL reference (absolute location, offset, length) plus a key naming the mapping. The tensor
// readers (compress/tensor.h) see its bytes through mapped_payload(); a pass that writes a tensor
// replaces it whole, and the writer copies what is still referenced into the output. So loading a
// model copies no weights, and a pass reads each weight straight from the page cache.
//
// Each Model holds shared ownership of the mappings its tensors refer to (Model::from_proto takes
// it for a copied proto: verify's reference model, auto's candidates); the last owner unmaps the
// file, and references to it then stop resolving (validate_tensor: "external data was not
// loaded"). A TensorProto copied out of every Model must not be read after they are gone. Pages read through a mapping count in the RSS, so the oldest
// ranges handed out are dropped from this process's page tables past a budget; a reader still
// holding one simply faults its pages back in from the page cache (the mapping is private and never
// written). A file truncated by another process while mapped would raise SIGBUS on access, as in
// every runtime that maps its weights.
#pragma once

#include <onnx/onnx_pb.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace compress {

/// A mapped file: its id (what references name) and shared ownership of it. The file is unmapped
/// when the last owner goes; references to it then stop resolving.
struct PayloadMapping {
  int64_t id = -1;
  std::shared_ptr<const void> owner;  // null when the file could not be mapped
  explicit operator bool() const { return owner != nullptr; }
};

/// Maps the open file `fd` (`size` bytes) read-only. Empty when the file system cannot map it (the
/// caller then reads the bytes instead).
PayloadMapping map_payload_file(int fd, size_t size);

/// The bytes of mapping `id`; empty once it is unmapped.
std::string_view mapped_file(int64_t id);

/// Drops every page of mapping `id` from this process's page tables (the page cache keeps them).
void release_mapped_pages(int64_t id);

/// Owners of every mapping the tensors of `graph` (subgraphs included) refer to: what a model made
/// from a copy of another's proto holds to keep its weights readable.
std::vector<std::shared_ptr<const void>> mapping_owners(onnx::GraphProto& graph);

/// Makes `t` a reference to bytes [offset, offset + length) of mapping `id`: its raw_data and
/// external data entries are replaced. The caller has checked the range and `t`'s dims and type.
void reference_mapped_payload(onnx::TensorProto& t, const std::string& location, int64_t id, int64_t offset,
                              int64_t length);

/// The payload's size when `t` is a reference made by reference_mapped_payload (and names a range
/// of a live mapping), without touching its bytes; nullopt for any other tensor.
std::optional<int64_t> mapped_payload_size(const onnx::TensorProto& t);

/// The bytes of a mapped payload (nullopt for any other tensor). Valid until the process exits.
std::optional<std::string_view> mapped_payload(const onnx::TensorProto& t);

/// Stores a mapped payload as raw_data (a copy) and drops the reference; other tensors are unchanged.
void materialize_payload(onnx::TensorProto& t);

/// While it lives, every mapped payload of `graph` (subgraphs included) is stored as raw_data, a
/// copy each; destroying it turns them back into references. For serializing a whole model.
class MaterializedPayloads {
 public:
  explicit MaterializedPayloads(onnx::GraphProto& graph);
  ~MaterializedPayloads();
  MaterializedPayloads(const MaterializedPayloads&) = delete;
  MaterializedPayloads& operator=(const MaterializedPayloads&) = delete;

 private:
  void restore() noexcept;

  std::vector<std::pair<onnx::TensorProto*, google::protobuf::RepeatedPtrField<onnx::StringStringEntryProto>>> saved_;
};

}  // namespace compress
