// Loading (with external data) and atomic saving (with external data when needed or asked).
#include <compress/error.h>
#include <compress/model.h>
#include <compress/output_file.h>
#include <compress/tensor.h>

#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/io/zero_copy_stream_impl.h>

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <charconv>
#include <cstdio>
#include <fstream>
#include <map>

#include "core/checked.h"
#include "core/mapped_payloads.h"
#include "core/payload_skim.h"
#include "core/shape_check.h"
#include "core/tensor_walk.h"
#include "core/validate.h"

namespace compress {

namespace fs = std::filesystem;

namespace {

constexpr int64_t kProtobufLimit = INT32_MAX;

[[noreturn]] void bad_input(const fs::path& path, const std::string& what) {
  throw Error(ExitCode::kBadInput, path.string() + ": " + what);
}

struct ExternalRef {
  std::string location;
  int64_t offset = 0;
  int64_t length = -1;
};

ExternalRef parse_external_ref(const fs::path& model_path, const onnx::TensorProto& t) {
  ExternalRef ref;
  // The whole value must be one int64: "12x" or "99999999999999999999" are corrupt, not 12 or a wrap.
  auto number = [&](const onnx::StringStringEntryProto& kv) {
    int64_t v = 0;
    const char* end = kv.value().data() + kv.value().size();
    const auto [ptr, ec] = std::from_chars(kv.value().data(), end, v);
    if (ec != std::errc() || ptr != end || kv.value().empty())
      bad_input(model_path, "tensor '" + t.name() + "' has a non-numeric or out-of-range external data " +
                                kv.key() + " '" + kv.value() + "'");
    return v;
  };
  for (const auto& kv : t.external_data()) {
    if (kv.key() == "location") ref.location = kv.value();
    else if (kv.key() == "offset") ref.offset = number(kv);
    else if (kv.key() == "length") ref.length = number(kv);
  }
  if (ref.location.empty()) bad_input(model_path, "tensor '" + t.name() + "' has external data without a location");
  if (ref.offset < 0 || (ref.length < -1)) bad_input(model_path, "tensor '" + t.name() + "' has a negative external data offset or length");
  return ref;
}

// Resolves `location` inside the model's directory; absolute paths and escapes are refused.
fs::path resolve_location(const fs::path& model_path, const std::string& tensor, const std::string& location) {
  const fs::path rel(location);
  if (rel.is_absolute())
    bad_input(model_path, "tensor '" + tensor + "' external data location '" + location + "' is absolute");
  for (const auto& part : rel.lexically_normal())
    if (part == "..")
      bad_input(model_path, "tensor '" + tensor + "' external data location '" + location +
                                "' escapes the model's directory");
  const fs::path dir = model_path.parent_path().empty() ? fs::path(".") : model_path.parent_path();
  const fs::path full = dir / rel.lexically_normal();
  // Symlinks may still point elsewhere: compare canonical paths.
  std::error_code ec;
  const fs::path canon_dir = fs::weakly_canonical(dir, ec);
  const fs::path canon = fs::weakly_canonical(full, ec);
  const auto [dir_end, unused] = std::mismatch(canon_dir.begin(), canon_dir.end(), canon.begin(), canon.end());
  (void)unused;
  if (dir_end != canon_dir.end())
    bad_input(model_path, "tensor '" + tensor + "' external data location '" + location +
                              "' resolves outside the model's directory");
  return full;
}

class ExternalDataReader {
 public:
  /// `model_mapping`: the model file's own mapping, for the references the skim made into it.
  ExternalDataReader(fs::path model_path, const PayloadMapping& model_mapping) : model_path_(std::move(model_path)) {
    if (model_mapping) files_.emplace(fs::absolute(model_path_).lexically_normal().string(), File{model_mapping, -1});
  }

