// The evaluator: tensors in and out of TensorProto, per-graph execution plans (constants decoded once,
// each value freed after its last reader), scopes for If/Loop/Scan subgraphs, and the shared kernel helpers.
#include <compress/error.h>
#include <compress/evaluator.h>
#include <compress/tensor.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <limits>
#include <map>
#include <set>
#include <unordered_set>

#include "core/checked.h"
#include "eval/ops.h"

namespace compress::eval {

namespace {

constexpr int32_t kUint4 = 21, kInt4 = 22;
constexpr int64_t kMaxElements = int64_t{1} << 30;

bool float_dtype(int32_t t) {
  return t == TP::FLOAT || t == TP::FLOAT16 || t == TP::DOUBLE || t == TP::BFLOAT16;
}

template <class T>
void append_le(std::string& raw, T v) {
  char bytes[sizeof(T)];
  std::memcpy(bytes, &v, sizeof(T));
  raw.append(bytes, sizeof(T));
}

}  // namespace

bool Tensor::is_float() const { return float_dtype(dtype); }
int64_t Tensor::numel() const { return numel_of(dims); }

Tensor Tensor::floats(std::vector<int64_t> dims, std::vector<float> values, int32_t dtype) {
  Tensor t;
  t.dtype = dtype;
  t.dims = std::move(dims);
  t.f = std::move(values);
  return t;
}

Tensor Tensor::ints(std::vector<int64_t> dims, std::vector<int64_t> values, int32_t dtype) {
  Tensor t;
  t.dtype = dtype;
  t.dims = std::move(dims);
  t.i = std::move(values);
  return t;
}

Tensor Tensor::zeros(int32_t dtype, std::vector<int64_t> dims) {
  Tensor t;
  t.dtype = dtype;
  t.dims = std::move(dims);
  const auto n = static_cast<size_t>(t.numel());
  if (t.is_float()) t.f.assign(n, 0.0f); else t.i.assign(n, 0);
  return t;
}

Tensor from_proto(const onnx::TensorProto& proto) {
  Tensor t;
  t.dtype = proto.data_type();
  t.dims.assign(proto.dims().begin(), proto.dims().end());
  if (t.dtype == kInt4 || t.dtype == kUint4) {
    const std::string_view raw = raw_bytes(proto).value_or(std::string_view());
    const int64_t n = t.numel();
    if (static_cast<int64_t>(raw.size()) * 2 < n)
      throw Error(ExitCode::kBadInput, "tensor '" + proto.name() + "': int4 raw_data too short");
    t.i.resize(static_cast<size_t>(n));
    for (int64_t k = 0; k < n; ++k) {
      const auto byte = static_cast<uint8_t>(raw[static_cast<size_t>(k / 2)]);
      int64_t v = (k % 2 == 0) ? (byte & 0x0F) : (byte >> 4);
      if (t.dtype == kInt4 && v >= 8) v -= 16;
      t.i[static_cast<size_t>(k)] = v;
    }
    return t;
  }
  if (t.dtype == TP::STRING || t.dtype == TP::UNDEFINED)
    throw Error(ExitCode::kUnsupported, "tensor '" + proto.name() + "': " + dtype_name(t.dtype) +
                                            " tensors are not supported by the evaluator");
  if (t.is_float()) t.f = to_floats(proto); else t.i = to_int64s(proto);
  return t;
}

onnx::TensorProto to_proto(const Tensor& t, const std::string& name) {
  switch (t.dtype) {
    case TP::FLOAT: return make_float_tensor(name, t.dims, t.f);
    case TP::FLOAT16: return make_float16_tensor(name, t.dims, t.f);
    case TP::INT64: return make_int64_tensor(name, t.dims, t.i);
    default: break;
  }
  std::string raw;
  const auto n = static_cast<size_t>(t.numel());
  for (size_t k = 0; k < n; ++k) {
    switch (t.dtype) {
      case TP::DOUBLE: append_le<double>(raw, t.f[k]); break;
      case TP::INT32: append_le<int32_t>(raw, static_cast<int32_t>(t.i[k])); break;
      case TP::UINT32: append_le<uint32_t>(raw, static_cast<uint32_t>(t.i[k])); break;
      case TP::INT16: append_le<int16_t>(raw, static_cast<int16_t>(t.i[k])); break;
      case TP::UINT16: append_le<uint16_t>(raw, static_cast<uint16_t>(t.i[k])); break;
      case TP::INT8: append_le<int8_t>(raw, static_cast<int8_t>(t.i[k])); break;
      case TP::UINT8: case TP::BOOL: append_le<uint8_t>(raw, static_cast<uint8_t>(t.i[k])); break;
      case TP::UINT64: append_le<uint64_t>(raw, static_cast<uint64_t>(t.i[k])); break;
      default: throw Error(ExitCode::kUnsupported, "tensor '" + name + "': cannot encode " + dtype_name(t.dtype));
    }
  }
  return make_raw_tensor(name, t.dtype, t.dims, std::move(raw));
}

// ---- OpCall ----

const Tensor& OpCall::input(size_t k) const {
  if (!has(k)) bad("input " + std::to_string(k) + " is required");
  return *in[k];
}

const onnx::AttributeProto* OpCall::attr(const std::string& name) const {
  for (const auto& a : node.attribute())
    if (a.name() == name) return &a;
  return nullptr;
}

int64_t OpCall::attr_i(const std::string& name, int64_t fallback) const {
  const auto* a = attr(name);
  return a ? a->i() : fallback;
}

float OpCall::attr_f(const std::string& name, float fallback) const {
  const auto* a = attr(name);
  return a ? a->f() : fallback;
}

std::string OpCall::attr_s(const std::string& name, const std::string& fallback) const {
  const auto* a = attr(name);
  return a ? a->s() : fallback;
}

std::vector<int64_t> OpCall::attr_ints(const std::string& name, std::vector<int64_t> fallback) const {
  const auto* a = attr(name);
  return a ? std::vector<int64_t>(a->ints().begin(), a->ints().end()) : fallback;
}

std::vector<float> OpCall::attr_floats(const std::string& name) const {
  const auto* a = attr(name);
  return a ? std::vector<float>(a->floats().begin(), a->floats().end()) : std::vector<float>{};
}

namespace {
std::string node_label(const onnx::NodeProto& node) {
  std::string op = node.domain().empty() || node.domain() == "ai.onnx" ? node.op_type()
                                                                         : node.domain() + ":" + node.op_type();
  const std::string name = node.name().empty() ? (node.output_size() ? node.output(0) : "?") : node.name();
  return op + " node '" + name + "'";
}
}  // namespace

void OpCall::unsupported(const std::string& what) const {
  throw Error(ExitCode::kUnsupported, "evaluator: " + node_label(node) + ": " + what);
}

void OpCall::bad(const std::string& what) const {
  throw Error(ExitCode::kBadInput, "evaluator: " + node_label(node) + ": " + what);
}

// ---- helpers ----

int64_t numel_of(const std::vector<int64_t>& dims) {
  // Dims come from model files and from kernels fed by them: a negative or wrapping count would size
  // buffers wrongly. One tensor of 2^30 elements (4 GiB of float) is far above any activation of the
  // models this evaluator runs (PP-OCR det at 960x960: 88M); a tiny file asking for more is hostile.
  const auto n = checked_product(dims);
  if (!n || *n > kMaxElements)
    throw Error(ExitCode::kBadInput, "evaluator: a tensor's dims are negative or hold more than 2^30 elements");
  return *n;
}

std::vector<int64_t> strides_of(const std::vector<int64_t>& dims) {
  std::vector<int64_t> s(dims.size(), 1);
  for (int64_t k = static_cast<int64_t>(dims.size()) - 2; k >= 0; --k)
    s[static_cast<size_t>(k)] = s[static_cast<size_t>(k) + 1] * dims[static_cast<size_t>(k) + 1];
  return s;
}

std::vector<int64_t> broadcast_dims(const OpCall& call, const std::vector<int64_t>& a, const std::vector<int64_t>& b) {
  const size_t r = std::max(a.size(), b.size());
  std::vector<int64_t> out(r);
  for (size_t k = 0; k < r; ++k) {
    const int64_t da = k < r - a.size() ? 1 : a[k - (r - a.size())];
    const int64_t db = k < r - b.size() ? 1 : b[k - (r - b.size())];
    if (da != db && da != 1 && db != 1)
      call.bad("shapes cannot broadcast (dim " + std::to_string(k) + ": " + std::to_string(da) + " vs " +
               std::to_string(db) + ")");
    out[k] = da == 1 ? db : da;
  }
  return out;
}

int64_t norm_axis(const OpCall& call, int64_t axis, int64_t rank) {
  const int64_t a = axis < 0 ? axis + rank : axis;
  if (a < 0 || a >= rank) call.bad("axis " + std::to_string(axis) + " out of range for rank " + std::to_string(rank));
  return a;
}

std::vector<float> as_floats(const Tensor& t) {
  if (t.is_float()) return t.f;
  return std::vector<float>(t.i.begin(), t.i.end());
}

int64_t to_int64_saturated(double v) {
  constexpr double kTwo63 = 9223372036854775808.0;
  if (std::isnan(v) || v < -kTwo63) return std::numeric_limits<int64_t>::min();
  if (v >= kTwo63) return std::numeric_limits<int64_t>::max();
  return static_cast<int64_t>(v);
}

std::vector<int64_t> as_ints(const Tensor& t) {
  if (!t.is_float()) return t.i;
  std::vector<int64_t> v(t.f.size());
  for (size_t k = 0; k < v.size(); ++k) v[k] = to_int64_saturated(t.f[k]);
  return v;
}

void round_to_dtype(Tensor& t) {
  if (t.dtype == TP::FLOAT16) {
    for (auto& v : t.f) v = half_to_float(float_to_half(v));
  } else if (t.dtype == TP::BFLOAT16) {
    for (auto& v : t.f) {
      uint32_t bits;
      std::memcpy(&bits, &v, 4);
      bits = (bits + 0x7FFF + ((bits >> 16) & 1)) & 0xFFFF0000u;
      std::memcpy(&v, &bits, 4);
    }
  }
}

std::string dims_text(const std::vector<int64_t>& dims) {
  std::string s = "[";
  for (size_t i = 0; i < dims.size(); ++i) s += (i ? "," : "") + std::to_string(dims[i]);
  return s + "]";
}

Tensor take(const Tensor& src, std::vector<int64_t> dims, const std::vector<int64_t>& index, double fill) {
  Tensor o;
  o.dtype = src.dtype;
  o.dims = std::move(dims);
  if (src.is_float()) {
    o.f.resize(index.size());
    for (size_t k = 0; k < index.size(); ++k)
      o.f[k] = index[k] < 0 ? static_cast<float>(fill) : src.f[static_cast<size_t>(index[k])];
  } else {
    o.i.resize(index.size());
    for (size_t k = 0; k < index.size(); ++k)
      o.i[k] = index[k] < 0 ? static_cast<int64_t>(fill) : src.i[static_cast<size_t>(index[k])];
  }
  return o;
}

int64_t wrap_int(int64_t v, int32_t dtype) {
  switch (dtype) {
    case TP::INT8: return static_cast<int8_t>(v);
    case TP::UINT8: return static_cast<uint8_t>(v);
    case TP::INT16: return static_cast<int16_t>(v);
    case TP::UINT16: return static_cast<uint16_t>(v);
    case TP::INT32: return static_cast<int32_t>(v);
    case TP::UINT32: return static_cast<uint32_t>(v);
    case TP::BOOL: return v != 0;
    default: return v;
  }
}

// ---- plans and execution ----

struct Evaluator::GraphPlan {
  std::vector<const onnx::NodeProto*> nodes;
  std::vector<int> graph_index;  // per planned node, its index in the graph's node list
  std::vector<OpFn> fns;
  std::vector<std::vector<std::string>> free_after;
  std::unordered_map<std::string, std::shared_ptr<const Tensor>> constants;
  std::vector<std::string> outputs;
};

namespace {

using Plans = std::unordered_map<const onnx::GraphProto*, std::unique_ptr<Evaluator::GraphPlan>>;

// A sparse initializer as the dense tensor runtimes make of it on load. Indices are linear [nnz] or
// coordinates [nnz, rank]; each is checked here too, for models that did not come through Model::load.
Tensor densify(const onnx::SparseTensorProto& sparse) {
  const std::string name = "evaluator: sparse initializer '" + sparse.values().name() + "'";
  const Tensor values = from_proto(sparse.values());
  const Tensor indices = from_proto(sparse.indices());
  Tensor dense = Tensor::zeros(values.dtype, {sparse.dims().begin(), sparse.dims().end()});
  const int64_t nnz = values.numel(), size = dense.numel(), rank = sparse.dims_size();
  const bool linear = indices.dims.size() == 1 && indices.dims[0] == nnz;
  if (!linear && !(indices.dims.size() == 2 && indices.dims[0] == nnz && indices.dims[1] == rank))
    throw Error(ExitCode::kBadInput, name + ": indices do not match its " + std::to_string(nnz) + " values");
  if (indices.is_float()) throw Error(ExitCode::kBadInput, name + ": indices are not integers");
  const auto strides = strides_of(dense.dims);
  for (int64_t k = 0; k < nnz; ++k) {
    int64_t at = 0;
    if (linear) {
      at = indices.i[static_cast<size_t>(k)];
    } else {
      for (int64_t d = 0; d < rank; ++d) {
        const int64_t c = indices.i[static_cast<size_t>(k * rank + d)];
        if (c < 0 || c >= dense.dims[static_cast<size_t>(d)]) at = -1;
        if (at >= 0) at += c * strides[static_cast<size_t>(d)];
      }
    }
    if (at < 0 || at >= size) throw Error(ExitCode::kBadInput, name + ": an index is outside its dims");
    if (dense.is_float()) dense.f[static_cast<size_t>(at)] = values.f[static_cast<size_t>(k)];
    else dense.i[static_cast<size_t>(at)] = values.i[static_cast<size_t>(k)];
  }
  return dense;
}

void build_plan(const onnx::GraphProto& g, Plans& plans) {
  auto plan = std::make_unique<Evaluator::GraphPlan>();
  for (const auto& init : g.initializer()) plan->constants[init.name()] = std::make_shared<const Tensor>(from_proto(init));
  for (const auto& sparse : g.sparse_initializer())
    plan->constants[sparse.values().name()] = std::make_shared<const Tensor>(densify(sparse));
  std::unordered_set<std::string> keep;
  for (const auto& o : g.output()) {
    keep.insert(o.name());
    plan->outputs.push_back(o.name());
  }
  std::unordered_map<std::string, size_t> last_use;
  for (int n = 0; n < g.node_size(); ++n) {
    const auto& node = g.node(n);
    OpFn fn = find_op(node.domain(), node.op_type());
    if (!fn)
      throw Error(ExitCode::kUnsupported, "evaluator: unsupported op " +
                                              (node.domain().empty() || node.domain() == "ai.onnx"
                                                   ? node.op_type()
                                                   : node.domain() + ":" + node.op_type()) +
                                              " (node '" + (node.name().empty() ? node.output(0) : node.name()) + "')");
    // A Constant node is decoded once here and served like an initializer (a value it cannot decode
    // stays a node, so the error still comes from run()).
    if (fn == &op_Constant && node.input_size() == 0 && node.output_size() == 1 && !node.output(0).empty()) {
      OpCall call{node, {}, std::vector<Tensor>(1), 0, {}};
      try {
        fn(call);
        plan->constants[node.output(0)] = std::make_shared<const Tensor>(std::move(call.out[0]));
        continue;
      } catch (const Error&) {
      }
    }
    const size_t at = plan->nodes.size();
    plan->nodes.push_back(&node);
    plan->graph_index.push_back(n);
    plan->fns.push_back(fn);
    for (const auto& i : node.input())
      if (!i.empty()) last_use[i] = at;
    for (const auto& o : node.output())
      if (!o.empty() && !last_use.count(o)) last_use[o] = at;
    for (const auto& a : node.attribute()) {
      auto visit = [&](const onnx::GraphProto& sub) {
        build_plan(sub, plans);
        for (const auto& name : outer_scope_names(sub)) last_use[name] = at;
      };
      if (a.has_g()) visit(a.g());
      for (const auto& sub : a.graphs()) visit(sub);
    }
  }
  plan->free_after.resize(plan->nodes.size());
  for (const auto& [name, n] : last_use)
    if (!keep.count(name) && !plan->constants.count(name)) plan->free_after[n].push_back(name);
  plans[&g] = std::move(plan);
}

struct Scope {
  const Scope* parent = nullptr;
  const Evaluator::GraphPlan* plan = nullptr;
  std::unordered_map<std::string, std::shared_ptr<const Tensor>> values;

