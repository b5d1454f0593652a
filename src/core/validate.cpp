// Structural validation before ONNX's checker and shape inference see a model. Both trust parts of
// the graph they never verify: a Conv with strides 0 divides by zero inside shape inference, a
// function that calls itself recurses until the stack overflows, Scan-9 without num_scan_inputs
// dereferences a missing attribute. Every check here is one a valid model always passes, so
// nothing a runtime accepts is refused; each failure names the node or tensor.
//
// Cost is linear in the model: every graph is walked once, the names a subgraph reads from its
// enclosing scopes are returned bottom-up instead of being recomputed per level.
#include "core/validate.h"

#include <compress/error.h>
#include <compress/tensor.h>
#include <onnx/defs/schema.h>

#include <map>
#include <set>
#include <unordered_map>
#include <unordered_set>

#include "core/attributes.h"
#include "core/checked.h"

namespace compress {

namespace {

using onnx::AttributeProto;
using onnx::GraphProto;
using onnx::NodeProto;

[[noreturn]] void reject(const std::string& what) { throw Error(ExitCode::kBadInput, what); }

std::string label(const NodeProto& n) { return node_label(n); }

bool onnx_domain(const std::string& domain) { return domain.empty() || domain == "ai.onnx"; }

// Names visible from an enclosing graph, innermost first.
struct Scope {
  const std::unordered_set<std::string>* names = nullptr;
  const Scope* parent = nullptr;
  bool defines(const std::string& name) const {
    for (const Scope* s = this; s; s = s->parent)
      if (s->names->count(name)) return true;
    return false;
  }
};

// What a graph body is made of; a function body is a graph without initializers.
struct Body {
  std::string where;
  std::vector<std::string> inputs, initializers, outputs;
  const google::protobuf::RepeatedPtrField<NodeProto>* nodes = nullptr;
};

Body body_of(const GraphProto& g, const std::string& where) {
  Body b;
  b.where = where;
  for (const auto& v : g.input()) b.inputs.push_back(v.name());
  for (const auto& t : g.initializer()) b.initializers.push_back(t.name());
  for (const auto& s : g.sparse_initializer()) b.initializers.push_back(s.values().name());
  for (const auto& v : g.output()) b.outputs.push_back(v.name());
  b.nodes = &g.node();
  return b;
}

const std::set<std::string> kConvLike = {"Conv", "ConvTranspose", "ConvInteger", "QLinearConv", "MaxPool",
                                         "AveragePool", "LpPool", "MaxUnpool", "Col2Im", "DeformConv"};

constexpr int64_t kMaxBlocksize = 1 << 16;

void check_ints_at_least(const NodeProto& n, const AttributeProto& a, int64_t min) {
  for (int64_t v : a.ints())
    if (v < min)
      reject(label(n) + ": attribute '" + a.name() + "' holds " + std::to_string(v) + " (must be >= " +
             std::to_string(min) + ")");
}

void check_int_at_least(const NodeProto& n, const AttributeProto& a, int64_t min) {
  if (a.i() < min)
    reject(label(n) + ": attribute '" + a.name() + "' is " + std::to_string(a.i()) + " (must be >= " +
           std::to_string(min) + ")");
}

void check_sparse(const onnx::SparseTensorProto& s) {
  const std::string name = "sparse tensor '" + s.values().name() + "'";
  const auto dense = checked_product(s.dims());
  if (!dense) reject(name + ": dims are negative or their element count overflows 64 bits");
  const int64_t nnz = element_count(s.values());
  if (s.values().dims_size() != 1) reject(name + ": values must be one-dimensional");
  if (nnz == 0) return;
  const auto& idx = s.indices();
  const std::vector<int64_t> indices = to_int64s(idx);
  const int64_t rank = s.dims_size();
  if (idx.dims_size() == 1 && idx.dims(0) == nnz) {
    for (int64_t i : indices)
      if (i < 0 || i >= *dense) reject(name + ": index " + std::to_string(i) + " is outside its dims");
  } else if (idx.dims_size() == 2 && idx.dims(0) == nnz && idx.dims(1) == rank) {
    for (size_t k = 0; k < indices.size(); ++k) {
      const int64_t dim = s.dims(static_cast<int>(k % static_cast<size_t>(rank)));
      if (indices[k] < 0 || indices[k] >= dim)
        reject(name + ": index " + std::to_string(indices[k]) + " is outside its dims");
    }
  } else {
    reject(name + ": indices must be [" + std::to_string(nnz) + "] or [" + std::to_string(nnz) + ", " +
           std::to_string(rank) + "]");
  }
}

class Validator {
 public:
  explicit Validator(const onnx::ModelProto& model) : model_(model) {
    for (const auto& op : model.opset_import()) {
      if (op.version() < 1)
        reject("opset import of domain '" + op.domain() + "' has version " + std::to_string(op.version()));
      model_opsets_[onnx_domain(op.domain()) ? "" : op.domain()] = op.version();
    }
    for (const auto& f : model.functions()) functions_[key(f.domain(), f.name())] = &f;
    for (const auto& [domain, range] : onnx::OpSchemaRegistry::DomainToVersionRange::Instance().Map())
      known_max_[onnx_domain(domain) ? "" : domain] = range.second;
  }

