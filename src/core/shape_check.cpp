// Shape consistency checks (see shape_check.h). Evidence is only what the model fixes: declared
// graph input shapes, initializers that no feed can replace, Constant values, and what ONNX shape
// inference (non-strict, no data propagation) derives from those. value_info and graph output
// shapes written into the file are dropped first: a wrong annotation is not proof of a wrong node.
// Dims the propagation cannot know (symbolic, computed) stay unknown, and every rule below needs
// each dim it compares to be known, so a model that is merely dynamic is never refused.
#include "core/shape_check.h"

#include <compress/error.h>
#include <onnx/defs/schema.h>
#include <onnx/shape_inference/implementation.h>

#include <algorithm>
#include <cstring>
#include <deque>
#include <map>
#include <optional>
#include <set>
#include <unordered_map>

#include "core/attributes.h"
#include "core/checked.h"

namespace compress {

namespace {

using onnx::GraphProto;
using onnx::NodeProto;
using onnx::TensorProto;

[[noreturn]] void reject(const std::string& what) { throw Error(ExitCode::kBadInput, what); }

std::string label(const NodeProto& n) { return node_label(n); }

std::string dims_text(const std::vector<int64_t>& dims) {
  std::string s = "[";
  for (size_t i = 0; i < dims.size(); ++i) s += (i ? "," : "") + (dims[i] < 0 ? std::string("?") : std::to_string(dims[i]));
  return s + "]";
}

std::string ints_text(const std::vector<int64_t>& values) {
  std::string s = "[";
  for (size_t i = 0; i < values.size(); ++i) s += (i ? "," : "") + std::to_string(values[i]);
  return s + "]";
}

// What is known of one value's shape: nothing, its rank, or its rank and some dims (-1: unknown).
struct Known {
  bool ranked = false;
  std::vector<int64_t> dims;
  int64_t rank() const { return static_cast<int64_t>(dims.size()); }
  bool dim_known(int64_t d) const { return ranked && d >= 0 && d < rank() && dims[static_cast<size_t>(d)] >= 0; }
  int64_t dim(int64_t d) const { return dims[static_cast<size_t>(d)]; }
  bool full() const {
    return ranked && std::all_of(dims.begin(), dims.end(), [](int64_t d) { return d >= 0; });
  }
};

Known from_type(const onnx::TypeProto& type) {
  Known k;
  if (!type.has_tensor_type() || !type.tensor_type().has_shape()) return k;
  k.ranked = true;
  for (const auto& d : type.tensor_type().shape().dim())
    k.dims.push_back(d.has_dim_value() && d.dim_value() >= 0 ? d.dim_value() : -1);
  return k;
}

Known from_dims(const google::protobuf::RepeatedField<int64_t>& dims) {
  Known k;
  k.ranked = true;
  for (int64_t d : dims) k.dims.push_back(d >= 0 ? d : -1);
  return k;
}

// The values of a small 1-D int64 constant, or nullopt (other types, payload stripped or external).
std::optional<std::vector<int64_t>> int64_values(const TensorProto& t) {
  if (t.data_type() != TensorProto::INT64 || t.dims_size() != 1 || t.dims(0) < 0) return std::nullopt;
  const auto n = static_cast<size_t>(t.dims(0));
  std::vector<int64_t> v;
  if (t.has_raw_data()) {
    if (t.raw_data().size() != n * sizeof(int64_t)) return std::nullopt;
    v.resize(n);
    if (n) std::memcpy(v.data(), t.raw_data().data(), n * sizeof(int64_t));  // little-endian hosts only
  } else {
    if (static_cast<size_t>(t.int64_data_size()) != n) return std::nullopt;
    v.assign(t.int64_data().begin(), t.int64_data().end());
  }
  return v;
}

// A graph's values, then its enclosing graphs'.
struct Scope {
  std::unordered_map<std::string, Known> shapes;
  std::unordered_map<std::string, const TensorProto*> constants;
  std::deque<TensorProto> made;  // Constant value_ints / value_int as int64 tensors
  const Scope* parent = nullptr;