  /// Checks `t`'s external data reference (file inside the model's directory, length matching its
  /// dims and type, inside the file), then leaves the bytes where they are (a reference to the
  /// file's mapping), or reads them into raw_data where the file cannot be mapped.
  void load(onnx::TensorProto& t) {
    const ExternalRef ref = parse_external_ref(model_path_, t);
    const fs::path file = resolve_location(model_path_, t.name(), ref.location);
    const std::string absolute = fs::absolute(file).lexically_normal().string();
    const File& source = open(absolute, t.name(), ref.location);
    const int64_t file_size = source.mapping ? static_cast<int64_t>(mapped_file(source.mapping.id).size()) : source.size;
    int64_t expected = -1;
    try {
      expected = packed_bytes(t);
    } catch (const Error& e) {
      bad_input(model_path_, e.what());
    }
    const int64_t length = ref.length >= 0 ? ref.length : expected;
    if (ref.length >= 0 && ref.length != expected)
      bad_input(model_path_, "tensor '" + t.name() + "' external data length " + std::to_string(ref.length) +
                                 " does not match its dims and type (" + std::to_string(expected) + " bytes)");
    const auto end = checked_add(ref.offset, length);
    if (!end)
      bad_input(model_path_, "tensor '" + t.name() + "' external data offset " + std::to_string(ref.offset) +
                                 " + length " + std::to_string(length) + " overflows 64 bits");
    if (*end > file_size)
      bad_input(model_path_, "external data file '" + ref.location + "' is " + std::to_string(*end - file_size) +
                                 " bytes short (tensor " + t.name() + ")");
    if (source.mapping) {
      reference_mapped_payload(t, absolute, source.mapping.id, ref.offset, length);
      return;
    }
    std::string data(static_cast<size_t>(length), '\0');
    std::ifstream in(absolute, std::ios::binary);
    in.seekg(ref.offset);
    in.read(data.data(), length);
    if (!in) bad_input(model_path_, "cannot read external data file '" + ref.location + "'");
    t.set_raw_data(std::move(data));
    t.clear_external_data();
    t.clear_data_location();
  }

  /// The files read, by absolute path.
  std::vector<fs::path> files() const {
    std::vector<fs::path> result;
    for (const auto& [name, file] : files_) result.emplace_back(name);
    return result;
  }

  /// Ownership of every file mapped, for the model whose tensors refer to them.
  std::vector<std::shared_ptr<const void>> mappings() const {
    std::vector<std::shared_ptr<const void>> owners;
    for (const auto& [name, file] : files_)
      if (file.mapping) owners.push_back(file.mapping.owner);
    return owners;
  }

 private:
  struct File {
    PayloadMapping mapping;  // empty where the file system cannot map it
    int64_t size = 0;
  };

  const File& open(const std::string& file, const std::string& tensor, const std::string& location) {
    auto it = files_.find(file);
    if (it != files_.end()) return it->second;
    std::error_code ec;
    if (!fs::is_regular_file(file, ec))
      bad_input(model_path_, "external data file '" + location + "' of tensor '" + tensor + "' is missing");
    const int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) bad_input(model_path_, "cannot open external data file '" + location + "'");
    File opened;
    opened.size = static_cast<int64_t>(fs::file_size(file, ec));
    if (ec) {
      ::close(fd);
      bad_input(model_path_, "cannot read external data file '" + location + "': " + ec.message());
    }
    opened.mapping = map_payload_file(fd, static_cast<size_t>(opened.size));
    ::close(fd);
    return files_.emplace(file, opened).first->second;
  }

  fs::path model_path_;
  std::map<std::string, File> files_;
};

// A whole file mapped read-only (data() is null when mapping failed).
class MappedFile {
 public:
  MappedFile(int fd, size_t size) : size_(size) {
    void* p = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (p != MAP_FAILED) data_ = static_cast<const char*>(p);
  }
  ~MappedFile() {
    if (data_ != nullptr) ::munmap(const_cast<char*>(data_), size_);
  }
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;
  const char* data() const { return data_; }

 private:
  const char* data_ = nullptr;
  size_t size_ = 0;
};

// The file mapped read-only and handed to the parser in 4 MiB windows, each released (its pages
// unmapped from this process; the page cache keeps them) once the parser is a window past it. This
// saves read()'s copy into a buffer, the largest cost of loading a big model after the parse's own
// copy, while mapped pages in the RSS stay under two windows. The parser holds on to nothing from a
// window it has left: protobuf's stream copies its few bytes of look-ahead into its own buffer.
class MappedFileInputStream : public google::protobuf::io::ZeroCopyInputStream {
 public:
  MappedFileInputStream(int fd, size_t size) : file_(fd, size), data_(file_.data()), size_(size) {
    if (data_ != nullptr) ::madvise(const_cast<char*>(data_), size, MADV_SEQUENTIAL);
  }

  bool mapped() const { return data_ != nullptr; }

