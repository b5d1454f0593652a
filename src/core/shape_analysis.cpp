// Shape-only propagation over an ONNX graph (see shape_analysis.h). Every rule here computes
// dims (and, for small tensors, values) from dims and values: no float compute over activations.
// ONNX's own inferred shapes win wherever they are complete; ours fill in the rest.
#include "core/shape_analysis.h"

#include <compress/error.h>
#include <compress/tensor.h>
#include <onnx/shape_inference/implementation.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <set>
#include <sstream>
#include <unordered_map>

#include "core/attributes.h"

namespace compress {

namespace {

using TP = onnx::TensorProto;

// What the propagation knows of one value. dims entries are -1 where unknown.
struct Value {
  int32_t dtype = 0;
  bool ranked = false;
  std::vector<int64_t> dims;
  bool has_values = false;
  std::vector<double> values;  // row-major, small tensors only

  bool full() const {
    return ranked && std::all_of(dims.begin(), dims.end(), [](int64_t d) { return d >= 0; });
  }
  // Saturates at INT64_MAX: dims from a malformed model can overflow the product.
  int64_t elements() const {
    int64_t n = 1;
    for (int64_t d : dims)
      if (__builtin_mul_overflow(n, d, &n)) return std::numeric_limits<int64_t>::max();
    return n;
  }
};

Value ranked_value(int32_t dtype, std::vector<int64_t> dims) {
  Value v;
  v.dtype = dtype;
  v.ranked = true;
  v.dims = std::move(dims);
  return v;
}

Value with_values(int32_t dtype, std::vector<int64_t> dims, std::vector<double> values) {
  Value v = ranked_value(dtype, std::move(dims));
  v.has_values = true;
  v.values = std::move(values);
  return v;
}

int64_t to_int(double x) {
  // Slice ends such as INT64_MAX arrive as doubles: clamp instead of overflowing.
  if (x >= 9.2e18) return std::numeric_limits<int64_t>::max();
  if (x <= -9.2e18) return std::numeric_limits<int64_t>::min();
  return static_cast<int64_t>(x);
}

Value from_type(const onnx::TypeProto& type) {
  Value v;
  if (!type.has_tensor_type()) return v;
  v.dtype = type.tensor_type().elem_type();
  if (!type.tensor_type().has_shape()) return v;
  v.ranked = true;
  for (const auto& d : type.tensor_type().shape().dim())
    v.dims.push_back(d.has_dim_value() && d.dim_value() >= 0 ? d.dim_value() : -1);
  return v;
}

bool is_integer_dtype(int32_t dtype) {
  return dtype == TP::INT64 || dtype == TP::INT32 || dtype == TP::INT16 || dtype == TP::INT8 ||
         dtype == TP::UINT8 || dtype == TP::UINT16 || dtype == TP::UINT32 || dtype == TP::UINT64 ||
         dtype == TP::BOOL;
}

Value from_tensor(const TP& t) {
  Value v = ranked_value(t.data_type(), {t.dims().begin(), t.dims().end()});
  if (v.elements() > kMaxTrackedElements) return v;
  // The analysis copy has large payloads dropped; a tensor without its data simply has no values.
  try {
    if (is_integer_dtype(t.data_type())) {
      for (int64_t x : to_int64s(t)) v.values.push_back(static_cast<double>(x));
    } else {
      for (float x : to_floats(t)) v.values.push_back(x);
    }
    v.has_values = true;
  } catch (const std::exception&) {
    v.values.clear();
  }
  return v;
}

// Scopes: a subgraph sees its own values first, then its parents'.
struct Scope {
  const Scope* parent = nullptr;
  std::unordered_map<std::string, Value> values;
  const Value* find(const std::string& name) const {
    for (const Scope* s = this; s; s = s->parent) {
      auto it = s->values.find(name);
      if (it != s->values.end()) return &it->second;
    }
    return nullptr;
  }
};

std::vector<int64_t> broadcast(const std::vector<const Value*>& in, bool& ok) {
  size_t rank = 0;
  for (const Value* v : in) {
    if (!v || !v->ranked) {
      ok = false;
      return {};
    }
    rank = std::max(rank, v->dims.size());
  }
  std::vector<int64_t> out(rank, 1);
  for (size_t i = 0; i < rank; ++i) {
    int64_t d = 1;
    bool unknown = false;
    for (const Value* v : in) {
      const int64_t off = static_cast<int64_t>(rank) - static_cast<int64_t>(v->dims.size());
      if (static_cast<int64_t>(i) < off) continue;
      const int64_t x = v->dims[i - off];
      if (x < 0) {
        unknown = true;
      } else if (x != 1) {
        d = x;
      }
    }
    // An unknown dim next to a known d > 1 broadcasts to d (or the model is invalid).
    out[i] = unknown && d == 1 ? -1 : d;
  }
  ok = true;
  return out;
}

// Index of element `flat` of `out_dims` in a broadcast input of `dims`.
int64_t broadcast_index(int64_t flat, const std::vector<int64_t>& out_dims, const std::vector<int64_t>& dims) {
  int64_t index = 0, stride = 1;
  const int64_t off = static_cast<int64_t>(out_dims.size()) - static_cast<int64_t>(dims.size());
  for (int64_t i = static_cast<int64_t>(out_dims.size()) - 1; i >= 0; --i) {
    const int64_t coord = flat % out_dims[i];
    flat /= out_dims[i];
    if (i >= off) {
      const int64_t d = dims[i - off];
      index += (d == 1 ? 0 : coord) * stride;
      stride *= d;
    }
  }
  return index;
}

std::vector<int64_t> strides_of(const std::vector<int64_t>& dims) {
  std::vector<int64_t> strides(dims.size(), 1);
  for (int64_t i = static_cast<int64_t>(dims.size()) - 2; i >= 0; --i) strides[i] = strides[i + 1] * dims[i + 1];
  return strides;
}

int64_t normalize_axis(int64_t axis, int64_t rank) { return axis < 0 ? axis + rank : axis; }

double elementwise(const std::string& op, double a, double b, bool integer) {
  if (op == "Add") return a + b;
  if (op == "Sub") return a - b;
  if (op == "Mul") return a * b;
  if (op == "Div") return integer ? (b == 0 ? 0 : std::trunc(a / b)) : a / b;
  if (op == "Pow") return std::pow(a, b);
  if (op == "Max") return std::max(a, b);
  if (op == "Min") return std::min(a, b);
  if (op == "Mod") return b == 0 ? 0 : a - b * std::floor(a / b);
  if (op == "Equal") return a == b;
  if (op == "Less") return a < b;
  if (op == "Greater") return a > b;
  if (op == "LessOrEqual") return a <= b;
  if (op == "GreaterOrEqual") return a >= b;
  if (op == "And") return a != 0 && b != 0;
  if (op == "Or") return a != 0 || b != 0;
  return std::numeric_limits<double>::quiet_NaN();
}

const std::set<std::string> kBinary = {"Add", "Sub", "Mul", "Div", "Pow", "Max", "Min", "Mod", "Equal",
                                       "Less", "Greater", "LessOrEqual", "GreaterOrEqual", "And", "Or",
                                       "Xor", "PRelu", "BitShift", "Sum", "Mean", "BitwiseAnd",
                                       "BitwiseOr", "BitwiseXor"};
const std::set<std::string> kComparisons = {"Equal", "Less", "Greater", "LessOrEqual", "GreaterOrEqual",
                                            "And", "Or", "Xor", "Not"};
// Output 0 has input 0's shape (and dtype unless noted in infer_node).
const std::set<std::string> kSameShape = {
    "Identity", "Relu", "LeakyRelu", "Sigmoid", "HardSigmoid", "HardSwish", "Tanh", "Softmax", "LogSoftmax",
    "Hardmax", "Clip", "Abs", "Neg", "Exp", "Log", "Sqrt", "Reciprocal", "Floor", "Ceil", "Round", "Sign",
    "Erf", "Sin", "Cos", "Tan", "Asin", "Acos", "Atan", "Sinh", "Cosh", "Asinh", "Acosh", "Atanh", "Elu",
    "Selu", "Celu", "Softplus", "Softsign", "ThresholdedRelu", "Gelu", "Mish", "Not", "IsNaN", "IsInf",
    "BatchNormalization", "InstanceNormalization", "LayerNormalization", "GroupNormalization", "LRN",
    "Dropout", "Cast", "CastLike", "CumSum", "Shrink", "MeanVarianceNormalization", "QuantizeLinear",
    "DequantizeLinear", "FastGelu", "BiasGelu", "QuickGelu", "SkipLayerNormalization", "BitwiseNot",
    "ReverseSequence", "Trilu", "LpNormalization", "DynamicQuantizeLinear", "ScatterND", "ScatterElements",
    "Scatter"};
const std::set<std::string> kReduce = {"ReduceMean", "ReduceSum", "ReduceMax", "ReduceMin", "ReduceProd",
                                       "ReduceL1", "ReduceL2", "ReduceLogSum", "ReduceLogSumExp",
                                       "ReduceSumSquare"};

class Propagator {
 public:
  explicit Propagator(ShapeAnalysis& result) : result_(result) {}