  void run() {
    for (const auto& f : model_.functions()) {
      std::map<std::string, int64_t> opsets;
      for (const auto& op : f.opset_import()) opsets[onnx_domain(op.domain()) ? "" : op.domain()] = op.version();
      Body b;
      b.where = "function '" + key(f.domain(), f.name()) + "'";
      b.inputs.assign(f.input().begin(), f.input().end());
      b.outputs.assign(f.output().begin(), f.output().end());
      b.nodes = &f.node();
      caller_ = key(f.domain(), f.name());
      graph(b, opsets, nullptr, 0);
    }
    caller_.clear();
    for (const auto& [name, f] : functions_) call_height(name, 0);
    graph(body_of(model_.graph(), "main graph"), model_opsets_, nullptr, 0);
    for (const auto& v : model_.graph().input()) {
      if (!v.type().has_tensor_type() || !v.type().tensor_type().has_shape()) continue;
      for (const auto& d : v.type().tensor_type().shape().dim())
        if (d.has_dim_value() && d.dim_value() < 0)
          reject("graph input '" + v.name() + "' has dimension " + std::to_string(d.dim_value()));
    }
  }

 private:
  static std::string key(const std::string& domain, const std::string& name) { return domain + "." + name; }

  // Longest chain of calls below function `name`; refuses recursion and chains deeper than kMaxNesting
  // (ONNX's function shape inference recurses once per call level).
  int call_height(const std::string& name, int depth) {
    if (depth > kMaxNesting) reject("model-local functions call each other more than " + std::to_string(kMaxNesting) + " levels deep");
    auto done = height_.find(name);
    if (done != height_.end()) return done->second;
    if (!in_progress_.insert(name).second) reject("model-local function '" + name + "' calls itself (recursion)");
    int height = 0;
    for (const auto& callee : calls_[name]) height = std::max(height, 1 + call_height(callee, depth + 1));
    if (height > kMaxNesting) reject("model-local functions call each other more than " + std::to_string(kMaxNesting) + " levels deep");
    in_progress_.erase(name);
    height_[name] = height;
    return height;
  }

