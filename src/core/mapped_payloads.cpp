#include "core/mapped_payloads.h"

#include <sys/mman.h>
#include <unistd.h>

#include "core/tensor_walk.h"

#include <algorithm>
#include <charconv>
#include <cstdint>
#include <deque>
#include <mutex>
#include <unordered_map>
#include <vector>

namespace compress {

namespace {

using TP = onnx::TensorProto;

// The external data key that marks a reference made here; its value is the mapping's id. Only
// Model::load writes it (every reference a loaded file carries is rewritten there), and each use
// checks the id and the range against the live mapping.
constexpr std::string_view kMappingKey = "compress-mapping";

// Bytes handed out that may stay in this process's page tables before the oldest are dropped.
constexpr size_t kResidentBudget = size_t{64} << 20;

struct Mapping {
  const char* data = nullptr;
  size_t size = 0;
  std::weak_ptr<const void> owner;
};

struct Range {
  int64_t id = 0;
  size_t offset = 0, length = 0;
};

// The live mappings by id. Ids are never reused, so a reference that outlived its mapping resolves
// to nothing rather than to another file.
class Registry {
 public:
  static Registry& instance() {
    static Registry* registry = new Registry;  // never destroyed: owners may outlive every static
    return *registry;
  }

  PayloadMapping add(int fd, size_t size) {
    if (size == 0) return {};
    void* p = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED) return {};
    std::lock_guard lock(mutex_);
    const int64_t id = next_id_++;
    std::shared_ptr<const void> owner(p, [id](const void*) { Registry::instance().remove(id); });
    mappings_[id] = {static_cast<const char*>(p), size, owner};
    return {id, std::move(owner)};
  }

  std::optional<Mapping> get(int64_t id) {
    std::lock_guard lock(mutex_);
    const auto it = mappings_.find(id);
    if (it == mappings_.end()) return std::nullopt;
    return it->second;
  }

  // Records [offset, offset + length) of `id` as read now, and drops the oldest ranges read before
  // it from the page tables once they pass the budget.
  void read(int64_t id, size_t offset, size_t length) {
    std::lock_guard lock(mutex_);
    recent_.push_back({id, offset, length});
    resident_ += length;
    while (resident_ > kResidentBudget && recent_.size() > 1) {
      const Range& old = recent_.front();
      if (const auto it = mappings_.find(old.id); it != mappings_.end())
        advise(it->second, old.offset, old.length, MADV_DONTNEED);
      resident_ -= old.length;
      recent_.pop_front();
    }
  }

  void release_all(int64_t id) { release(id, 0, SIZE_MAX); }

  // Drops [offset, offset + length) of `id` (clipped to the file) from the page tables now.
  void release(int64_t id, size_t offset, size_t length) {
    std::lock_guard lock(mutex_);
    const auto it = mappings_.find(id);
    if (it != mappings_.end() && offset < it->second.size)
      advise(it->second, offset, std::min(length, it->second.size - offset), MADV_DONTNEED);
  }

 private:
  void remove(int64_t id) {
    std::lock_guard lock(mutex_);
    const auto it = mappings_.find(id);
    if (it == mappings_.end()) return;
    ::munmap(const_cast<char*>(it->second.data), it->second.size);
    mappings_.erase(it);
    for (auto range = recent_.begin(); range != recent_.end();) {
      if (range->id != id) {
        ++range;
        continue;
      }
      resident_ -= range->length;
      range = recent_.erase(range);
    }
  }

  // madvise over the whole pages the range touches; errors are ignored (advice only).
  static void advise(const Mapping& m, size_t offset, size_t length, int advice) {
    if (length == 0) return;
    static const auto page = static_cast<size_t>(::sysconf(_SC_PAGESIZE));
    const size_t begin = offset - offset % page;
    ::madvise(const_cast<char*>(m.data) + begin, offset + length - begin, advice);
  }