  // Propagates through `g` (whose inputs are already in `scope` when it is a subgraph) and writes
  // what it found to g's value_info and outputs. Returns the values of g's outputs.
  std::vector<Value> run_graph(onnx::GraphProto& g, Scope& scope) {
    std::unordered_map<std::string, Value> inferred;  // what ONNX wrote
    for (const auto& v : g.value_info()) inferred[v.name()] = from_type(v.type());
    for (const auto& v : g.output()) inferred[v.name()] = from_type(v.type());
    for (const auto& v : g.input())
      if (!scope.values.count(v.name())) scope.values[v.name()] = from_type(v.type());
    for (const auto& t : g.initializer()) scope.values[t.name()] = from_tensor(t);
    for (const auto& sp : g.sparse_initializer())
      scope.values[sp.values().name()] = ranked_value(sp.values().data_type(), {sp.dims().begin(), sp.dims().end()});

    for (auto& node : *g.mutable_node()) {
      std::vector<Value> outs = infer_node(node, scope);
      outs.resize(node.output_size());
      for (int i = 0; i < node.output_size(); ++i) {
        const std::string& name = node.output(i);
        if (name.empty()) continue;
        Value v = std::move(outs[i]);
        auto it = inferred.find(name);
        if (it != inferred.end()) {
          const Value& theirs = it->second;
          if (theirs.full() || (!v.ranked && theirs.ranked)) {
            const bool keep = v.has_values && theirs.full() && v.full() && v.dims == theirs.dims;
            std::vector<double> values = std::move(v.values);
            v = theirs;
            if (keep) {
              v.has_values = true;
              v.values = std::move(values);
            }
          } else if (v.ranked && theirs.ranked && v.dims.size() == theirs.dims.size()) {
            for (size_t d = 0; d < v.dims.size(); ++d)
              if (v.dims[d] < 0) v.dims[d] = theirs.dims[d];
          }
          if (!v.dtype) v.dtype = theirs.dtype;
        }
        scope.values[name] = std::move(v);
      }
    }
    write_back(g, scope);
    std::vector<Value> outputs;
    for (const auto& o : g.output()) {
      const Value* v = scope.find(o.name());
      outputs.push_back(v ? *v : Value{});
    }
    return outputs;
  }

 private:
  static void set_type(onnx::TypeProto& type, const Value& v) {
    auto* tensor = type.mutable_tensor_type();
    if (v.dtype) tensor->set_elem_type(v.dtype);
    auto* shape = tensor->mutable_shape();
    shape->clear_dim();
    for (int64_t d : v.dims) {
      auto* dim = shape->add_dim();
      if (d >= 0) dim->set_dim_value(d);
    }
  }

  // Replaces value_info with everything known (ranked values only) and fills in graph outputs.
  void write_back(onnx::GraphProto& g, const Scope& scope) {
    std::set<std::string> outputs, inputs;
    for (const auto& o : g.output()) outputs.insert(o.name());
    for (const auto& i : g.input()) inputs.insert(i.name());
    std::unordered_map<std::string, onnx::ValueInfoProto> kept;
    std::vector<std::string> order;
    for (const auto& v : g.value_info()) {
      if (!kept.count(v.name())) order.push_back(v.name());
      kept[v.name()] = v;
    }
    for (const auto& n : g.node())
      for (const auto& name : n.output()) {
        if (name.empty() || outputs.count(name) || inputs.count(name)) continue;
        auto it = scope.values.find(name);
        if (it == scope.values.end() || !it->second.ranked || !it->second.dtype) continue;
        if (!kept.count(name)) order.push_back(name);
        auto& info = kept[name];
        info.set_name(name);
        set_type(*info.mutable_type(), it->second);
      }
    g.clear_value_info();
    for (const auto& name : order) *g.add_value_info() = kept[name];
    // Subgraph inputs (Loop/Scan state, slices) get the shapes their node feeds them.
    for (auto& in : *g.mutable_input()) {
      auto it = scope.values.find(in.name());
      if (it == scope.values.end() || !it->second.ranked || !in.type().has_tensor_type()) continue;
      const Value before = from_type(in.type());
      if (before.full()) continue;
      Value v = it->second;
      if (!v.dtype) v.dtype = before.dtype;
      if (v.dtype) set_type(*in.mutable_type(), v);
    }
    for (auto& o : *g.mutable_output()) {
      auto it = scope.values.find(o.name());
      if (it == scope.values.end() || !it->second.ranked) continue;
      const Value before = from_type(o.type());
      if (before.full()) continue;
      Value v = it->second;
      if (!v.dtype) v.dtype = before.dtype;
      if (v.dtype) set_type(*o.mutable_type(), v);
    }
  }

  static const Value* input(const onnx::NodeProto& n, const Scope& s, int i) {
    if (i >= n.input_size() || n.input(i).empty()) return nullptr;
    return s.find(n.input(i));
  }
  static const std::vector<double>* input_values(const onnx::NodeProto& n, const Scope& s, int i) {
    const Value* v = input(n, s, i);
    return v && v->has_values ? &v->values : nullptr;
  }
  static std::vector<int64_t> as_ints(const std::vector<double>& values) {
    std::vector<int64_t> out;
    for (double x : values) out.push_back(to_int(x));
    return out;
  }