  // Validates one graph body; returns the names it (and its subgraphs) read from enclosing scopes.
  std::unordered_set<std::string> graph(const Body& b, const std::map<std::string, int64_t>& opsets,
                                        const Scope* outer, int depth) {
    if (depth > kMaxNesting) reject("subgraphs nest more than " + std::to_string(kMaxNesting) + " levels deep");
    std::unordered_set<std::string> names;
    for (const auto& n : b.inputs) {
      if (n.empty()) reject(b.where + ": an input has an empty name");
      names.insert(n);
    }
    for (const auto& n : b.initializers) {
      if (n.empty()) reject(b.where + ": an initializer has an empty name");
      names.insert(n);
    }
    const auto& nodes = *b.nodes;
    std::unordered_map<std::string, int> producer;
    for (int i = 0; i < nodes.size(); ++i) {
      for (const auto& o : nodes[i].output()) {
        if (o.empty()) continue;
        if (names.count(o)) reject(b.where + ": " + label(nodes[i]) + " redefines input or initializer '" + o + "'");
        const auto [it, fresh] = producer.emplace(o, i);
        if (!fresh)
          reject(b.where + ": value '" + o + "' is produced twice, by " + label(nodes[it->second]) + " and " +
                 label(nodes[i]));
      }
    }
    for (const auto& [name, i] : producer) names.insert(name);
    const Scope scope{&names, outer};

    std::unordered_set<std::string> free;
    std::vector<int> pending(static_cast<size_t>(nodes.size()), 0);
    std::vector<std::vector<int>> successors(static_cast<size_t>(nodes.size()));
    for (int i = 0; i < nodes.size(); ++i) {
      const NodeProto& n = nodes[i];
      node(n, opsets);
      std::vector<std::string> reads;
      for (const auto& in : n.input())
        if (!in.empty()) reads.push_back(in);
      int sub = 0;
      for (const auto& a : n.attribute()) {
        auto visit = [&](const GraphProto& g) {
          const auto inner = graph(body_of(g, b.where + " > " + label(n) + " attribute '" + a.name() + "'"), opsets,
                                   &scope, depth + 1);
          reads.insert(reads.end(), inner.begin(), inner.end());
        };
        if (a.has_g()) visit(a.g()), ++sub;
        for (const auto& g : a.graphs()) visit(g), ++sub;
      }
      for (const auto& r : reads) {
        auto it = producer.find(r);
        if (it != producer.end()) {
          if (it->second == i) reject(b.where + ": " + label(n) + " reads its own output '" + r + "' (a cycle)");
          successors[static_cast<size_t>(it->second)].push_back(i);
          ++pending[static_cast<size_t>(i)];
        } else if (!names.count(r)) {
          if (!outer || !outer->defines(r))
            reject(b.where + ": " + label(n) + " reads '" + r + "', which no node, input or initializer defines");
          free.insert(r);
        }
      }
    }
    for (const auto& o : b.outputs) {
      if (o.empty()) reject(b.where + ": an output has an empty name");
      if (names.count(o)) continue;
      if (!outer || !outer->defines(o)) reject(b.where + ": output '" + o + "' is never computed");
      free.insert(o);
    }
    // Kahn's algorithm: nodes left with pending inputs sit on a cycle.
    std::vector<int> ready;
    for (int i = 0; i < nodes.size(); ++i)
      if (pending[static_cast<size_t>(i)] == 0) ready.push_back(i);
    int sorted = 0;
    while (!ready.empty()) {
      const int i = ready.back();
      ready.pop_back();
      ++sorted;
      for (int s : successors[static_cast<size_t>(i)])
        if (--pending[static_cast<size_t>(s)] == 0) ready.push_back(s);
    }
    if (sorted != nodes.size()) {
      for (int i = 0; i < nodes.size(); ++i)
        if (pending[static_cast<size_t>(i)] > 0) reject(b.where + ": the graph has a cycle through " + label(nodes[i]));
    }
    return free;
  }

  void node(const NodeProto& n, const std::map<std::string, int64_t>& opsets) {
    if (n.op_type().empty()) reject(label(n) + " has an empty op type");
    const std::string domain = onnx_domain(n.domain()) ? "" : n.domain();
    const std::string fn = key(n.domain(), n.op_type());
    const bool local_function = functions_.count(fn) > 0;
    if (local_function && !caller_.empty()) calls_[caller_].insert(fn);
    std::set<std::string> seen;
    for (const auto& a : n.attribute()) {
      if (a.name().empty()) reject(label(n) + " has an attribute with an empty name");
      if (!seen.insert(a.name()).second) reject(label(n) + " has attribute '" + a.name() + "' twice");
      if (a.type() == AttributeProto::UNDEFINED && a.ref_attr_name().empty())
        reject(label(n) + ": attribute '" + a.name() + "' has no type");
      for (const auto& s : a.sparse_tensors()) check_sparse(s);
      if (a.has_sparse_tensor()) check_sparse(a.sparse_tensor());
      // A subgraph's sparse initializers, as the main graph's (its nodes come through here too).
      if (a.has_g())
        for (const auto& s : a.g().sparse_initializer()) check_sparse(s);
      for (const auto& sub : a.graphs())
        for (const auto& s : sub.sparse_initializer()) check_sparse(s);
    }
    if (local_function || !onnx_domain(n.domain())) return;
    const auto version = opsets.find(domain);
    if (version == opsets.end()) return;
    check_values(n, version->second);
    const auto max = known_max_.find(domain);
    if (max == known_max_.end() || version->second > max->second) return;  // newer than this ONNX
    const auto* schema = onnx::OpSchemaRegistry::Schema(n.op_type(), static_cast<int>(version->second), domain);
    if (schema) check_schema(n, *schema);
  }