  bool Next(const void** data, int* size) override {
    if (pos_ >= size_) return false;
    release_before(pos_ >= kWindow ? pos_ - kWindow : 0);
    const size_t n = std::min(kWindow, size_ - pos_);
    *data = data_ + pos_;
    *size = static_cast<int>(n);
    pos_ += n;
    return true;
  }
  void BackUp(int count) override { pos_ -= static_cast<size_t>(count); }
  bool Skip(int count) override {
    const size_t n = std::min(static_cast<size_t>(count), size_ - pos_);
    pos_ += n;
    return n == static_cast<size_t>(count);
  }
  int64_t ByteCount() const override { return static_cast<int64_t>(pos_); }

 private:
  static constexpr size_t kWindow = size_t{4} << 20;

  // Unmaps whole pages below `end` (page-aligned down) that are still mapped.
  void release_before(size_t end) {
    const auto page = static_cast<size_t>(::sysconf(_SC_PAGESIZE));
    end -= end % page;
    if (end <= released_) return;
    ::madvise(const_cast<char*>(data_) + released_, end - released_, MADV_DONTNEED);
    released_ = end;
  }

  const MappedFile file_;
  const char* data_ = nullptr;
  size_t size_ = 0;
  size_t pos_ = 0;
  size_t released_ = 0;
};

// Streams the model's deterministic serialization (the bytes Model::serialize gives) into `path`:
// no second in-memory copy of the model, so a pass that keeps the size (fp16 halves it, pruning
// keeps it) does not double the peak memory at the write. Returns the bytes written.
int64_t write_serialized(const onnx::ModelProto& proto, const fs::path& path) {
  const size_t size = proto.ByteSizeLong();
  if (size > static_cast<size_t>(INT32_MAX))
    throw Error(ExitCode::kWriteFailed,
                "model is " + std::to_string(size) + " bytes, over protobuf's 2 GiB limit; write it with external data");
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
  if (fd < 0) throw Error(ExitCode::kWriteFailed, path.string() + ": cannot open for writing");
  bool ok = true;
  {
    google::protobuf::io::FileOutputStream file(fd, 1 << 20);
    {
      google::protobuf::io::CodedOutputStream coded(&file);
      coded.SetSerializationDeterministic(true);
      proto.SerializeWithCachedSizes(&coded);
      ok = !coded.HadError();
    }
    ok = file.Close() && ok;
  }
  if (!ok) throw Error(ExitCode::kWriteFailed, path.string() + ": write failed (disk full?)");
  return static_cast<int64_t>(size);
}

// The checks every load starts with; returns the file's size.
int64_t checked_file_size(const fs::path& path) {
  std::error_code ec;
  if (!fs::exists(path, ec)) throw Error(ExitCode::kBadInput, path.string() + ": no such file");
  if (!fs::is_regular_file(path, ec)) throw Error(ExitCode::kBadInput, path.string() + ": not a regular file");
  const auto size = static_cast<int64_t>(fs::file_size(path, ec));
  if (ec) throw Error(ExitCode::kBadInput, path.string() + ": cannot read: " + ec.message());
  if (size == 0) throw Error(ExitCode::kBadInput, path.string() + ": file is empty");
  if (size > kProtobufLimit)
    bad_input(path, "file is " + std::to_string(size) + " bytes; an ONNX protobuf cannot exceed 2 GiB (large weights belong in external data)");
  return size;
}

}  // namespace

