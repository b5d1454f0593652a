// skim_payloads (payload_skim.cpp): a serialized model with its large initializer payloads left
// in the file (Model::load).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

namespace compress {

struct SkimOptions {
  std::string location;      // the external data location the skimmed tensors name (the file itself)
  size_t min_bytes = 65536;  // raw_data up to this size stays inline (shape constants, small weights)
};

struct SkimmedModel {
  std::string bytes;          // a serialized ModelProto
  int64_t skimmed_bytes = 0;  // payload bytes left in the file
};

/// The ModelProto serialized in file[0, size) with every main-graph initializer's raw_data above
/// options.min_bytes replaced by an external data reference (location, offset, length) into the
/// same bytes. nullopt when the bytes are not a walkable message (the caller then parses them as
/// they are and reports what is wrong).
std::optional<SkimmedModel> skim_payloads(const char* file, size_t size, const SkimOptions& options);

}  // namespace compress