  std::vector<Value> infer_node(onnx::NodeProto& n, Scope& s) {
    const std::string& op = n.op_type();
    const Value* a = input(n, s, 0);
    const int32_t a_dtype = a ? a->dtype : 0;

    if (op == "Constant") {
      for (const auto& attr : n.attribute()) {
        if (attr.name() == "value" && attr.has_t()) return {from_tensor(attr.t())};
        if (attr.name() == "value_int") return {with_values(TP::INT64, {}, {static_cast<double>(attr.i())})};
        if (attr.name() == "value_float") return {with_values(TP::FLOAT, {}, {attr.f()})};
        if (attr.name() == "value_ints") {
          std::vector<double> v(attr.ints().begin(), attr.ints().end());
          return {with_values(TP::INT64, {static_cast<int64_t>(v.size())}, v)};
        }
        if (attr.name() == "value_floats") {
          std::vector<double> v(attr.floats().begin(), attr.floats().end());
          return {with_values(TP::FLOAT, {static_cast<int64_t>(v.size())}, v)};
        }
      }
      return {};
    }
    if (op == "If" || op == "Loop" || op == "Scan") return infer_control(n, s);
    if (kSameShape.count(op)) return same_shape(n, s, op);
    if (kBinary.count(op) || op == "Where") return infer_broadcast(n, s, op);
    if (op == "Shape") {
      if (!a || !a->ranked) return {};
      const int64_t rank = static_cast<int64_t>(a->dims.size());
      int64_t start = std::clamp(normalize_axis(int_attribute(n, "start", 0), rank), int64_t{0}, rank);
      int64_t end = std::clamp(normalize_axis(int_attribute(n, "end", rank), rank), int64_t{0}, rank);
      end = std::max(end, start);
      Value v = ranked_value(TP::INT64, {end - start});
      std::vector<int64_t> dims(a->dims.begin() + start, a->dims.begin() + end);
      if (std::all_of(dims.begin(), dims.end(), [](int64_t d) { return d >= 0; })) {
        v.has_values = true;
        v.values.assign(dims.begin(), dims.end());
      }
      return {v};
    }
    if (op == "Size") {
      Value v = ranked_value(TP::INT64, {});
      if (a && a->full() && a->elements() < std::numeric_limits<int64_t>::max()) {
        v.has_values = true;
        v.values = {static_cast<double>(a->elements())};
      }
      return {v};
    }
    if (op == "Conv" || op == "ConvInteger" || op == "QLinearConv" || op == "MaxPool" || op == "AveragePool" ||
        op == "LpPool")
      return infer_conv_pool(n, s, op);
    if (op == "ConvTranspose") return infer_conv_transpose(n, s);
    if (op == "GlobalAveragePool" || op == "GlobalMaxPool" || op == "GlobalLpPool") {
      if (!a || !a->ranked || a->dims.size() < 2) return {};
      std::vector<int64_t> dims(a->dims.size(), 1);
      dims[0] = a->dims[0];
      dims[1] = a->dims[1];
      return {ranked_value(a_dtype, dims)};
    }
    if (op == "MatMul" || op == "MatMulInteger" || op == "QLinearMatMul" || op == "FusedMatMul")
      return infer_matmul(n, s, op);
    if (op == "MatMulNBits") {
      if (!a || !a->ranked || a->dims.empty()) return {};
      std::vector<int64_t> dims = a->dims;
      dims.back() = int_attribute(n, "N", -1);
      return {ranked_value(a_dtype, dims)};
    }
    if (op == "Gemm") {
      const Value* b = input(n, s, 1);
      if (!a || !b || !a->ranked || !b->ranked || a->dims.size() != 2 || b->dims.size() != 2) return {};
      const int64_t m = int_attribute(n, "transA", 0) ? a->dims[1] : a->dims[0];
      const int64_t cols = int_attribute(n, "transB", 0) ? b->dims[0] : b->dims[1];
      return {ranked_value(a_dtype, {m, cols})};
    }
    if (op == "Transpose") {
      if (!a || !a->ranked) return {};
      std::vector<int64_t> perm = ints_attribute(n, "perm");
      if (perm.empty())
        for (int64_t i = static_cast<int64_t>(a->dims.size()) - 1; i >= 0; --i) perm.push_back(i);
      if (perm.size() != a->dims.size()) return {};
      std::vector<int64_t> dims;
      for (int64_t& p : perm) {
        p = normalize_axis(p, static_cast<int64_t>(perm.size()));
        if (p < 0 || p >= static_cast<int64_t>(perm.size())) return {};
        dims.push_back(a->dims[p]);
      }
      Value out = ranked_value(a_dtype, dims);
      if (a->has_values && a->full()) {
        out.has_values = true;
        const auto in_strides = strides_of(a->dims);
        for (int64_t i = 0; i < out.elements(); ++i) {
          int64_t rest = i, at = 0;
          for (int64_t d = static_cast<int64_t>(dims.size()) - 1; d >= 0; --d) {
            at += (rest % dims[d]) * in_strides[perm[d]];
            rest /= dims[d];
          }
          out.values.push_back(a->values[at]);
        }
      }
      return {out};
    }
    if (op == "Flatten") {
      if (!a || !a->ranked) return {};
      const int64_t rank = static_cast<int64_t>(a->dims.size());
      const int64_t axis = normalize_axis(int_attribute(n, "axis", 1), rank);
      int64_t left = 1, right = 1;
      for (int64_t i = 0; i < rank; ++i) {
        int64_t& side = i < axis ? left : right;
        side = (side < 0 || a->dims[i] < 0) ? -1 : side * a->dims[i];
      }
      return {keep_values(a, ranked_value(a_dtype, {left, right}))};
    }
    if (op == "Reshape") return infer_reshape(n, s);
    if (op == "Squeeze" || op == "Unsqueeze") return infer_squeeze(n, s, op);
    if (op == "Concat") return infer_concat(n, s);
    if (op == "Gather") return infer_gather(n, s);
    if (op == "GatherElements") {
      const Value* idx = input(n, s, 1);
      if (!idx || !idx->ranked) return {};
      return {ranked_value(a_dtype, idx->dims)};
    }
    if (op == "Slice") return infer_slice(n, s);
    if (op == "Split") return infer_split(n, s);
    if (op == "Expand") {
      const auto* shape = input_values(n, s, 1);
      if (!a || !a->ranked || !shape) return {};
      Value target = ranked_value(a_dtype, as_ints(*shape));
      bool ok = false;
      auto dims = broadcast({a, &target}, ok);
      if (!ok) return {};
      return {ranked_value(a_dtype, dims)};
    }
    if (op == "Tile") {
      const auto* repeats = input_values(n, s, 1);
      if (!a || !a->ranked || !repeats || repeats->size() != a->dims.size()) return {};
      std::vector<int64_t> dims = a->dims;
      for (size_t i = 0; i < dims.size(); ++i) dims[i] = dims[i] < 0 ? -1 : dims[i] * to_int((*repeats)[i]);
      return {ranked_value(a_dtype, dims)};
    }
    if (op == "Range") {
      const auto *start = input_values(n, s, 0), *limit = input_values(n, s, 1), *delta = input_values(n, s, 2);
      if (!start || !limit || !delta || start->empty() || limit->empty() || delta->empty() || (*delta)[0] == 0)
        return {ranked_value(a_dtype, {-1})};
      const int64_t count =
          std::max<int64_t>(0, static_cast<int64_t>(std::ceil(((*limit)[0] - (*start)[0]) / (*delta)[0])));
      Value v = ranked_value(a_dtype, {count});
      if (count <= kMaxTrackedElements) {
        v.has_values = true;
        for (int64_t i = 0; i < count; ++i) v.values.push_back((*start)[0] + i * (*delta)[0]);
      }
      return {v};
    }
    if (op == "ConstantOfShape") {
      const auto* shape = input_values(n, s, 0);
      int32_t dtype = TP::FLOAT;
      double fill = 0;
      if (const auto* attr = find_attribute(n, "value"); attr && attr->has_t()) {
        const Value value = from_tensor(attr->t());
        dtype = value.dtype;
        if (value.has_values && !value.values.empty()) fill = value.values[0];
      }
      if (!shape) {
        const Value* shape_in = input(n, s, 0);
        if (shape_in && shape_in->full() && shape_in->dims.size() == 1)
          return {ranked_value(dtype, std::vector<int64_t>(shape_in->dims[0], -1))};
        return {};
      }
      Value v = ranked_value(dtype, as_ints(*shape));
      if (v.full() && v.elements() <= kMaxTrackedElements) {
        v.has_values = true;
        v.values.assign(static_cast<size_t>(v.elements()), fill);
      }
      return {v};
    }
    if (op == "Pad") {
      std::vector<int64_t> pads = ints_attribute(n, "pads");
      if (pads.empty()) {
        const auto* p = input_values(n, s, 1);
        if (!p) return a && a->ranked ? std::vector<Value>{ranked_value(a_dtype, std::vector<int64_t>(a->dims.size(), -1))}
                                      : std::vector<Value>{};
        pads = as_ints(*p);
      }
      if (!a || !a->ranked) return {};
      const size_t rank = a->dims.size();
      std::vector<int64_t> axes;
      if (const auto* ax = input_values(n, s, 3)) {
        axes = as_ints(*ax);
      } else {
        for (size_t i = 0; i < rank; ++i) axes.push_back(static_cast<int64_t>(i));
      }
      if (pads.size() != 2 * axes.size()) return {};
      std::vector<int64_t> dims = a->dims;
      for (size_t i = 0; i < axes.size(); ++i) {
        const int64_t ax = normalize_axis(axes[i], static_cast<int64_t>(rank));
        if (ax < 0 || ax >= static_cast<int64_t>(rank)) return {};
        if (dims[ax] >= 0) dims[ax] += pads[i] + pads[i + axes.size()];
      }
      return {ranked_value(a_dtype, dims)};
    }
    if (op == "Resize" || op == "Upsample") return infer_resize(n, s, op);
    if (kReduce.count(op) || op == "ArgMax" || op == "ArgMin") return infer_reduce(n, s, op);
    if (op == "TopK") {
      const auto* k = input_values(n, s, 1);
      if (!a || !a->ranked) return {};
      std::vector<int64_t> dims = a->dims;
      const int64_t axis = normalize_axis(int_attribute(n, "axis", -1), static_cast<int64_t>(dims.size()));
      if (axis < 0 || axis >= static_cast<int64_t>(dims.size())) return {};
      dims[axis] = k && !k->empty() ? to_int((*k)[0]) : int_attribute(n, "k", -1);
      return {ranked_value(a_dtype, dims), ranked_value(TP::INT64, dims)};
    }
    if (op == "LSTM" || op == "GRU" || op == "RNN") {
      if (!a || !a->ranked || a->dims.size() != 3) return {};
      const int64_t hidden = int_attribute(n, "hidden_size", -1);
      const int64_t dirs = string_attribute(n, "direction", "forward") == "bidirectional" ? 2 : 1;
      const bool batch_first = int_attribute(n, "layout", 0) == 1;
      const int64_t steps = batch_first ? a->dims[1] : a->dims[0];
      const int64_t batch = batch_first ? a->dims[0] : a->dims[1];
      Value y = ranked_value(a_dtype, batch_first ? std::vector<int64_t>{batch, steps, dirs, hidden}
                                                  : std::vector<int64_t>{steps, dirs, batch, hidden});
      Value state = ranked_value(a_dtype, batch_first ? std::vector<int64_t>{batch, dirs, hidden}
                                                      : std::vector<int64_t>{dirs, batch, hidden});
      return {y, state, state};
    }
    if (op == "DepthToSpace" || op == "SpaceToDepth") {
      if (!a || !a->ranked || a->dims.size() != 4) return {};
      const int64_t b = int_attribute(n, "blocksize", 1);
      std::vector<int64_t> d = a->dims;
      auto scale = [](int64_t x, int64_t m, bool up) { return x < 0 ? -1 : up ? x * m : x / m; };
      const bool up = op == "DepthToSpace";
      return {ranked_value(a_dtype, {d[0], scale(d[1], b * b, !up), scale(d[2], b, up), scale(d[3], b, up)})};
    }
    if (op == "EyeLike") return {a && a->ranked ? ranked_value(a_dtype, a->dims) : Value{}};
    return {};
  }