Model Model::load(const fs::path& path) {
  const int64_t size = checked_file_size(path);
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw Error(ExitCode::kBadInput, path.string() + ": cannot open for reading");
  Model model;
  bool parsed = false;
  const auto parse = [&](google::protobuf::io::ZeroCopyInputStream& raw) {
    google::protobuf::io::CodedInputStream coded(&raw);
    coded.SetTotalBytesLimit(INT32_MAX);
    return model.proto_->ParseFromCodedStream(&coded) && coded.ConsumedEntireMessage();
  };
  // Large initializer payloads become references into the mapped file: the parse copies kilobytes.
  PayloadMapping mapping = map_payload_file(fd, static_cast<size_t>(size));
  std::optional<SkimmedModel> skim;
  if (mapping) {
    const std::string_view file = mapped_file(mapping.id);
    skim = skim_payloads(file.data(), file.size(), {path.filename().string(), 65536});
  }
  if (skim) {
    google::protobuf::io::ArrayInputStream array(skim->bytes.data(), static_cast<int>(skim->bytes.size()));
    parsed = parse(array);
  } else {
    MappedFileInputStream mapped(fd, static_cast<size_t>(size));
    if (mapped.mapped()) {
      parsed = parse(mapped);
    } else {  // a file system that cannot map: read in 1 MiB blocks
      google::protobuf::io::FileInputStream raw(fd, 1 << 20);
      parsed = parse(raw);
    }
  }
  ::close(fd);
  if (!skim || skim->skimmed_bytes == 0) mapping = {};  // nothing refers to it: unmapped
  if (mapping) release_mapped_pages(mapping.id);  // what the skim walked; payloads fault in when read
  const onnx::ModelProto& p = *model.proto_;
  if (!parsed) bad_input(path, "not an ONNX model (protobuf parse failed: truncated or corrupt file?)");
  if (p.ir_version() <= 0 || !p.has_graph())
    bad_input(path, "not an ONNX model (no ir_version or no graph)");
  if (p.opset_import_size() == 0) bad_input(path, "model imports no opset");
  if (p.graph().node_size() == 0 && p.graph().output_size() == 0) bad_input(path, "model graph is empty");

  ExternalDataReader reader(path, mapping);
  for_each_tensor(*model.proto_->mutable_graph(), [&](onnx::TensorProto& t) {
    if (t.data_location() == onnx::TensorProto::EXTERNAL) reader.load(t);
    try {
      validate_tensor(t);
    } catch (const Error& e) {
      bad_input(path, e.what());
    }
  });
  // Before anything hands the model to ONNX's checker or shape inference, which crash on some
  // malformed graphs (division by zero strides, unbounded recursion in functions).
  try {
    validate_model(*model.proto_);
    onnx::ModelProto scratch = model.copy_without_large_data();
    check_shape_consistency(scratch);
  } catch (const Error& e) {
    bad_input(path, e.what());
  }
  model.mappings_ = reader.mappings();
  model.source_path_ = path;
  model.source_files_ = {path};
  model.source_bytes_ = size;
  std::error_code ec;
  for (const auto& f : reader.files()) {
    if (fs::equivalent(f, path, ec)) continue;  // the skim's references into the model file itself
    model.source_files_.push_back(f);
    model.source_bytes_ += static_cast<int64_t>(fs::file_size(f, ec));
  }
  return model;
}

StagedSave::StagedSave(SavedFiles files, SavedFiles targets)
    : files_(std::move(files)), targets_(std::move(targets)) {
  temps_.model = temp_path(targets_.model);
  if (!targets_.data.empty()) temps_.data = temp_path(targets_.data);
}

StagedSave::StagedSave(StagedSave&& other) noexcept
    : files_(std::move(other.files_)), targets_(std::move(other.targets_)), temps_(std::move(other.temps_)),
      done_(other.done_) {
  other.done_ = true;
}

StagedSave::~StagedSave() { discard(); }

void StagedSave::discard() noexcept {
  if (done_) return;
  std::error_code ec;
  fs::remove(temps_.model, ec);
  if (!temps_.data.empty()) fs::remove(temps_.data, ec);
  done_ = true;
}

SavedFiles StagedSave::commit() {
  if (done_) throw Error(ExitCode::kInternal, "staged save of " + files_.model.string() + " committed twice");
  std::error_code ec;
  if (!temps_.data.empty()) {
    fs::rename(temps_.data, targets_.data, ec);
    if (ec) {
      discard();
      throw Error(ExitCode::kWriteFailed, files_.data.string() + ": cannot rename into place: " + ec.message());
    }
  }
  fs::rename(temps_.model, targets_.model, ec);
  if (ec) {
    const std::string reason = ec.message();
    if (!targets_.data.empty()) fs::remove(targets_.data, ec);  // its model never appeared
    discard();
    throw Error(ExitCode::kWriteFailed, files_.model.string() + ": cannot rename into place: " + reason);
  }
  done_ = true;
  return files_;
}

SavedFiles Model::save(const fs::path& path, const SaveOptions& options) { return stage_save(path, options).commit(); }