  const Tensor* find(const std::string& name) const {
    for (const Scope* s = this; s; s = s->parent) {
      auto it = s->values.find(name);
      if (it != s->values.end()) return it->second.get();
      auto c = s->plan->constants.find(name);
      if (c != s->plan->constants.end()) return c->second.get();
    }
    return nullptr;
  }
};

// Float storage of freed intermediates, handed to later outputs (one graph execution).
class BufferPool {
 public:
  static constexpr size_t kMinFloats = 4096, kMaxEntries = 16;
  void put(std::vector<float>&& v) {
    if (v.capacity() < kMinFloats) return;
    v.clear();
    free_.emplace(v.capacity(), std::move(v));
    if (free_.size() > kMaxEntries) free_.erase(free_.begin());
  }
  /// An empty vector with capacity >= n (the smallest such), or a new empty one.
  std::vector<float> take(size_t n) {
    if (n < kMinFloats) return {};
    auto it = free_.lower_bound(n);
    if (it == free_.end() || it->first > 4 * n) return {};
    std::vector<float> v = std::move(it->second);
    free_.erase(it);
    return v;
  }

 private:
  std::multimap<size_t, std::vector<float>> free_;
};

// Runs the planned nodes [begin, end) of `g` (the whole graph by default) and returns the graph
// outputs when the range reaches the end (nothing otherwise).
std::vector<Tensor> execute(const Plans& plans, const onnx::GraphProto& g, Scope& scope, int64_t opset,
                            const Evaluator::NodeProfiler* profiler, size_t begin = 0,
                            size_t end = std::numeric_limits<size_t>::max()) {
  const auto& plan = *plans.at(&g);
  BufferPool pool;
  scope.plan = &plan;
  end = std::min(end, plan.nodes.size());
  for (size_t n = begin; n < end; ++n) {
    const auto& node = *plan.nodes[n];
    OpCall call{node, {}, {}, opset, {}};
    call.in.reserve(static_cast<size_t>(node.input_size()));
    for (const auto& name : node.input()) {
      if (name.empty()) {
        call.in.push_back(nullptr);
        continue;
      }
      const Tensor* t = scope.find(name);
      if (!t) call.bad("input '" + name + "' has no value (not a graph input, initializer or earlier output)");
      call.in.push_back(t);
    }
    while (!call.in.empty() && call.in.back() == nullptr) call.in.pop_back();
    call.out.resize(static_cast<size_t>(node.output_size()));
    // Outputs start with recycled float storage about the size of the first input (most kernels write
    // outputs of that size; resize() then reuses the capacity instead of allocating fresh pages).
    if (!call.in.empty() && call.in[0] && call.in[0]->is_float())
      for (auto& o : call.out) o.f = pool.take(call.in[0]->f.size());
    call.run_subgraph = [&](const onnx::GraphProto& sub, std::vector<Tensor> inputs) {
      if (static_cast<int>(inputs.size()) > sub.input_size())
        call.bad("subgraph '" + sub.name() + "' declares " + std::to_string(sub.input_size()) + " inputs, " +
                 std::to_string(inputs.size()) + " given");
      Scope inner;
      inner.parent = &scope;
      for (size_t k = 0; k < inputs.size(); ++k)
        inner.values[sub.input(static_cast<int>(k)).name()] = std::make_shared<Tensor>(std::move(inputs[k]));
      return execute(plans, sub, inner, opset, profiler);
    };
    if (profiler) {
      const auto t0 = std::chrono::steady_clock::now();
      plan.fns[n](call);
      (*profiler)(node, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    } else {
      plan.fns[n](call);
    }
    for (int o = 0; o < node.output_size(); ++o)
      if (!node.output(o).empty())
        scope.values[node.output(o)] = std::make_shared<Tensor>(std::move(call.out[static_cast<size_t>(o)]));
    for (const auto& name : plan.free_after[n]) {
      auto it = scope.values.find(name);
      if (it == scope.values.end()) continue;
      // Values are created non-const (make_shared<Tensor>), so taking the storage of the last owner is fine.
      if (it->second.use_count() == 1) pool.put(std::move(const_cast<Tensor&>(*it->second).f));
      scope.values.erase(it);
    }
  }
  std::vector<Tensor> outputs;
  if (end < plan.nodes.size()) return outputs;
  for (const auto& name : plan.outputs) {
    const Tensor* t = scope.find(name);
    if (!t) throw Error(ExitCode::kBadInput, "evaluator: graph output '" + name + "' was never computed");
    outputs.push_back(*t);
  }
  return outputs;
}

void collect_ops(const onnx::GraphProto& g, std::set<std::string>& missing) {
  for (const auto& node : g.node()) {
    if (!find_op(node.domain(), node.op_type()))
      missing.insert(node.domain().empty() || node.domain() == "ai.onnx" ? node.op_type()
                                                                         : node.domain() + ":" + node.op_type());
    for (const auto& a : node.attribute()) {
      if (a.has_g()) collect_ops(a.g(), missing);
      for (const auto& sub : a.graphs()) collect_ops(sub, missing);
    }
  }
}

}  // namespace

bool is_supported(const std::string& domain, const std::string& op_type) { return find_op(domain, op_type) != nullptr; }

std::vector<std::string> unsupported_ops(const onnx::ModelProto& model) {
  std::set<std::string> missing;
  collect_ops(model.graph(), missing);
  return {missing.begin(), missing.end()};
}

Evaluator::Evaluator(const Model& model) : model_(model.proto()) {
  for (const auto& imp : model_.opset_import())
    if (imp.domain().empty() || imp.domain() == "ai.onnx") opset_ = imp.version();
  const auto& g = model_.graph();
  std::unordered_set<std::string> inits;
  for (const auto& i : g.initializer()) inits.insert(i.name());
  for (const auto& i : g.sparse_initializer()) inits.insert(i.values().name());
  for (const auto& i : g.input())
    if (!inits.count(i.name())) inputs_.push_back(i.name());
  for (const auto& o : g.output()) outputs_.push_back(o.name());
  build_plan(g, plans_);
}

Evaluator::~Evaluator() = default;

std::vector<int64_t> Evaluator::input_shape(const std::string& name) const {
  for (const auto& i : model_.graph().input()) {
    if (i.name() != name) continue;
    std::vector<int64_t> dims;
    for (const auto& d : i.type().tensor_type().shape().dim()) dims.push_back(d.has_dim_value() ? d.dim_value() : -1);
    return dims;
  }
  throw Error(ExitCode::kBadInput, "model has no input '" + name + "'");
}

int32_t Evaluator::input_dtype(const std::string& name) const {
  for (const auto& i : model_.graph().input())
    if (i.name() == name) return i.type().tensor_type().elem_type();
  throw Error(ExitCode::kBadInput, "model has no input '" + name + "'");
}

namespace {

// The first planned node at or after graph node `index`.
size_t planned_at(const Evaluator::GraphPlan& plan, int index) {
  return static_cast<size_t>(std::lower_bound(plan.graph_index.begin(), plan.graph_index.end(), index) - plan.graph_index.begin());
}

}  // namespace

Evaluator::Checkpoint Evaluator::start(const TensorMap& feeds) const {
  for (const auto& name : inputs_)
    if (!feeds.count(name)) throw Error(ExitCode::kBadInput, "evaluator: no value for model input '" + name + "'");
  Checkpoint state;
  for (const auto& [name, t] : feeds) state.values[name] = std::make_shared<Tensor>(t);
  return state;
}

void Evaluator::advance(Checkpoint& state, int stop) const {
  if (stop < state.next) throw Error(ExitCode::kInternal, "evaluator: cannot advance a checkpoint backwards");
  const GraphPlan& plan = *plans_.at(&model_.graph());
  Scope scope;
  scope.values = std::move(state.values);
  execute(plans_, model_.graph(), scope, opset_, nullptr, planned_at(plan, state.next), planned_at(plan, stop));
  state.values = std::move(scope.values);
  state.next = stop;
}

TensorMap Evaluator::finish(const Checkpoint& state) const {
  const GraphPlan& plan = *plans_.at(&model_.graph());
  Scope scope;
  scope.values = state.values;
  auto outs = execute(plans_, model_.graph(), scope, opset_, profiler_ ? &profiler_ : nullptr, planned_at(plan, state.next));
  TensorMap result;
  for (size_t k = 0; k < outs.size(); ++k) result[outputs_[k]] = std::move(outs[k]);
  return result;
}

TensorMap Evaluator::run(const TensorMap& feeds) const {
  Scope scope;
  for (const auto& name : inputs_) {
    auto it = feeds.find(name);
    if (it == feeds.end()) throw Error(ExitCode::kBadInput, "evaluator: no value for model input '" + name + "'");
  }
  for (const auto& [name, t] : feeds) scope.values[name] = std::make_shared<Tensor>(t);
  auto outs = execute(plans_, model_.graph(), scope, opset_, profiler_ ? &profiler_ : nullptr);
  TensorMap result;
  for (size_t k = 0; k < outs.size(); ++k) result[outputs_[k]] = std::move(outs[k]);
  return result;
}

}  // namespace compress::eval