  // Keeps a tensor's values when it only changes layout (Flatten, Reshape, Squeeze, ...).
  static Value keep_values(const Value* from, Value v) {
    if (from && from->has_values && v.full() && v.elements() == static_cast<int64_t>(from->values.size())) {
      v.has_values = true;
      v.values = from->values;
    }
    return v;
  }

  std::vector<Value> same_shape(const onnx::NodeProto& n, const Scope& s, const std::string& op) {
    const Value* a = input(n, s, 0);
    if (!a || !a->ranked) return {};
    int32_t dtype = a->dtype;
    if (op == "Cast") dtype = static_cast<int32_t>(int_attribute(n, "to", 0));
    if (op == "CastLike") dtype = input(n, s, 1) ? input(n, s, 1)->dtype : 0;
    if (kComparisons.count(op) || op == "IsNaN" || op == "IsInf") dtype = TP::BOOL;
    if (op == "QuantizeLinear") {
      const Value* zp = input(n, s, 2);
      dtype = zp && zp->dtype ? zp->dtype : TP::UINT8;
    }
    if (op == "DequantizeLinear") {
      const Value* scale = input(n, s, 1);
      dtype = scale && scale->dtype ? scale->dtype : TP::FLOAT;
    }
    if (op == "DynamicQuantizeLinear")
      return {ranked_value(TP::UINT8, a->dims), ranked_value(TP::FLOAT, {}), ranked_value(TP::UINT8, {})};
    Value v = ranked_value(dtype, a->dims);
    if (a->has_values) {
      auto unary = [&](double x) -> double {
        if (op == "Cast" || op == "CastLike") return is_integer_dtype(dtype) ? std::trunc(x) : x;
        if (op == "Identity") return x;
        if (op == "Neg") return -x;
        if (op == "Abs") return std::abs(x);
        if (op == "Floor") return std::floor(x);
        if (op == "Ceil") return std::ceil(x);
        if (op == "Sqrt") return std::sqrt(x);
        if (op == "Relu") return std::max(0.0, x);
        if (op == "Not") return x == 0;
        return std::numeric_limits<double>::quiet_NaN();
      };
      v.has_values = true;
      for (double x : a->values) {
        const double y = unary(x);
        if (std::isnan(y)) {
          v.has_values = false;
          v.values.clear();
          break;
        }
        v.values.push_back(y);
      }
    }
    std::vector<Value> outs{v};
    if (op == "Dropout") outs.push_back(ranked_value(TP::BOOL, a->dims));
    return outs;
  }