  Known shape(const std::string& name) const {
    for (const Scope* s = this; s; s = s->parent) {
      auto it = s->shapes.find(name);
      if (it != s->shapes.end()) return it->second;
    }
    return {};
  }
  const TensorProto* constant(const std::string& name) const {
    for (const Scope* s = this; s; s = s->parent) {
      if (s->shapes.count(name) && !s->constants.count(name)) return nullptr;  // shadowed by a non-constant
      auto it = s->constants.find(name);
      if (it != s->constants.end()) return it->second;
    }
    return nullptr;
  }
};

Known input_shape(const NodeProto& n, const Scope& s, int i) {
  if (i >= n.input_size() || n.input(i).empty()) return {};
  return s.shape(n.input(i));
}

void check_axis(const NodeProto& n, const Scope& s, int input, int64_t axis, bool rank_inclusive) {
  const Known x = input_shape(n, s, input);
  if (!x.ranked) return;
  const int64_t r = x.rank(), hi = rank_inclusive ? r : r - 1;
  if (axis < -r || axis > hi)
    reject(label(n) + ": axis " + std::to_string(axis) + " is outside input '" + n.input(input) + "' of rank " +
           std::to_string(r) + " " + dims_text(x.dims) +
           (hi < -r ? " (this op needs rank >= 1)" : " (valid: " + std::to_string(-r) + ".." + std::to_string(hi) + ")"));
}

// Ops whose `axis` names an axis of input 0, with the default that every opset version shares
// (none: checked only when the attribute is given).
const std::map<std::string, std::optional<int64_t>> kAxisOps = {
    {"Gather", 0},           {"GatherElements", 0},           {"Split", 0},
    {"ArgMax", 0},           {"ArgMin", 0},                   {"TopK", -1},
    {"Softmax", std::nullopt}, {"LogSoftmax", std::nullopt}, {"Hardmax", std::nullopt}};

void check_concat(const NodeProto& n, const Scope& s) {
  const auto* attr = find_attribute(n, "axis");
  if (!attr) return;
  const int64_t axis = attr->i();
  std::optional<Known> first;
  std::string first_name;
  for (int i = 0; i < n.input_size(); ++i) {
    if (n.input(i).empty()) continue;
    check_axis(n, s, i, axis, false);
    const Known x = input_shape(n, s, i);
    if (!x.ranked) continue;
    if (!first) {
      first = x;
      first_name = n.input(i);
      continue;
    }
    if (x.rank() != first->rank())
      reject(label(n) + ": inputs '" + first_name + "' " + dims_text(first->dims) + " and '" + n.input(i) + "' " +
             dims_text(x.dims) + " differ in rank");
    const int64_t a = axis < 0 ? axis + x.rank() : axis;
    for (int64_t d = 0; d < x.rank(); ++d)
      if (d != a && x.dim_known(d) && first->dim_known(d) && x.dim(d) != first->dim(d))
        reject(label(n) + ": inputs '" + first_name + "' " + dims_text(first->dims) + " and '" + n.input(i) + "' " +
               dims_text(x.dims) + " differ in dim " + std::to_string(d) + " (only axis " + std::to_string(axis) +
               " may differ)");
  }
}

void check_reshape(const NodeProto& n, const Scope& s) {
  std::optional<std::vector<int64_t>> target;
  if (const auto* attr = find_attribute(n, "shape")) {
    target = std::vector<int64_t>(attr->ints().begin(), attr->ints().end());  // Reshape-1
  } else if (n.input_size() > 1 && !n.input(1).empty()) {
    if (const TensorProto* t = s.constant(n.input(1))) target = int64_values(*t);
  }
  if (!target) return;
  const bool allowzero = int_attribute(n, "allowzero", 0) != 0;
  const Known x = input_shape(n, s, 0);
  const std::string what = label(n) + ": target shape " + ints_text(*target);
  int minus_ones = 0;
  bool zero = false, product_known = true;
  int64_t product = 1;
  for (size_t i = 0; i < target->size(); ++i) {
    int64_t v = (*target)[i];
    if (v < -1) reject(what + " has " + std::to_string(v) + " at index " + std::to_string(i) + " (allowed: -1 or >= 0)");
    if (v == -1) {
      ++minus_ones;
      continue;
    }
    if (v == 0 && !allowzero) {
      if (x.ranked && static_cast<int64_t>(i) >= x.rank())
        reject(what + " copies dim " + std::to_string(i) + " (0) of input '" + n.input(0) + "' " + dims_text(x.dims) +
               ", which has rank " + std::to_string(x.rank()));
      if (!x.dim_known(static_cast<int64_t>(i))) {
        product_known = false;
        continue;
      }
      v = x.dim(static_cast<int64_t>(i));
    }
    zero = zero || v == 0;
    const auto next = checked_mul(product, v);
    if (!next) return;
    product = *next;
  }
  if (minus_ones > 1) reject(what + " has more than one -1");
  if (allowzero && minus_ones && zero) reject(what + " has both -1 and 0 with allowzero=1");
  if (!x.full() || !product_known) return;
  const auto total = checked_product(x.dims);
  if (!total) return;
  const bool fits = minus_ones ? (product > 0 && *total % product == 0) || (product == 0 && *total == 0) : product == *total;
  if (!fits)
    reject(what + " cannot hold the " + std::to_string(*total) + " elements of input '" + n.input(0) + "' " +
           dims_text(x.dims));
}

// Split sizes (the `split` input, or the attribute before opset 13) must be >= 0 and sum to the
// split axis.
void check_split(const NodeProto& n, const Scope& s) {
  std::optional<std::vector<int64_t>> sizes;
  if (const auto* attr = find_attribute(n, "split")) {
    sizes = std::vector<int64_t>(attr->ints().begin(), attr->ints().end());
  } else if (n.input_size() > 1 && !n.input(1).empty()) {
    if (const TensorProto* t = s.constant(n.input(1))) sizes = int64_values(*t);
  }
  if (!sizes) return;
  const std::string what = label(n) + ": split sizes " + ints_text(*sizes);
  int64_t sum = 0;
  for (int64_t v : *sizes) {
    if (v < 0) reject(what + " hold " + std::to_string(v) + " (sizes must be >= 0)");
    const auto next = checked_add(sum, v);
    if (!next) return;
    sum = *next;
  }
  const Known x = input_shape(n, s, 0);
  const int64_t axis = int_attribute(n, "axis", 0);
  const int64_t a = x.ranked && axis < 0 ? axis + x.rank() : axis;
  if (x.dim_known(a) && x.dim(a) != sum)
    reject(what + " sum to " + std::to_string(sum) + ", but axis " + std::to_string(axis) + " of input '" + n.input(0) +
           "' " + dims_text(x.dims) + " is " + std::to_string(x.dim(a)));
}

// The `axes` of Squeeze, Unsqueeze and the Reduce ops: the attribute (older opsets) or the constant
// second input (newer ones); nullopt when neither is known.
std::optional<std::vector<int64_t>> axes_of(const NodeProto& n, const Scope& s) {
  if (const auto* attr = find_attribute(n, "axes")) return std::vector<int64_t>(attr->ints().begin(), attr->ints().end());
  if (n.input_size() > 1 && !n.input(1).empty())
    if (const TensorProto* t = s.constant(n.input(1))) return int64_values(*t);
  return std::nullopt;
}

// Each axis inside [-rank, rank - 1] of a rank `rank` tensor (`what` names it), none named twice.
void check_axes_in(const NodeProto& n, const std::vector<int64_t>& axes, int64_t rank, const std::string& what) {
  std::set<int64_t> seen;
  for (int64_t a : axes) {
    if (a < -rank || a >= rank)
      reject(label(n) + ": axis " + std::to_string(a) + " of axes " + ints_text(axes) + " is outside " + what + " (valid: " +
             std::to_string(-rank) + ".." + std::to_string(rank - 1) + ")");
    if (!seen.insert(a < 0 ? a + rank : a).second)
      reject(label(n) + ": axes " + ints_text(axes) + " name axis " + std::to_string(a < 0 ? a + rank : a) + " twice");
  }
}

// Squeeze: axes inside the input, each of size 1 where known. Unsqueeze: axes inside the output's
// rank (input rank + count of axes). Reduce*: axes inside the input.
void check_axes(const NodeProto& n, const Scope& s) {
  const auto axes = axes_of(n, s);
  const Known x = input_shape(n, s, 0);
  if (!axes || !x.ranked) return;
  const std::string input = "input '" + n.input(0) + "' " + dims_text(x.dims);
  if (n.op_type() == "Unsqueeze") {
    const int64_t rank = x.rank() + static_cast<int64_t>(axes->size());
    check_axes_in(n, *axes, rank, "the output rank " + std::to_string(rank) + " of " + input);
    return;
  }
  check_axes_in(n, *axes, x.rank(), input + " of rank " + std::to_string(x.rank()));
  if (n.op_type() != "Squeeze") return;
  for (int64_t a : *axes) {
    const int64_t d = a < 0 ? a + x.rank() : a;
    if (x.dim_known(d) && x.dim(d) != 1)
      reject(label(n) + ": squeezes axis " + std::to_string(a) + " of " + input + ", which has size " +
             std::to_string(x.dim(d)) + ", not 1");
  }
}

void check_rnn(const NodeProto& n, const Scope& s, int64_t gates) {
  const std::string direction = string_attribute(n, "direction", "forward");
  const int64_t dirs = direction == "bidirectional" ? 2 : 1;
  const Known x = input_shape(n, s, 0), w = input_shape(n, s, 1), r = input_shape(n, s, 2), b = input_shape(n, s, 3);
  auto need_rank = [&](const Known& k, int input, int64_t rank) {
    if (k.ranked && k.rank() != rank)
      reject(label(n) + ": input '" + n.input(input) + "' " + dims_text(k.dims) + " has rank " + std::to_string(k.rank()) +
             ", expected " + std::to_string(rank));
  };
  need_rank(x, 0, 3);
  need_rank(w, 1, 3);
  need_rank(r, 2, 3);
  need_rank(b, 3, 2);
  // hidden_size from the attribute, else from R [dirs, gates * hidden, hidden].
  std::string hidden_from = "hidden_size";
  int64_t hidden = int_attribute(n, "hidden_size", -1);
  if (hidden < 0 && r.dim_known(2)) {
    hidden = r.dim(2);
    hidden_from = "R '" + n.input(2) + "' " + dims_text(r.dims);
  }
  auto expect_dim = [&](const Known& k, int input, int64_t d, int64_t want, const std::string& why) {
    if (k.dim_known(d) && k.dim(d) != want)
      reject(label(n) + ": input '" + n.input(input) + "' " + dims_text(k.dims) + " has dim " + std::to_string(d) +
             " = " + std::to_string(k.dim(d)) + ", expected " + std::to_string(want) + " (" + why + ")");
  };
  const std::string dir_why = "direction " + direction;
  expect_dim(w, 1, 0, dirs, dir_why);
  expect_dim(r, 2, 0, dirs, dir_why);
  expect_dim(b, 3, 0, dirs, dir_why);
  if (hidden >= 0) {
    const std::string why = std::to_string(gates) + " gate" + (gates > 1 ? "s" : "") + " x hidden size " +
                            std::to_string(hidden) + " from " + hidden_from;
    expect_dim(w, 1, 1, gates * hidden, why);
    expect_dim(r, 2, 1, gates * hidden, why);
    expect_dim(r, 2, 2, hidden, "hidden size from " + hidden_from);
    expect_dim(b, 3, 1, 2 * gates * hidden, "2 x " + why);
  }
  if (x.dim_known(2)) expect_dim(w, 1, 2, x.dim(2), "input size of X '" + n.input(0) + "' " + dims_text(x.dims));
}

void check_node(const NodeProto& n, const Scope& s) {
  if (!n.domain().empty() && n.domain() != "ai.onnx") return;
  const std::string& op = n.op_type();
  if (auto it = kAxisOps.find(op); it != kAxisOps.end()) {
    const auto* attr = find_attribute(n, "axis");
    if (attr) check_axis(n, s, 0, attr->i(), false);
    else if (it->second) check_axis(n, s, 0, *it->second, false);
    if (op == "Split") check_split(n, s);
  } else if (op == "Flatten") {
    if (const auto* attr = find_attribute(n, "axis")) check_axis(n, s, 0, attr->i(), true);
  } else if (op == "Concat") {
    check_concat(n, s);
  } else if (op == "Reshape") {
    check_reshape(n, s);
  } else if (op == "Squeeze" || op == "Unsqueeze" || op.rfind("Reduce", 0) == 0) {
    check_axes(n, s);
  } else if (op == "RNN") {
    check_rnn(n, s, 1);
  } else if (op == "GRU") {
    check_rnn(n, s, 3);
  } else if (op == "LSTM") {
    check_rnn(n, s, 4);
  }
}

void check_graph(const GraphProto& g, const Scope* parent) {
  Scope s;
  s.parent = parent;
  std::set<std::string> inputs;
  for (const auto& v : g.input()) {
    inputs.insert(v.name());
    s.shapes[v.name()] = from_type(v.type());
  }
  // An initializer that is also an input is a default a feed may replace: neither its dims nor its
  // values are fixed.
  for (const auto& t : g.initializer())
    if (!inputs.count(t.name())) {
      s.shapes[t.name()] = from_dims(t.dims());
      s.constants[t.name()] = &t;
    }
  for (const auto& sp : g.sparse_initializer())
    if (!inputs.count(sp.values().name())) s.shapes[sp.values().name()] = from_dims(sp.dims());
  for (const auto& v : g.value_info()) s.shapes.emplace(v.name(), from_type(v.type()));
  for (const auto& v : g.output()) s.shapes.emplace(v.name(), from_type(v.type()));
  for (const auto& n : g.node()) {
    if (n.op_type() == "Constant" && n.domain().empty() && n.output_size() == 1) {
      if (const auto* value = find_attribute(n, "value"); value && value->has_t()) {
        s.constants[n.output(0)] = &value->t();
        s.shapes[n.output(0)] = from_dims(value->t().dims());
      } else if (const auto* ints = find_attribute(n, "value_ints"); ints && ints->type() == onnx::AttributeProto::INTS) {
        TensorProto& t = s.made.emplace_back();
        t.set_data_type(TensorProto::INT64);
        t.add_dims(ints->ints_size());
        *t.mutable_int64_data() = ints->ints();
        s.constants[n.output(0)] = &t;
        s.shapes[n.output(0)] = from_dims(t.dims());
      }
    }
    check_node(n, s);
    for (const auto& a : n.attribute()) {
      if (a.has_g()) check_graph(a.g(), &s);
      for (const auto& sub : a.graphs()) check_graph(sub, &s);
    }
  }
}

// Drops value_info and output shapes (keeping output element types) in every graph.
void drop_annotations(GraphProto& g) {
  g.clear_value_info();
  for (auto& o : *g.mutable_output())
    if (o.type().has_tensor_type()) o.mutable_type()->mutable_tensor_type()->clear_shape();
  for (auto& n : *g.mutable_node())
    for (auto& a : *n.mutable_attribute()) {
      if (a.has_g()) drop_annotations(*a.mutable_g());
      for (auto& sub : *a.mutable_graphs()) drop_annotations(sub);
    }
}

}  // namespace

void densify_sparse_stand_ins(onnx::GraphProto& g) {
  for (const auto& sparse : g.sparse_initializer()) {
    auto* dense = g.add_initializer();
    dense->set_name(sparse.values().name());
    dense->set_data_type(sparse.values().data_type());
    for (int64_t d : sparse.dims()) dense->add_dims(d);
  }
  g.clear_sparse_initializer();
}

void check_shape_consistency(onnx::ModelProto& model) {
  auto* g = model.mutable_graph();
  drop_annotations(*g);
  densify_sparse_stand_ins(*g);
  try {
    onnx::shape_inference::InferShapes(model, onnx::OpSchemaRegistry::Instance(),
                                       onnx::ShapeInferenceOptions(false, 0, /*data_propagation=*/false));
  } catch (const std::exception&) {
    // Inference stopped early: what it wrote so far, and the declared shapes, remain evidence.
  }
  check_graph(*g, nullptr);
}

}  // namespace compress