  // The arity and attribute rules of the op's schema that shape inference relies on without checking.
  static void check_schema(const NodeProto& n, const onnx::OpSchema& schema) {
    for (const auto& a : n.attribute()) {
      if (!a.ref_attr_name().empty()) continue;
      auto it = schema.attributes().find(a.name());
      if (it != schema.attributes().end() && it->second.type != a.type())
        reject(label(n) + ": attribute '" + a.name() + "' is " + AttributeProto::AttributeType_Name(a.type()) +
               ", expected " + AttributeProto::AttributeType_Name(it->second.type));
    }
    for (const auto& [name, spec] : schema.attributes()) {
      if (!spec.required) continue;
      bool present = false;
      for (const auto& a : n.attribute()) present = present || a.name() == name;
      if (!present) reject(label(n) + " lacks required attribute '" + name + "'");
    }
    if (n.input_size() < schema.min_input() || n.input_size() > schema.max_input())
      reject(label(n) + " has " + std::to_string(n.input_size()) + " inputs, expected " +
             std::to_string(schema.min_input()) + " to " + std::to_string(schema.max_input()));
    if (n.output_size() < schema.min_output() || n.output_size() > schema.max_output())
      reject(label(n) + " has " + std::to_string(n.output_size()) + " outputs, expected " +
             std::to_string(schema.min_output()) + " to " + std::to_string(schema.max_output()));
    const auto& formal = schema.inputs();
    for (int i = 0; i < n.input_size() && i < static_cast<int>(formal.size()); ++i)
      if (n.input(i).empty() && formal[static_cast<size_t>(i)].GetOption() == onnx::OpSchema::Single)
        reject(label(n) + ": required input " + std::to_string(i) + " ('" + formal[static_cast<size_t>(i)].GetName() +
               "') is empty");
  }