StagedSave Model::stage_save(const fs::path& path, const SaveOptions& options) {
  std::error_code ec;
  const bool exists = fs::exists(fs::symlink_status(path, ec));
  if (exists && !options.overwrite)
    throw Error(ExitCode::kWriteFailed, path.string() + ": exists (use --force to overwrite)");
  if (!source_path_.empty() && fs::exists(path, ec) && fs::equivalent(path, source_path_, ec))
    throw Error(ExitCode::kWriteFailed, path.string() + ": is the input model; refusing to overwrite it");
  if (const std::string why = output_file_problem(path); !why.empty())
    throw Error(ExitCode::kWriteFailed, path.string() + ": " + why);

  bool external = options.external_data == SaveOptions::ExternalData::kAlways;
  if (options.external_data == SaveOptions::ExternalData::kAuto) external = serialized_bytes() > kProtobufLimit;

  SavedFiles files;
  files.model = path;
  SavedFiles targets;
  targets.model = write_target(path);
  if (external) {
    files.data = fs::path(path.string() + ".data");
    if (fs::exists(fs::symlink_status(files.data, ec)) && !options.overwrite)
      throw Error(ExitCode::kWriteFailed, files.data.string() + ": exists (use --force to overwrite)");
    if (const std::string why = output_file_problem(files.data); !why.empty())
      throw Error(ExitCode::kWriteFailed, files.data.string() + ": " + why);
    targets.data = write_target(files.data);
  }
  remove_stale_temps(targets.model);
  remove_stale_temps(write_target(path.string() + ".data"));  // a killed run may have used external data
  StagedSave staged(files, targets);
  const SavedFiles& temps = staged.temps();
  int64_t total_bytes = 0;
  if (!external) {
    const MaterializedPayloads materialized(*proto_->mutable_graph());  // weights still in the input file
    total_bytes = write_serialized(*proto_, temps.model);
  } else {
    std::ofstream data(temps.data, std::ios::binary | std::ios::trunc);
    if (!data) throw Error(ExitCode::kWriteFailed, temps.data.string() + ": cannot open for writing");
    // Each large payload goes to the data file (raw_data moved out, a payload left in the input file
    // copied from there), the model is serialized with references, then the tensors are put back:
    // no second copy of the weights.
    struct Moved {
      onnx::TensorProto* tensor = nullptr;
      std::string raw;  // the raw_data moved out, or
      google::protobuf::RepeatedPtrField<onnx::StringStringEntryProto> mapped;  // the input-file reference
    };
    std::vector<Moved> moved;
    int64_t offset = 0;
    auto restore = [&] {
      for (Moved& m : moved) {
        m.tensor->clear_external_data();
        if (m.mapped.empty()) {
          m.tensor->clear_data_location();
          m.tensor->set_raw_data(std::move(m.raw));
        } else {
          m.tensor->mutable_external_data()->Swap(&m.mapped);
        }
      }
      moved.clear();
    };
    try {
      for_each_tensor(*proto_->mutable_graph(), [&](onnx::TensorProto& t) {
        if (const auto mapped = mapped_payload_size(t); mapped && *mapped < options.external_min_bytes)
          materialize_payload(t);
        const auto bytes = raw_bytes(t);
        if (!bytes || static_cast<int64_t>(bytes->size()) < options.external_min_bytes) return;
        const int64_t pad = (64 - offset % 64) % 64;  // 64-byte alignment lets runtimes map weights
        if (pad) data.write(std::string(static_cast<size_t>(pad), '\0').data(), pad);
        offset += pad;
        const auto length = static_cast<int64_t>(bytes->size());
        data.write(bytes->data(), length);
        if (!data) throw Error(ExitCode::kWriteFailed, temps.data.string() + ": write failed (disk full?)");
        Moved& m = moved.emplace_back();
        m.tensor = &t;
        if (t.has_raw_data()) {
          m.raw = std::move(*t.mutable_raw_data());
          t.clear_raw_data();
        } else {
          m.mapped.Swap(t.mutable_external_data());
        }
        t.set_data_location(onnx::TensorProto::EXTERNAL);
        auto add = [&](const std::string& k, const std::string& v) {
          auto* e = t.add_external_data();
          e->set_key(k);
          e->set_value(v);
        };
        // Named as the caller named it: runtimes resolve it beside the model path they are given.
        add("location", files.data.filename().string());
        add("offset", std::to_string(offset));
        add("length", std::to_string(length));
        offset += length;
      });
      data.flush();
      if (!data) throw Error(ExitCode::kWriteFailed, temps.data.string() + ": write failed (disk full?)");
      data.close();
      total_bytes = write_serialized(*proto_, temps.model) + offset;
    } catch (...) {
      restore();
      throw;
    }
    restore();
  }
  staged.files_.total_bytes = total_bytes;
  return staged;
}

}  // namespace compress
