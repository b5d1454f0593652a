#include <compress/error.h>
#include <compress/model.h>
#include <onnx/checker.h>
#include <onnx/defs/parser.h>
#include <onnx/shape_inference/implementation.h>
#include <onnx/version_converter/convert.h>

#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/io/zero_copy_stream_impl_lite.h>

#include <algorithm>
#include <charconv>
#include <set>
#include <string_view>

#include "core/mapped_payloads.h"
#include "core/shape_analysis.h"
#include "core/shape_check.h"
#include "core/tensor_walk.h"

namespace compress {

namespace {

bool is_onnx_domain(const std::string& domain) { return domain.empty() || domain == "ai.onnx"; }

// Visits every name a model uses: values, initializers, node names, in all graphs.
void collect_graph_names(const onnx::GraphProto& g, std::unordered_set<std::string>& names) {
  for (const auto& v : g.input()) names.insert(v.name());
  for (const auto& v : g.output()) names.insert(v.name());
  for (const auto& v : g.value_info()) names.insert(v.name());
  for (const auto& t : g.initializer()) names.insert(t.name());
  for (const auto& t : g.sparse_initializer()) names.insert(t.values().name());
  for (const auto& n : g.node()) {
    if (!n.name().empty()) names.insert(n.name());
    for (const auto& i : n.input()) names.insert(i);
    for (const auto& o : n.output()) names.insert(o);
    for (const auto& a : n.attribute()) {
      if (a.has_g()) collect_graph_names(a.g(), names);
      for (const auto& sub : a.graphs()) collect_graph_names(sub, names);
    }
  }
}

}  // namespace

Model::Model() : proto_(std::make_unique<onnx::ModelProto>()) {}
Model::Model(Model&&) noexcept = default;
Model& Model::operator=(Model&&) noexcept = default;
Model::~Model() = default;

Model Model::from_proto(onnx::ModelProto proto) {
  Model m;
  *m.proto_ = std::move(proto);
  m.mappings_ = mapping_owners(*m.proto_->mutable_graph());  // weights of a loaded model it copies
  return m;
}

Model Model::parse_text(std::string_view text) {
  onnx::ModelProto proto;
  const std::string copy(text);
  auto status = onnx::OnnxParser::Parse(proto, copy.c_str());
  if (!status.IsOK()) throw Error(ExitCode::kBadInput, "cannot parse ONNX text: " + status.ErrorMessage());
  return from_proto(std::move(proto));
}

Graph& Model::graph() {
  if (!graph_) graph_ = std::make_unique<Graph>(*this, *proto_->mutable_graph(), nullptr);
  return *graph_;
}

std::vector<Graph*> Model::all_graphs() {
  std::vector<Graph*> result{&graph()};
  for (size_t i = 0; i < result.size(); ++i)
    for (Graph* child : result[i]->subgraphs()) result.push_back(child);
  return result;
}

void Model::invalidate() {
  if (graph_) graph_->invalidate();
  names_.clear();
  next_suffix_.clear();
  names_collected_ = false;
}

int64_t Model::opset(const std::string& domain) const {
  for (const auto& op : proto_->opset_import()) {
    if (op.domain() == domain || (is_onnx_domain(domain) && is_onnx_domain(op.domain()))) return op.version();
  }
  return 0;
}

namespace {

constexpr std::string_view kParkedTag = "\x01compress-parked:";

// ONNX's converter works on a full copy of the model (its IR). Each payload over 4 KiB is parked
// behind a short tag (an O(1) swap) while it runs and moved into the converted model after, so
// raising the opset of a big model costs no copy of its weights. A payload left in the input file
// is parked the same way: the IR would drop its reference. The adapters of ONNX 1.12 read small
// constants only; if one touched a tag anyway (a tag lost, repeated or changed), the conversion is
// redone with the weights in place (those left in the input file copied in).
onnx::ModelProto convert_without_weight_copies(onnx::ModelProto& model, int version) {
  struct Parked {
    std::string raw;
    google::protobuf::RepeatedPtrField<onnx::StringStringEntryProto> mapped;  // empty unless left in the file
  };
  std::vector<Parked> parked;
  for_each_tensor(*model.mutable_graph(), [&](onnx::TensorProto& t) {
    Parked& p = parked.emplace_back();
    if (mapped_payload_size(t)) {
      p.mapped.Swap(t.mutable_external_data());
      t.clear_data_location();
    } else if (t.raw_data().size() > 4096) {
      p.raw.swap(*t.mutable_raw_data());
    } else {
      parked.pop_back();
      return;
    }
    t.set_raw_data(std::string(kParkedTag) + std::to_string(parked.size() - 1));
  });
  auto put_back = [](onnx::TensorProto& t, Parked& p) {
    if (p.mapped.empty()) {
      t.mutable_raw_data()->swap(p.raw);
      return;
    }
    t.clear_raw_data();
    t.mutable_external_data()->Swap(&p.mapped);
    t.set_data_location(onnx::TensorProto::EXTERNAL);
  };
  // Moves each parked payload into the tensor that carries its tag; false (nothing moved) unless
  // every tag appears exactly once.
  auto unpark = [&parked, &put_back](onnx::GraphProto& g) {
    std::vector<onnx::TensorProto*> owner(parked.size(), nullptr);
    bool ok = true;
    for_each_tensor(g, [&](onnx::TensorProto& t) {
      const std::string& raw = t.raw_data();
      if (raw.size() <= kParkedTag.size() || raw.compare(0, kParkedTag.size(), kParkedTag) != 0) return;
      size_t index = 0;
      const auto [end, ec] = std::from_chars(raw.data() + kParkedTag.size(), raw.data() + raw.size(), index);
      if (ec != std::errc() || end != raw.data() + raw.size() || index >= parked.size() || owner[index]) {
        ok = false;
        return;
      }
      owner[index] = &t;
    });
    ok = ok && std::all_of(owner.begin(), owner.end(), [](const onnx::TensorProto* t) { return t != nullptr; });
    if (ok)
      for (size_t i = 0; i < parked.size(); ++i) put_back(*owner[i], parked[i]);
    return ok;
  };
  onnx::ModelProto converted;
  try {
    converted = onnx::version_conversion::ConvertVersion(model, version);
  } catch (...) {
    unpark(*model.mutable_graph());
    throw;
  }
  if (unpark(*converted.mutable_graph())) return converted;
  unpark(*model.mutable_graph());
  for_each_tensor(*model.mutable_graph(), materialize_payload);
  return onnx::version_conversion::ConvertVersion(model, version);
}

}  // namespace

void Model::require_opset(const std::string& domain, int64_t version) {
  const int64_t current = opset(domain);
  if (current >= version) return;
  if (!is_onnx_domain(domain)) {
    for (auto& op : *proto_->mutable_opset_import()) {
      if (op.domain() == domain) {
        op.set_version(version);
        return;
      }
    }
    auto* op = proto_->add_opset_import();
    op->set_domain(domain);
    op->set_version(version);
    return;
  }
  if (current == 0) throw Error(ExitCode::kUnsupported, "model imports no default-domain opset");
  try {
    // ONNX's adapters need static shapes (Softmax 12 -> 13 asserts on an unknown input shape):
    // lend the converter the analysed shapes as value_info, then take back what we lent. Only
    // when no input dim had to be assumed: an adapter may rewrite by rank, and a rank that
    // follows from a guessed dim could be wrong.
    std::set<std::string> lent;
    onnx::ModelProto shaped = copy_without_large_data();
    if (annotate_shapes(shaped, input_shapes_).assumed.empty()) {
      std::set<std::string> present;
      for (const auto& v : proto_->graph().value_info()) present.insert(v.name());
      for (const auto& v : shaped.graph().value_info())
        if (!present.count(v.name()) && lent.insert(v.name()).second) *proto_->mutable_graph()->add_value_info() = v;
    }
    auto take_back = [&lent](onnx::GraphProto& g) {
      auto* infos = g.mutable_value_info();
      infos->erase(std::remove_if(infos->begin(), infos->end(),
                                  [&lent](const onnx::ValueInfoProto& v) { return lent.count(v.name()) > 0; }),
                   infos->end());
    };
    onnx::ModelProto converted;
    try {
      converted = convert_without_weight_copies(*proto_, static_cast<int>(version));
    } catch (...) {
      take_back(*proto_->mutable_graph());
      throw;
    }
    take_back(*converted.mutable_graph());
    *proto_ = std::move(converted);
  } catch (const std::exception& e) {
    throw Error(ExitCode::kUnsupported, "cannot convert the model from opset " + std::to_string(current) + " to " +
                                            std::to_string(version) + ": " + e.what());
  }
  graph_.reset();
  invalidate();
}

void Model::collect_names() {
  if (names_collected_) return;
  names_.clear();
  next_suffix_.clear();
  collect_graph_names(proto_->graph(), names_);
  names_collected_ = true;
}

std::string Model::unique_name(const std::string& base) {
  collect_names();
  std::string name = base;
  if (names_.count(name)) {
    int64_t& i = next_suffix_.try_emplace(base, 1).first->second;
    do name = base + "_" + std::to_string(i++);
    while (names_.count(name));
  }
  names_.insert(name);
  return name;
}

onnx::ModelProto Model::copy_without_large_data(int64_t max_bytes) const {
  // Park large payloads (an O(1) string swap), copy, then put them back: no transient second copy
  // of the weights. The model is observably unchanged when this returns or throws.
  auto& proto = const_cast<onnx::ModelProto&>(*proto_);
  std::vector<std::pair<onnx::TensorProto*, std::string>> parked;
  for_each_tensor(*proto.mutable_graph(), [&](onnx::TensorProto& t) {
    if (static_cast<int64_t>(t.raw_data().size()) > max_bytes) {
      parked.emplace_back(&t, std::string());
      parked.back().second.swap(*t.mutable_raw_data());
    }
  });
  struct Restore {
    std::vector<std::pair<onnx::TensorProto*, std::string>>& parked;
    ~Restore() {
      for (auto& [t, raw] : parked) t->mutable_raw_data()->swap(raw);
    }
  } restore{parked};
  onnx::ModelProto copy = proto;
  return copy;
}

void Model::check() const {
  try {
    // The checker validates raw_data sizes, so it sees the whole model; shape inference does not.
    onnx::checker::check_model(*proto_);
    onnx::ModelProto copy = copy_without_large_data();
    densify_sparse_stand_ins(*copy.mutable_graph());
    onnx::shape_inference::InferShapes(copy, onnx::OpSchemaRegistry::Instance(),
                                       onnx::ShapeInferenceOptions(/*check_type=*/true, /*strict=*/1, false));
  } catch (const std::exception& e) {
    throw Error(ExitCode::kBadInput, "ONNX checker: " + one_line(e.what()));
  }
}

std::string Model::serialize() const {
  const MaterializedPayloads materialized(*const_cast<onnx::ModelProto&>(*proto_).mutable_graph());
  const size_t size = proto_->ByteSizeLong();
  if (size > static_cast<size_t>(INT32_MAX))
    throw Error(ExitCode::kWriteFailed,
                "model is " + std::to_string(size) + " bytes, over protobuf's 2 GiB limit; write it with external data");
  std::string out;
  out.resize(size);
  google::protobuf::io::ArrayOutputStream array(out.data(), static_cast<int>(size));
  google::protobuf::io::CodedOutputStream stream(&array);
  stream.SetSerializationDeterministic(true);
  proto_->SerializeWithCachedSizes(&stream);
  if (stream.HadError()) throw Error(ExitCode::kWriteFailed, "model serialization failed");
  return out;
}

int64_t Model::serialized_bytes() const {
  using google::protobuf::io::CodedOutputStream;
  auto varint = [](int64_t v) { return static_cast<int64_t>(CodedOutputStream::VarintSize64(static_cast<uint64_t>(v))); };
  const auto total = static_cast<int64_t>(proto_->ByteSizeLong());  // also caches every message's size
  // What storing a payload as raw_data instead of the reference adds to its tensor, and to the
  // length prefix of the tensor inside its parent (a one-byte tag either way).
  auto growth = [&](const onnx::TensorProto& t, int64_t length) {
    int64_t reference = 2;  // data_location = EXTERNAL
    for (const auto& e : t.external_data()) reference += 1 + varint(e.GetCachedSize()) + e.GetCachedSize();
    const int64_t now = t.GetCachedSize();
    const int64_t materialized = now - reference + 1 + varint(length) + length;
    return materialized - now + varint(materialized) - varint(now);
  };
  int64_t main_graph = 0, nested = 0;
  auto& graph = *const_cast<onnx::ModelProto&>(*proto_).mutable_graph();
  for (const auto& t : graph.initializer())
    if (const auto length = mapped_payload_size(t)) main_graph += growth(t, *length);
  int64_t all = 0;
  for_each_tensor(graph, [&](onnx::TensorProto& t) {
    if (const auto length = mapped_payload_size(t)) all += growth(t, *length);
  });
  nested = all - main_graph;
  const int64_t graph_now = graph.GetCachedSize();
  return total + main_graph + varint(graph_now + main_graph) - varint(graph_now) + nested;
}

}  // namespace compress