  std::mutex mutex_;
  std::unordered_map<int64_t, Mapping> mappings_;
  int64_t next_id_ = 0;
  std::deque<Range> recent_;
  size_t resident_ = 0;
};

struct Reference {
  int64_t id = -1;
  size_t offset = 0, length = 0;
};

std::optional<int64_t> parse_int(const std::string& text) {
  int64_t v = 0;
  const char* end = text.data() + text.size();
  const auto [ptr, ec] = std::from_chars(text.data(), end, v);
  if (ec != std::errc() || ptr != end || text.empty() || v < 0) return std::nullopt;
  return v;
}

std::optional<Reference> reference_of(const TP& t) {
  if (t.data_location() != TP::EXTERNAL || t.has_raw_data()) return std::nullopt;
  std::optional<int64_t> id, offset, length;
  for (const auto& e : t.external_data()) {
    if (e.key() == kMappingKey) id = parse_int(e.value());
    else if (e.key() == "offset") offset = parse_int(e.value());
    else if (e.key() == "length") length = parse_int(e.value());
  }
  if (!id || !offset || !length) return std::nullopt;
  const auto mapping = Registry::instance().get(*id);
  const auto off = static_cast<uint64_t>(*offset), len = static_cast<uint64_t>(*length);
  if (!mapping || off > mapping->size || len > mapping->size - off) return std::nullopt;
  return Reference{*id, static_cast<size_t>(off), static_cast<size_t>(len)};
}

}  // namespace

PayloadMapping map_payload_file(int fd, size_t size) { return Registry::instance().add(fd, size); }

std::string_view mapped_file(int64_t id) {
  const auto m = Registry::instance().get(id);
  return m ? std::string_view(m->data, m->size) : std::string_view();
}

void release_mapped_pages(int64_t id) { Registry::instance().release_all(id); }

std::vector<std::shared_ptr<const void>> mapping_owners(onnx::GraphProto& graph) {
  std::vector<std::shared_ptr<const void>> owners;
  std::unordered_map<int64_t, bool> seen;
  for_each_tensor(graph, [&](TP& t) {
    const auto ref = reference_of(t);
    if (!ref || !seen.emplace(ref->id, true).second) return;
    if (const auto m = Registry::instance().get(ref->id))
      if (auto owner = m->owner.lock()) owners.push_back(std::move(owner));
  });
  return owners;
}

void reference_mapped_payload(TP& t, const std::string& location, int64_t id, int64_t offset, int64_t length) {
  t.clear_raw_data();
  t.clear_external_data();
  t.set_data_location(TP::EXTERNAL);
  auto add = [&t](std::string_view key, const std::string& value) {
    auto* e = t.add_external_data();
    e->set_key(std::string(key));
    e->set_value(value);
  };
  add("location", location);
  add("offset", std::to_string(offset));
  add("length", std::to_string(length));
  add(kMappingKey, std::to_string(id));
}

std::optional<int64_t> mapped_payload_size(const TP& t) {
  const auto ref = reference_of(t);
  if (!ref) return std::nullopt;
  return static_cast<int64_t>(ref->length);
}

std::optional<std::string_view> mapped_payload(const TP& t) {
  const auto ref = reference_of(t);
  if (!ref) return std::nullopt;
  Registry::instance().read(ref->id, ref->offset, ref->length);
  return mapped_file(ref->id).substr(ref->offset, ref->length);
}

namespace {

// A copy of a mapped payload; its pages leave the page tables right after (read once, kept in the
// copy), so copying every weight costs the copies' memory only.
std::optional<std::string> copy_payload(const TP& t) {
  const auto ref = reference_of(t);
  if (!ref) return std::nullopt;
  std::string copy(mapped_file(ref->id).substr(ref->offset, ref->length));
  Registry::instance().release(ref->id, ref->offset, ref->length);
  return copy;
}

}  // namespace

void materialize_payload(TP& t) {
  auto raw = copy_payload(t);
  if (!raw) return;
  t.clear_external_data();
  t.clear_data_location();
  t.set_raw_data(std::move(*raw));
}

MaterializedPayloads::MaterializedPayloads(onnx::GraphProto& graph) {
  try {
    for_each_tensor(graph, [this](TP& t) {
      auto raw = copy_payload(t);
      if (!raw) return;
      saved_.emplace_back(&t, google::protobuf::RepeatedPtrField<onnx::StringStringEntryProto>());
      saved_.back().second.Swap(t.mutable_external_data());
      t.clear_data_location();
      t.set_raw_data(std::move(*raw));
    });
  } catch (...) {
    restore();
    throw;
  }
}

MaterializedPayloads::~MaterializedPayloads() { restore(); }

void MaterializedPayloads::restore() noexcept {
  for (auto& [t, refs] : saved_) {
    t->clear_raw_data();
    t->mutable_external_data()->Swap(&refs);
    t->set_data_location(TP::EXTERNAL);
  }
  saved_.clear();
}

}  // namespace compress