  std::vector<Value> infer_broadcast(const onnx::NodeProto& n, const Scope& s, const std::string& op) {
    std::vector<const Value*> ins;
    for (int i = 0; i < n.input_size(); ++i) ins.push_back(input(n, s, i));
    bool ok = false;
    const auto dims = broadcast(ins, ok);
    if (!ok) return {};
    int32_t dtype = ins[0]->dtype;
    if (op == "Where") dtype = ins.size() > 1 ? ins[1]->dtype : 0;
    if (kComparisons.count(op)) dtype = TP::BOOL;
    Value v = ranked_value(dtype, dims);
    const bool all_values = std::all_of(ins.begin(), ins.end(), [](const Value* x) { return x->has_values; });
    if (all_values && v.full() && v.elements() <= kMaxTrackedElements) {
      const bool integer = is_integer_dtype(ins[0]->dtype);
      v.has_values = true;
      for (int64_t i = 0; i < v.elements(); ++i) {
        auto at = [&](size_t k) { return ins[k]->values[broadcast_index(i, dims, ins[k]->dims)]; };
        double y;
        if (op == "Where") {
          y = at(0) != 0 ? at(1) : at(2);
        } else if (ins.size() == 2) {
          y = elementwise(op, at(0), at(1), integer);
        } else {
          y = std::numeric_limits<double>::quiet_NaN();
        }
        if (std::isnan(y)) {
          v.has_values = false;
          v.values.clear();
          break;
        }
        v.values.push_back(y);
      }
    }
    return {v};
  }

  static int64_t window_output(int64_t in, int64_t k, int64_t stride, int64_t dilation, int64_t pad_sum,
                               const std::string& auto_pad, bool ceil_mode) {
    if (in < 0 || k < 0) return -1;
    if (auto_pad == "SAME_UPPER" || auto_pad == "SAME_LOWER") return (in + stride - 1) / stride;
    const int64_t span = (k - 1) * dilation + 1;
    if (auto_pad == "VALID") return (in - span) / stride + 1;
    const int64_t num = in + pad_sum - span;
    if (num < 0) return -1;
    return (ceil_mode ? (num + stride - 1) / stride : num / stride) + 1;
  }

  std::vector<Value> infer_conv_pool(const onnx::NodeProto& n, const Scope& s, const std::string& op) {
    const Value* a = input(n, s, 0);
    if (!a || !a->ranked || a->dims.size() < 3) return {};
    const size_t spatial = a->dims.size() - 2;
    const bool conv = op == "Conv" || op == "ConvInteger" || op == "QLinearConv";
    const Value* w = conv ? input(n, s, op == "QLinearConv" ? 3 : 1) : nullptr;
    std::vector<int64_t> kernel = ints_attribute(n, "kernel_shape");
    if (kernel.empty() && w && w->ranked && w->dims.size() == a->dims.size())
      kernel.assign(w->dims.begin() + 2, w->dims.end());
    if (kernel.size() != spatial) return {};
    const auto strides = ints_attribute(n, "strides", std::vector<int64_t>(spatial, 1));
    const auto dilations = ints_attribute(n, "dilations", std::vector<int64_t>(spatial, 1));
    const auto pads = ints_attribute(n, "pads", std::vector<int64_t>(2 * spatial, 0));
    if (strides.size() != spatial || dilations.size() != spatial || pads.size() != 2 * spatial) return {};
    const std::string auto_pad = string_attribute(n, "auto_pad", "NOTSET");
    const bool ceil_mode = int_attribute(n, "ceil_mode", 0) != 0;
    std::vector<int64_t> dims{a->dims[0], conv ? (w && w->ranked && !w->dims.empty() ? w->dims[0] : -1) : a->dims[1]};
    for (size_t i = 0; i < spatial; ++i)
      dims.push_back(window_output(a->dims[2 + i], kernel[i], strides[i], dilations[i], pads[i] + pads[i + spatial],
                                   auto_pad, ceil_mode));
    int32_t dtype = a->dtype;
    if (op == "ConvInteger") dtype = TP::INT32;
    if (op == "QLinearConv") dtype = input(n, s, 7) ? input(n, s, 7)->dtype : a->dtype;
    std::vector<Value> outs{ranked_value(dtype, dims)};
    if (op == "MaxPool") outs.push_back(ranked_value(TP::INT64, dims));
    return outs;
  }

  std::vector<Value> infer_conv_transpose(const onnx::NodeProto& n, const Scope& s) {
    const Value* a = input(n, s, 0);
    const Value* w = input(n, s, 1);
    if (!a || !w || !a->ranked || !w->ranked || a->dims.size() < 3 || w->dims.size() != a->dims.size()) return {};
    const size_t spatial = a->dims.size() - 2;
    const int64_t group = int_attribute(n, "group", 1);
    std::vector<int64_t> dims{a->dims[0], w->dims[1] < 0 ? -1 : w->dims[1] * group};
    const auto output_shape = ints_attribute(n, "output_shape");
    if (output_shape.size() == spatial) {
      dims.insert(dims.end(), output_shape.begin(), output_shape.end());
      return {ranked_value(a->dtype, dims)};
    }
    std::vector<int64_t> kernel = ints_attribute(n, "kernel_shape");
    if (kernel.empty()) kernel.assign(w->dims.begin() + 2, w->dims.end());
    const auto strides = ints_attribute(n, "strides", std::vector<int64_t>(spatial, 1));
    const auto dilations = ints_attribute(n, "dilations", std::vector<int64_t>(spatial, 1));
    const auto pads = ints_attribute(n, "pads", std::vector<int64_t>(2 * spatial, 0));
    const auto out_pad = ints_attribute(n, "output_padding", std::vector<int64_t>(spatial, 0));
    const std::string auto_pad = string_attribute(n, "auto_pad", "NOTSET");
    if (kernel.size() != spatial || strides.size() != spatial || dilations.size() != spatial ||
        pads.size() != 2 * spatial || out_pad.size() != spatial)
      return {};
    for (size_t i = 0; i < spatial; ++i) {
      const int64_t in = a->dims[2 + i];
      if (in < 0 || kernel[i] < 0) {
        dims.push_back(-1);
      } else if (auto_pad == "SAME_UPPER" || auto_pad == "SAME_LOWER") {
        dims.push_back(in * strides[i]);
      } else {
        dims.push_back(strides[i] * (in - 1) + out_pad[i] + (kernel[i] - 1) * dilations[i] + 1 - pads[i] -
                       pads[i + spatial]);
      }
    }
    return {ranked_value(a->dtype, dims)};
  }

  std::vector<Value> infer_matmul(const onnx::NodeProto& n, const Scope& s, const std::string& op) {
    const Value* a = input(n, s, 0);
    const Value* b = input(n, s, op == "QLinearMatMul" ? 3 : 1);
    if (!a || !b || !a->ranked || !b->ranked || a->dims.empty() || b->dims.empty()) return {};
    std::vector<int64_t> ad = a->dims, bd = b->dims;
    const bool a_vec = ad.size() == 1, b_vec = bd.size() == 1;
    if (a_vec) ad.insert(ad.begin(), 1);
    if (b_vec) bd.push_back(1);
    if (op == "FusedMatMul") {
      if (int_attribute(n, "transA", 0)) std::swap(ad[ad.size() - 1], ad[ad.size() - 2]);
      if (int_attribute(n, "transB", 0)) std::swap(bd[bd.size() - 1], bd[bd.size() - 2]);
    }
    const Value batch_a = ranked_value(0, {ad.begin(), ad.end() - 2});
    const Value batch_b = ranked_value(0, {bd.begin(), bd.end() - 2});
    bool ok = false;
    std::vector<int64_t> dims = broadcast({&batch_a, &batch_b}, ok);
    if (!ok) return {};
    if (!a_vec) dims.push_back(ad[ad.size() - 2]);
    if (!b_vec) dims.push_back(bd.back());
    int32_t dtype = a->dtype;
    if (op == "MatMulInteger") dtype = TP::INT32;
    if (op == "QLinearMatMul") dtype = input(n, s, 7) ? input(n, s, 7)->dtype : a->dtype;
    return {ranked_value(dtype, dims)};
  }