  // Attribute values ONNX's shape inference divides by or indexes with.
  static void check_values(const NodeProto& n, int64_t opset) {
    const bool conv_like = kConvLike.count(n.op_type()) > 0;
    for (const auto& a : n.attribute()) {
      if (!a.ref_attr_name().empty()) continue;
      const std::string& name = a.name();
      if (name == "strides" || name == "dilations" || name == "kernel_shape") check_ints_at_least(n, a, 1);
      else if (name == "group" && conv_like) check_int_at_least(n, a, 1);
      else if (name == "pads" && conv_like) check_ints_at_least(n, a, 0);
      else if (name == "blocksize") {
        check_int_at_least(n, a, 1);
        // DepthToSpace's inference divides by blocksize^2, which wraps to 0 from 2^32 on (SIGFPE).
        if (a.i() > kMaxBlocksize)
          reject(label(n) + ": attribute 'blocksize' is " + std::to_string(a.i()) + " (must be <= " +
                 std::to_string(kMaxBlocksize) + ")");
      }
      else if (name == "hidden_size") check_int_at_least(n, a, 1);
      // GatherND's inference copies dims [0, batch_dims) of its inputs (SIGSEGV below 0).
      else if (name == "batch_dims" && n.op_type() == "GatherND") check_int_at_least(n, a, 0);
      else if (name == "perm" && n.op_type() == "Transpose") {
        // ONNX 1.12's Transpose inference indexes the input shape with perm unchecked.
        std::vector<bool> used(static_cast<size_t>(a.ints_size()), false);
        for (int64_t v : a.ints()) {
          if (v < 0 || v >= a.ints_size() || used[static_cast<size_t>(v)])
            reject(label(n) + ": attribute 'perm' is not a permutation of 0.." + std::to_string(a.ints_size() - 1));
          used[static_cast<size_t>(v)] = true;
        }
      }
    }
    const auto body = [&](const char* attr) -> const GraphProto* {
      for (const auto& a : n.attribute())
        if (a.name() == attr && a.has_g()) return &a.g();
      return nullptr;
    };
    if (n.op_type() == "Scan") {
      const int64_t sequence_lens = opset < 9 ? 1 : 0;  // Scan-8's first input
      const int64_t inputs = n.input_size() - sequence_lens;
      int64_t scan_inputs = -1;
      for (const auto& a : n.attribute())
        if (a.name() == "num_scan_inputs") scan_inputs = a.i();
      if (scan_inputs < 1 || scan_inputs > inputs)
        reject(label(n) + ": num_scan_inputs must be 1 to " + std::to_string(inputs) + " (the inputs after sequence_lens)");
      for (const auto& a : n.attribute()) {
        if ((a.name() == "scan_input_axes" || a.name() == "scan_input_directions" || a.name() == "directions") &&
            a.ints_size() != scan_inputs)
          reject(label(n) + ": attribute '" + a.name() + "' has " + std::to_string(a.ints_size()) +
                 " entries for " + std::to_string(scan_inputs) + " scan inputs");
        if ((a.name() == "scan_output_axes" || a.name() == "scan_output_directions") && a.ints_size() > n.output_size())
          reject(label(n) + ": attribute '" + a.name() + "' has more entries than the node has outputs");
      }
      if (const GraphProto* g = body("body")) {
        if (g->input_size() != inputs || g->output_size() != n.output_size())
          reject(label(n) + ": the body has " + std::to_string(g->input_size()) + " inputs and " +
                 std::to_string(g->output_size()) + " outputs for " + std::to_string(inputs) + " and " +
                 std::to_string(n.output_size()) + " of the node");
      }
    } else if (n.op_type() == "Loop") {
      if (const GraphProto* g = body("body")) {
        // Body: (iteration, condition, N carried) in, (condition, N carried, K scanned) out.
        if (g->input_size() != n.input_size() || g->output_size() != n.output_size() + 1 ||
            n.input_size() - 2 > n.output_size())
          reject(label(n) + ": the body's inputs and outputs do not match the node's (" +
                 std::to_string(g->input_size()) + " and " + std::to_string(g->output_size()) + " for " +
                 std::to_string(n.input_size()) + " and " + std::to_string(n.output_size()) + ")");
      }
    } else if (n.op_type() == "If") {
      for (const char* branch : {"then_branch", "else_branch"})
        if (const GraphProto* g = body(branch); g && g->output_size() != n.output_size())
          reject(label(n) + ": " + branch + " has " + std::to_string(g->output_size()) + " outputs for " +
                 std::to_string(n.output_size()) + " of the node");
    }
  }