  std::vector<Value> infer_reshape(const onnx::NodeProto& n, const Scope& s) {
    const Value* a = input(n, s, 0);
    std::vector<int64_t> shape = ints_attribute(n, "shape");  // opset 1-4 form
    if (shape.empty()) {
      const auto* values = input_values(n, s, 1);
      if (!values) {
        const Value* shape_in = input(n, s, 1);
        if (a && shape_in && shape_in->full() && shape_in->dims.size() == 1)
          return {ranked_value(a->dtype, std::vector<int64_t>(shape_in->dims[0], -1))};
        return {};
      }
      shape = as_ints(*values);
    }
    if (!a) return {};
    const bool allowzero = int_attribute(n, "allowzero", 0) != 0;
    std::vector<int64_t> dims = shape;
    int infer_at = -1;
    for (size_t i = 0; i < dims.size(); ++i) {
      if (dims[i] == 0 && !allowzero) dims[i] = a->ranked && i < a->dims.size() ? a->dims[i] : -1;
      if (shape[i] == -1) infer_at = static_cast<int>(i);
    }
    if (infer_at >= 0) {
      dims[infer_at] = -1;
      int64_t known = 1;
      bool ok = a->full();
      for (size_t i = 0; i < dims.size(); ++i)
        if (static_cast<int>(i) != infer_at) {
          if (dims[i] < 0) ok = false;
          known *= std::max<int64_t>(dims[i], 1);
        }
      if (ok && known > 0) dims[infer_at] = a->elements() / known;
    }
    return {keep_values(a, ranked_value(a->dtype, dims))};
  }

  std::vector<Value> infer_squeeze(const onnx::NodeProto& n, const Scope& s, const std::string& op) {
    const Value* a = input(n, s, 0);
    if (!a || !a->ranked) return {};
    std::vector<int64_t> axes = ints_attribute(n, "axes");
    const bool from_input = !find_attribute(n, "axes") && n.input_size() > 1 && !n.input(1).empty();
    if (from_input) {
      const auto* values = input_values(n, s, 1);
      if (!values) return {};
      axes = as_ints(*values);
    }
    std::vector<int64_t> dims;
    if (op == "Squeeze") {
      const int64_t rank = static_cast<int64_t>(a->dims.size());
      std::set<int64_t> drop;
      for (int64_t ax : axes) drop.insert(normalize_axis(ax, rank));
      for (int64_t i = 0; i < rank; ++i) {
        if (axes.empty() ? a->dims[i] == 1 : drop.count(i) > 0) continue;
        if (axes.empty() && a->dims[i] < 0) return {};  // might be a 1 that should go
        dims.push_back(a->dims[i]);
      }
    } else {
      const int64_t rank = static_cast<int64_t>(a->dims.size() + axes.size());
      std::set<int64_t> add;
      for (int64_t ax : axes) add.insert(normalize_axis(ax, rank));
      size_t next = 0;
      for (int64_t i = 0; i < rank; ++i) dims.push_back(add.count(i) ? 1 : (next < a->dims.size() ? a->dims[next++] : -1));
    }
    return {keep_values(a, ranked_value(a->dtype, dims))};
  }

  std::vector<Value> infer_concat(const onnx::NodeProto& n, const Scope& s) {
    std::vector<const Value*> ins;
    for (int i = 0; i < n.input_size(); ++i) {
      const Value* v = input(n, s, i);
      if (!v || !v->ranked) return {};
      ins.push_back(v);
    }
    if (ins.empty()) return {};
    const int64_t rank = static_cast<int64_t>(ins[0]->dims.size());
    const int64_t axis = normalize_axis(int_attribute(n, "axis", 0), rank);
    if (axis < 0 || axis >= rank) return {};
    std::vector<int64_t> dims = ins[0]->dims;
    dims[axis] = 0;
    for (const Value* v : ins) {
      if (static_cast<int64_t>(v->dims.size()) != rank) return {};
      for (int64_t d = 0; d < rank; ++d) {
        if (d == axis) {
          dims[d] = dims[d] < 0 || v->dims[d] < 0 ? -1 : dims[d] + v->dims[d];
        } else if (dims[d] < 0) {
          dims[d] = v->dims[d];
        }
      }
    }
    Value out = ranked_value(ins[0]->dtype, dims);
    const bool all_values = std::all_of(ins.begin(), ins.end(), [](const Value* v) { return v->has_values; });
    if (rank == 1 && all_values) {
      out.has_values = true;
      for (const Value* v : ins) out.values.insert(out.values.end(), v->values.begin(), v->values.end());
    }
    return {out};
  }

  std::vector<Value> infer_gather(const onnx::NodeProto& n, const Scope& s) {
    const Value* a = input(n, s, 0);
    const Value* idx = input(n, s, 1);
    if (!a || !idx || !a->ranked || !idx->ranked || a->dims.empty()) return {};
    const int64_t rank = static_cast<int64_t>(a->dims.size());
    const int64_t axis = normalize_axis(int_attribute(n, "axis", 0), rank);
    if (axis < 0 || axis >= rank) return {};
    std::vector<int64_t> dims(a->dims.begin(), a->dims.begin() + axis);
    dims.insert(dims.end(), idx->dims.begin(), idx->dims.end());
    dims.insert(dims.end(), a->dims.begin() + axis + 1, a->dims.end());
    Value out = ranked_value(a->dtype, dims);
    if (rank == 1 && a->has_values && idx->has_values) {
      out.has_values = true;
      const int64_t size = static_cast<int64_t>(a->values.size());
      for (double i : idx->values) {
        int64_t k = to_int(i);
        if (k < 0) k += size;
        if (k < 0 || k >= size) return {out};
        out.values.push_back(a->values[k]);
      }
    }
    if (out.has_values && static_cast<int64_t>(out.values.size()) != std::max<int64_t>(out.elements(), 0)) {
      out.has_values = false;
      out.values.clear();
    }
    return {out};
  }

  std::vector<Value> infer_slice(const onnx::NodeProto& n, const Scope& s) {
    const Value* a = input(n, s, 0);
    if (!a || !a->ranked) return {};
    const int64_t rank = static_cast<int64_t>(a->dims.size());
    std::vector<int64_t> starts, ends, axes, steps;
    if (find_attribute(n, "starts")) {  // opset 1-9
      starts = ints_attribute(n, "starts");
      ends = ints_attribute(n, "ends");
      axes = ints_attribute(n, "axes");
    } else {
      const auto *st = input_values(n, s, 1), *en = input_values(n, s, 2);
      if (!st || !en) return {ranked_value(a->dtype, std::vector<int64_t>(rank, -1))};
      starts = as_ints(*st);
      ends = as_ints(*en);
      if (n.input_size() > 3 && !n.input(3).empty()) {
        const auto* ax = input_values(n, s, 3);
        if (!ax) return {ranked_value(a->dtype, std::vector<int64_t>(rank, -1))};
        axes = as_ints(*ax);
      }
      if (n.input_size() > 4 && !n.input(4).empty()) {
        const auto* sp = input_values(n, s, 4);
        if (!sp) return {ranked_value(a->dtype, std::vector<int64_t>(rank, -1))};
        steps = as_ints(*sp);
      }
    }
    if (axes.empty())
      for (size_t i = 0; i < starts.size(); ++i) axes.push_back(static_cast<int64_t>(i));
    if (steps.empty()) steps.assign(starts.size(), 1);
    if (ends.size() != starts.size() || axes.size() != starts.size() || steps.size() != starts.size()) return {};
    std::vector<int64_t> dims = a->dims;
    std::vector<int64_t> lo(rank, 0), step(rank, 1);
    for (size_t i = 0; i < starts.size(); ++i) {
      const int64_t ax = normalize_axis(axes[i], rank);
      if (ax < 0 || ax >= rank || steps[i] == 0) return {};
      const int64_t d = a->dims[ax];
      if (d < 0) continue;
      int64_t b = starts[i], e = ends[i];
      if (b < 0) b = b < -d ? 0 : b + d;
      if (e < 0) e = e < -d ? -1 : e + d;
      if (steps[i] > 0) {
        b = std::clamp<int64_t>(b, 0, d);
        e = std::clamp<int64_t>(e, 0, d);
        dims[ax] = e > b ? (e - b + steps[i] - 1) / steps[i] : 0;
      } else {
        b = std::clamp<int64_t>(b, 0, d - 1);
        e = std::clamp<int64_t>(e, -1, d - 1);
        dims[ax] = b > e ? (b - e - steps[i] - 1) / -steps[i] : 0;
      }
      lo[ax] = b;
      step[ax] = steps[i];
    }
    Value out = ranked_value(a->dtype, dims);
    if (a->has_values && out.full() && a->full()) {
      out.has_values = true;
      const auto in_strides = strides_of(a->dims);
      for (int64_t i = 0; i < out.elements(); ++i) {
        int64_t rest = i, at = 0;
        for (int64_t d = rank - 1; d >= 0; --d) {
          const int64_t coord = rest % dims[d];
          rest /= dims[d];
          at += (lo[d] + coord * step[d]) * in_strides[d];
        }
        out.values.push_back(a->values[at]);
      }
    }
    return {out};
  }

  std::vector<Value> infer_split(const onnx::NodeProto& n, const Scope& s) {
    const Value* a = input(n, s, 0);
    if (!a || !a->ranked) return {};
    const int64_t rank = static_cast<int64_t>(a->dims.size());
    const int64_t axis = normalize_axis(int_attribute(n, "axis", 0), rank);
    if (axis < 0 || axis >= rank) return {};
    std::vector<int64_t> split = ints_attribute(n, "split");
    if (split.empty() && n.input_size() > 1 && !n.input(1).empty()) {
      const auto* values = input_values(n, s, 1);
      if (!values) return {};
      split = as_ints(*values);
    }
    const int64_t parts = n.output_size();
    if (split.empty()) {
      const int64_t d = a->dims[axis];
      for (int64_t i = 0; i < parts; ++i) {
        const int64_t chunk = d < 0 ? -1 : (d + parts - 1) / parts;
        split.push_back(d < 0 ? -1 : std::min(chunk, std::max<int64_t>(0, d - i * chunk)));
      }
    }
    std::vector<Value> outs;
    for (int64_t part : split) {
      std::vector<int64_t> dims = a->dims;
      dims[axis] = part;
      outs.push_back(ranked_value(a->dtype, dims));
    }
    return outs;
  }

  std::vector<Value> infer_resize(const onnx::NodeProto& n, const Scope& s, const std::string& op) {
    const Value* a = input(n, s, 0);
    if (!a || !a->ranked) return {};
    const size_t rank = a->dims.size();
    std::vector<double> scales;
    std::vector<int64_t> sizes;
    if (op == "Upsample" && find_attribute(n, "scales")) {
      for (float f : find_attribute(n, "scales")->floats()) scales.push_back(f);
    } else if (op == "Upsample" || n.input_size() == 2) {  // Upsample-9, Resize-10: (X, scales)
      const auto* v = input_values(n, s, 1);
      if (v) scales = *v;
    } else {
      const auto* sz = input_values(n, s, 3);
      const auto* sc = input_values(n, s, 2);
      if (sz && !sz->empty()) sizes = as_ints(*sz);
      else if (sc && !sc->empty()) scales = *sc;
    }
    std::vector<int64_t> axes = ints_attribute(n, "axes");
    if (axes.empty())
      for (size_t i = 0; i < rank; ++i) axes.push_back(static_cast<int64_t>(i));
    std::vector<int64_t> dims = a->dims;
    if (!sizes.empty() && sizes.size() == axes.size()) {
      for (size_t i = 0; i < axes.size(); ++i) dims[normalize_axis(axes[i], static_cast<int64_t>(rank))] = sizes[i];
    } else if (!scales.empty() && scales.size() == axes.size()) {
      for (size_t i = 0; i < axes.size(); ++i) {
        int64_t& d = dims[normalize_axis(axes[i], static_cast<int64_t>(rank))];
        d = d < 0 ? -1 : static_cast<int64_t>(std::floor(static_cast<double>(d) * scales[i] + 1e-9));
      }
    } else {
      dims.assign(rank, -1);
    }
    return {ranked_value(a->dtype, dims)};
  }

  std::vector<Value> infer_reduce(const onnx::NodeProto& n, const Scope& s, const std::string& op) {
    const Value* a = input(n, s, 0);
    if (!a || !a->ranked) return {};
    const int64_t rank = static_cast<int64_t>(a->dims.size());
    const bool keep = int_attribute(n, "keepdims", 1) != 0;
    std::vector<int64_t> axes;
    if (op == "ArgMax" || op == "ArgMin") {
      axes = {int_attribute(n, "axis", 0)};
    } else if (find_attribute(n, "axes")) {
      axes = ints_attribute(n, "axes");
    } else if (n.input_size() > 1 && !n.input(1).empty()) {
      const auto* values = input_values(n, s, 1);
      if (!values) return {};
      axes = as_ints(*values);
    }
    std::set<int64_t> reduced;
    for (int64_t ax : axes) reduced.insert(normalize_axis(ax, rank));
    const bool all = axes.empty() && int_attribute(n, "noop_with_empty_axes", 0) == 0;
    if (axes.empty() && !all) return {ranked_value(a->dtype, a->dims)};
    std::vector<int64_t> dims;
    for (int64_t i = 0; i < rank; ++i) {
      if (all || reduced.count(i)) {
        if (keep) dims.push_back(1);
      } else {
        dims.push_back(a->dims[i]);
      }
    }
    Value v = ranked_value(op == "ArgMax" || op == "ArgMin" ? TP::INT64 : a->dtype, dims);
    if ((op == "ReduceProd" || op == "ReduceSum") && rank == 1 && a->has_values) {
      double acc = op == "ReduceProd" ? 1 : 0;
      for (double x : a->values) acc = op == "ReduceProd" ? acc * x : acc + x;
      v.has_values = true;
      v.values = {acc};
    }
    return {v};
  }