  const onnx::ModelProto& model_;
  std::map<std::string, int64_t> model_opsets_, known_max_;
  std::map<std::string, const onnx::FunctionProto*> functions_;
  std::string caller_;  // the function whose body is being validated
  std::map<std::string, std::set<std::string>> calls_;
  std::map<std::string, int> height_;
  std::set<std::string> in_progress_;
};

// Ranks the graph declares (its inputs, initializers, value_info, Constant values), then its
// enclosing graphs'.
struct DeclaredRanks {
  std::unordered_map<std::string, int> ranks;
  const DeclaredRanks* outer = nullptr;
  int rank(const std::string& name) const {
    for (const DeclaredRanks* r = this; r; r = r->outer) {
      auto it = r->ranks.find(name);
      if (it != r->ranks.end()) return it->second;
    }
    return -1;
  }
};

int declared_rank(const onnx::TypeProto& t) {
  return t.has_tensor_type() && t.tensor_type().has_shape() ? t.tensor_type().shape().dim_size() : -1;
}

// ONNX 1.12's convolution and pooling shape inference indexes its per-axis vectors by the weight's
// (or kernel_shape's) spatial rank while sizing them by the input's: a rank-2 X with a 4-D W reads
// past the end (SIGSEGV); likewise MaxUnpool, LayerNormalization and STFT below. Refused first where
// the ranks are declared; computed ranks stay unchecked.
void check_conv_ranks(const GraphProto& g, const DeclaredRanks* outer) {
  DeclaredRanks r;
  r.outer = outer;
  for (const auto& v : g.input()) r.ranks[v.name()] = declared_rank(v.type());
  for (const auto& v : g.value_info()) r.ranks.emplace(v.name(), declared_rank(v.type()));
  for (const auto& t : g.initializer()) r.ranks[t.name()] = t.dims_size();
  for (const auto& n : g.node()) {
    if (n.op_type() == "Constant" && n.output_size() == 1)
      for (const auto& a : n.attribute())
        if (a.name() == "value" && a.has_t()) r.ranks[n.output(0)] = a.t().dims_size();
    if (onnx_domain(n.domain()) && kConvLike.count(n.op_type()) && n.input_size() > 0) {
      const int x = r.rank(n.input(0));
      const int w_index = n.op_type() == "QLinearConv" ? 3 : 1;
      const bool weighted = n.op_type().find("Conv") != std::string::npos;
      const int w = weighted && n.input_size() > w_index ? r.rank(n.input(w_index)) : -1;
      if (x >= 0 && x < 2) reject(label(n) + ": input '" + n.input(0) + "' has rank " + std::to_string(x) + ", expected N x C x spatial dims");
      if (x >= 0 && w >= 0 && x != w)
        reject(label(n) + ": input '" + n.input(0) + "' has rank " + std::to_string(x) + " but weight '" +
               n.input(w_index) + "' rank " + std::to_string(w) + " (both are N x C x spatial dims)");
      for (const auto& a : n.attribute())
        if (a.name() == "kernel_shape" && x >= 0 && a.ints_size() != x - 2)
          reject(label(n) + ": kernel_shape has " + std::to_string(a.ints_size()) + " entries for input '" + n.input(0) +
                 "' of rank " + std::to_string(x) + " (" + std::to_string(x - 2) + " spatial dims)");
      // MaxUnpool's inference copies dim 1 of the indices I (SIGSEGV when I has rank below 2).
      const int i = n.op_type() == "MaxUnpool" && n.input_size() > 1 ? r.rank(n.input(1)) : -1;
      if (i >= 0 && (i < 2 || (x >= 0 && i != x)))
        reject(label(n) + ": indices '" + n.input(1) + "' have rank " + std::to_string(i) + ", expected the rank of input '" +
               n.input(0) + "'");
    }
    // More of ONNX 1.12's inference reads past a shape: LayerNormalization with an axis below -rank
    // (its Mean/InvStdDev shapes), STFT with a signal that is not [batch, length, 1 or 2].
    if (onnx_domain(n.domain()) && n.op_type() == "LayerNormalization" && n.input_size() > 0) {
      const int x = r.rank(n.input(0));
      int64_t axis = -1;
      for (const auto& a : n.attribute())
        if (a.name() == "axis") axis = a.i();
      if (x >= 0 && (axis < -x || axis >= x))
        reject(label(n) + ": axis " + std::to_string(axis) + " is outside input '" + n.input(0) + "' of rank " +
               std::to_string(x));
    }
    if (onnx_domain(n.domain()) && n.op_type() == "STFT" && n.input_size() > 0) {
      const int x = r.rank(n.input(0));
      if (x >= 0 && x != 3)
        reject(label(n) + ": signal '" + n.input(0) + "' has rank " + std::to_string(x) + ", expected 3 ([batch, length, 1 or 2])");
    }
    for (const auto& a : n.attribute()) {
      if (a.has_g()) check_conv_ranks(a.g(), &r);
      for (const auto& sub : a.graphs()) check_conv_ranks(sub, &r);
    }
  }
}

}  // namespace

void validate_model(const onnx::ModelProto& model) {
  for (const auto& s : model.graph().sparse_initializer()) check_sparse(s);
  Validator(model).run();
  check_conv_ranks(model.graph(), nullptr);
}

}  // namespace compress