  // Where both branches (or a known condition) agree, If's outputs are known; Loop carries its
  // state through the body; Scan slices its scan inputs along their axis.
  std::vector<Value> infer_control(onnx::NodeProto& n, Scope& s) {
    const std::string& op = n.op_type();
    if (op == "If") {
      std::vector<std::vector<Value>> branches;
      std::vector<std::string> names;
      for (auto& attr : *n.mutable_attribute()) {
        if (!attr.has_g()) continue;
        Scope child;
        child.parent = &s;
        branches.push_back(run_graph(*attr.mutable_g(), child));
        names.push_back(attr.name());
      }
      const auto* cond = input_values(n, s, 0);
      if (cond && cond->size() == 1) {
        const std::string taken = (*cond)[0] != 0 ? "then_branch" : "else_branch";
        result_.if_taken[&n] = taken;
        for (size_t i = 0; i < names.size(); ++i)
          if (names[i] == taken) return branches[i];
      }
      if (branches.size() != 2) return {};
      std::vector<Value> outs;
      for (size_t i = 0; i < branches[0].size() && i < branches[1].size(); ++i) {
        const Value &x = branches[0][i], &y = branches[1][i];
        Value v;
        v.dtype = x.dtype ? x.dtype : y.dtype;
        if (x.ranked && y.ranked && x.dims.size() == y.dims.size()) {
          v.ranked = true;
          for (size_t d = 0; d < x.dims.size(); ++d) v.dims.push_back(x.dims[d] == y.dims[d] ? x.dims[d] : -1);
        }
        outs.push_back(v);
      }
      return outs;
    }
    onnx::GraphProto* body = nullptr;
    for (auto& attr : *n.mutable_attribute())
      if (attr.name() == "body" && attr.has_g()) body = attr.mutable_g();
    if (!body) return {};
    Scope child;
    child.parent = &s;
    if (op == "Loop") {
      // body inputs: iteration number, condition, then the loop-carried values.
      for (int i = 0; i < body->input_size(); ++i) {
        Value v;
        if (i == 0) v = ranked_value(TP::INT64, {});
        else if (i == 1) v = ranked_value(TP::BOOL, {});
        else if (const Value* init = input(n, s, i)) v = *init;
        v.has_values = false;  // changes across iterations
        v.values.clear();
        child.values[body->input(i).name()] = v;
      }
      const auto outs = run_graph(*body, child);
      const int carried = body->input_size() - 2;
      std::vector<Value> result;
      for (int i = 0; i < n.output_size(); ++i) {
        const size_t from = static_cast<size_t>(i) + 1;
        if (from >= outs.size()) break;
        Value v = outs[from];
        v.has_values = false;
        v.values.clear();
        if (i >= carried && v.ranked) v.dims.insert(v.dims.begin(), -1);  // trip count not static
        result.push_back(v);
      }
      return result;
    }
    // Scan (opset 9+): states, then scan inputs sliced along their scan axis.
    const int64_t scans = int_attribute(n, "num_scan_inputs", 0);
    const int64_t states = n.input_size() - scans;
    const auto in_axes = ints_attribute(n, "scan_input_axes", std::vector<int64_t>(scans, 0));
    int64_t length = -1;
    for (int i = 0; i < body->input_size() && i < n.input_size(); ++i) {
      Value v;
      if (const Value* outer = input(n, s, i)) v = *outer;
      v.has_values = false;
      v.values.clear();
      if (i >= states && v.ranked && !v.dims.empty()) {
        const int64_t ax = normalize_axis(in_axes[i - states], static_cast<int64_t>(v.dims.size()));
        if (ax >= 0 && ax < static_cast<int64_t>(v.dims.size())) {
          length = v.dims[ax];
          v.dims.erase(v.dims.begin() + ax);
        }
      }
      child.values[body->input(i).name()] = v;
    }
    const auto outs = run_graph(*body, child);
    const auto out_axes = ints_attribute(n, "scan_output_axes", std::vector<int64_t>(outs.size(), 0));
    std::vector<Value> result;
    for (size_t i = 0; i < outs.size(); ++i) {
      Value v = outs[i];
      if (static_cast<int64_t>(i) >= states && v.ranked) {
        const size_t k = i - static_cast<size_t>(states);
        const int64_t ax = k < out_axes.size() ? normalize_axis(out_axes[k], static_cast<int64_t>(v.dims.size()) + 1) : 0;
        v.dims.insert(v.dims.begin() + std::clamp<int64_t>(ax, 0, static_cast<int64_t>(v.dims.size())), length);
      }
      result.push_back(v);
    }
    return result;
  }

  ShapeAnalysis& result_;
};

// Fixes symbolic input dims from overrides (or 1) so shapes become concrete; records each guess.
void fix_input_shapes(onnx::GraphProto& g, const ShapeOverrides& overrides,
                      ShapeAnalysis& result) {
  std::set<std::string> initializers;
  for (const auto& t : g.initializer()) initializers.insert(t.name());
  for (const auto& [name, dims] : overrides) {
    bool found = false;
    for (const auto& in : g.input()) found = found || in.name() == name;
    if (!found) throw Error(ExitCode::kUsage, "--input-shape names '" + name + "', which is not a model input");
  }
  for (auto& in : *g.mutable_input()) {
    if (initializers.count(in.name()) || !in.type().has_tensor_type()) continue;
    auto* shape = in.mutable_type()->mutable_tensor_type()->mutable_shape();
    auto it = overrides.find(in.name());
    if (it != overrides.end()) {
      if (in.type().tensor_type().has_shape() && shape->dim_size() != static_cast<int>(it->second.size()))
        throw Error(ExitCode::kUsage, "--input-shape " + in.name() + " has " + std::to_string(it->second.size()) +
                                          " dims but the input has " + std::to_string(shape->dim_size()));
      shape->clear_dim();
      for (int64_t d : it->second) shape->add_dim()->set_dim_value(d);
      result.input_shapes[in.name()] = it->second;
      continue;
    }
    std::vector<int64_t> used;
    for (int d = 0; d < shape->dim_size(); ++d) {
      auto* dim = shape->mutable_dim(d);
      if (!(dim->has_dim_value() && dim->dim_value() > 0)) {
        result.assumed.push_back({in.name(), d, dim->has_dim_param() ? dim->dim_param() : "", 1});
        dim->set_dim_value(1);
      }
      used.push_back(dim->dim_value());
    }
    result.input_shapes[in.name()] = used;
  }
}

}  // namespace

ShapeAnalysis annotate_shapes(onnx::ModelProto& model, const ShapeOverrides& overrides) {
  ShapeAnalysis result;
  fix_input_shapes(*model.mutable_graph(), overrides, result);
  try {
    onnx::shape_inference::InferShapes(model, onnx::OpSchemaRegistry::Instance(),
                                       onnx::ShapeInferenceOptions(false, 0, /*data_propagation=*/true));
  } catch (const std::exception& e) {
    result.notes.push_back("ONNX shape inference stopped early (" + one_line(e.what()) +
                           "); the rest comes from compress's own propagation");
  }
  Scope scope;
  Propagator(result).run_graph(*model.mutable_graph(), scope);
  return result;
}

std::string input_shape_flags(const ShapeOverrides& shapes) {
  std::ostringstream out;
  bool first = true;
  for (const auto& [name, dims] : shapes) {
    out << (first ? "" : " ") << "--input-shape " << name << "=";
    for (size_t i = 0; i < dims.size(); ++i) out << (i ? "x" : "") << dims[i];
    first = false;
  }
  return out.str();
}

}  // namespace compress
