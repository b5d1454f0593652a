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

// The values of a small int64 or int32 constant of any rank, flattened, or nullopt (other types,
// payload stripped or external).
std::optional<std::vector<int64_t>> flat_ints(const TensorProto& t) {
  const auto count = checked_product(t.dims());
  if (!count || *count < 0 || *count > (1 << 20)) return std::nullopt;
  const auto n = static_cast<size_t>(*count);
  std::vector<int64_t> v;
  if (t.data_type() == TensorProto::INT64) {
    if (t.has_raw_data()) {
      if (t.raw_data().size() != n * sizeof(int64_t)) return std::nullopt;
      v.resize(n);
      if (n) std::memcpy(v.data(), t.raw_data().data(), n * sizeof(int64_t));  // little-endian hosts only
    } else {
      if (static_cast<size_t>(t.int64_data_size()) != n) return std::nullopt;
      v.assign(t.int64_data().begin(), t.int64_data().end());
    }
  } else if (t.data_type() == TensorProto::INT32) {
    if (t.has_raw_data()) {
      if (t.raw_data().size() != n * sizeof(int32_t)) return std::nullopt;
      std::vector<int32_t> narrow(n);
      if (n) std::memcpy(narrow.data(), t.raw_data().data(), n * sizeof(int32_t));
      v.assign(narrow.begin(), narrow.end());
    } else {
      if (static_cast<size_t>(t.int32_data_size()) != n) return std::nullopt;
      v.assign(t.int32_data().begin(), t.int32_data().end());
    }
  } else {
    return std::nullopt;
  }
  return v;
}

// The values of a small 1-D int64 constant (a shape, sizes, axes), or nullopt.
std::optional<std::vector<int64_t>> int64_values(const TensorProto& t, bool scalar_ok = false) {
  if (t.data_type() != TensorProto::INT64 || t.dims_size() > 1 || (t.dims_size() == 0 && !scalar_ok)) return std::nullopt;
  return flat_ints(t);
}

// A graph's values, then its enclosing graphs'.
struct Scope {
  std::unordered_map<std::string, Known> shapes;
  std::unordered_map<std::string, const TensorProto*> constants;
  std::deque<TensorProto> made;  // Constant value_ints / value_int as int64 tensors
  const Scope* parent = nullptr;
  int64_t opset = 0;  // of the default domain

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

// Input i's name for a message, empty when the node has fewer inputs (the schema check reports that).
std::string input_name(const NodeProto& n, int i) { return i < n.input_size() ? n.input(i) : ""; }

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
    {"Softmax", std::nullopt}, {"LogSoftmax", std::nullopt}, {"Hardmax", std::nullopt},
    {"LayerNormalization", -1}, {"LpNormalization", -1}, {"ScatterElements", 0}, {"Compress", std::nullopt}};

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
  // A scalar axes input: ONNX Runtime reads it as one axis.
  if (n.input_size() > 1 && !n.input(1).empty())
    if (const TensorProto* t = s.constant(n.input(1))) return int64_values(*t, true);
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

// Multidirectional (numpy) broadcasting: right-aligned, two known dims other than 1 must agree.
const std::set<std::string> kBroadcastOps = {
    "Add",  "Sub",     "Mul",  "Div",  "Pow",  "Mod",  "Equal", "Less", "Greater", "LessOrEqual", "GreaterOrEqual",
    "And",  "Or",      "Xor",  "Where", "Max", "Min",  "Sum",   "Mean", "BitShift", "BitwiseAnd", "BitwiseOr",
    "BitwiseXor"};

void check_broadcast(const NodeProto& n, const Scope& s) {
  // Before opset 7 (8 for Max/Min/Sum/Mean) broadcasting was opt-in with an axis: not numpy rules.
  if (s.opset < 8) return;
  std::vector<Known> shapes;
  std::vector<int> names;
  for (int i = 0; i < n.input_size(); ++i) {
    Known x = input_shape(n, s, i);
    if (!x.ranked) continue;
    shapes.push_back(std::move(x));
    names.push_back(i);
  }
  for (size_t a = 0; a < shapes.size(); ++a)
    for (size_t b = a + 1; b < shapes.size(); ++b) {
      const Known &x = shapes[a], &y = shapes[b];
      for (int64_t k = 1; k <= std::min(x.rank(), y.rank()); ++k) {
        const int64_t dx = x.dims[static_cast<size_t>(x.rank() - k)], dy = y.dims[static_cast<size_t>(y.rank() - k)];
        if (dx >= 0 && dy >= 0 && dx != dy && dx != 1 && dy != 1)
          reject(label(n) + ": inputs '" + n.input(names[a]) + "' " + dims_text(x.dims) + " and '" + n.input(names[b]) +
                 "' " + dims_text(y.dims) + " cannot broadcast (dim -" + std::to_string(k) + ": " + std::to_string(dx) +
                 " vs " + std::to_string(dy) + ")");
      }
    }
}

// MatMul / MatMulInteger: A's last dim against B's second to last (B's only dim when 1-D).
void check_matmul(const NodeProto& n, const Scope& s) {
  const Known a = input_shape(n, s, 0), b = input_shape(n, s, 1);
  if (!a.ranked || !b.ranked || a.rank() == 0 || b.rank() == 0) return;
  const int64_t ka = a.rank() - 1, kb = b.rank() == 1 ? 0 : b.rank() - 2;
  if (a.dim_known(ka) && b.dim_known(kb) && a.dim(ka) != b.dim(kb))
    reject(label(n) + ": inner dims differ: input '" + n.input(0) + "' " + dims_text(a.dims) + " has " +
           std::to_string(a.dim(ka)) + " columns, input '" + n.input(1) + "' " + dims_text(b.dims) + " has " +
           std::to_string(b.dim(kb)) + " rows");
}

// Gemm: 2-D A and B whose inner dims (after transA / transB) agree.
void check_gemm(const NodeProto& n, const Scope& s) {
  const Known a = input_shape(n, s, 0), b = input_shape(n, s, 1);
  for (int i : {0, 1}) {
    const Known& k = i ? b : a;
    if (k.ranked && k.rank() != 2)
      reject(label(n) + ": input '" + n.input(i) + "' " + dims_text(k.dims) + " has rank " + std::to_string(k.rank()) +
             ", Gemm needs 2");
  }
  const int64_t ka = int_attribute(n, "transA", 0) ? 0 : 1, kb = int_attribute(n, "transB", 0) ? 1 : 0;
  if (a.dim_known(ka) && b.dim_known(kb) && a.dim(ka) != b.dim(kb))
    reject(label(n) + ": inner dims differ: A '" + n.input(0) + "' " + dims_text(a.dims) + " gives K = " +
           std::to_string(a.dim(ka)) + ", B '" + n.input(1) + "' " + dims_text(b.dims) + " gives K = " +
           std::to_string(b.dim(kb)) + " (transA " + std::to_string(int_attribute(n, "transA", 0)) + ", transB " +
           std::to_string(int_attribute(n, "transB", 0)) + ")");
}

// Conv, ConvInteger, QLinearConv: input channels = W's dim 1 x group, W's dim 0 a multiple of group,
// a bias of W's dim 0 elements.
void check_conv(const NodeProto& n, const Scope& s) {
  const bool qlinear = n.op_type() == "QLinearConv";
  const int w_index = qlinear ? 3 : 1, b_index = qlinear ? 8 : (n.op_type() == "Conv" ? 2 : -1);
  const Known x = input_shape(n, s, 0), w = input_shape(n, s, w_index);
  const int64_t group = int_attribute(n, "group", 1);
  if (group <= 0) return;  // validate_model refuses it
  const std::string wt = "W '" + input_name(n, w_index) + "' " + dims_text(w.dims);
  if (x.dim_known(1) && w.dim_known(1) && x.dim(1) != w.dim(1) * group)
    reject(label(n) + ": input '" + n.input(0) + "' " + dims_text(x.dims) + " has " + std::to_string(x.dim(1)) +
           " channels, " + wt + " expects " + std::to_string(w.dim(1)) + " x group " + std::to_string(group));
  if (w.dim_known(0) && w.dim(0) % group != 0)
    reject(label(n) + ": output channels " + std::to_string(w.dim(0)) + " of " + wt + " are not a multiple of group " +
           std::to_string(group));
  if (b_index < 0) return;
  const Known b = input_shape(n, s, b_index);
  if (b.ranked && w.dim_known(0) && (b.rank() != 1 || (b.dim_known(0) && b.dim(0) != w.dim(0))))
    reject(label(n) + ": bias '" + n.input(b_index) + "' " + dims_text(b.dims) + " must be 1-D of the " +
           std::to_string(w.dim(0)) + " output channels of " + wt);
}

// BatchNormalization: scale, B, mean and var hold one value per channel (dim 1 of X).
void check_batch_norm(const NodeProto& n, const Scope& s) {
  if (s.opset < 9) return;  // older versions had `spatial`: per-element parameters were allowed
  const Known x = input_shape(n, s, 0);
  if (!x.dim_known(1)) return;
  for (int i = 1; i < std::min(n.input_size(), 5); ++i) {
    const Known p = input_shape(n, s, i);
    if (p.ranked && (p.rank() != 1 || (p.dim_known(0) && p.dim(0) != x.dim(1))))
      reject(label(n) + ": input '" + n.input(i) + "' " + dims_text(p.dims) + " must be 1-D of the " +
             std::to_string(x.dim(1)) + " channels of input '" + n.input(0) + "' " + dims_text(x.dims));
  }
}

// Transpose: perm names every axis of the input.
void check_transpose(const NodeProto& n, const Scope& s) {
  const auto* perm = find_attribute(n, "perm");
  const Known x = input_shape(n, s, 0);
  if (!perm || !x.ranked || perm->ints_size() == x.rank()) return;
  reject(label(n) + ": perm " + ints_text({perm->ints().begin(), perm->ints().end()}) + " has " +
         std::to_string(perm->ints_size()) + " entries, input '" + n.input(0) + "' " + dims_text(x.dims) + " has rank " +
         std::to_string(x.rank()));
}

// Slice: axes inside the rank, once each; starts, ends, axes and steps of one length; no step 0.
void check_slice(const NodeProto& n, const Scope& s) {
  auto values = [&](int input, const char* attr) -> std::optional<std::vector<int64_t>> {
    if (s.opset < 10) {
      if (const auto* a = find_attribute(n, attr)) return std::vector<int64_t>(a->ints().begin(), a->ints().end());
      return std::nullopt;
    }
    if (input >= n.input_size() || n.input(input).empty()) return std::nullopt;
    if (const TensorProto* t = s.constant(n.input(input))) return int64_values(*t);
    return std::nullopt;
  };
  const auto starts = values(1, "starts"), ends = values(2, "ends"), axes = values(3, "axes"), steps = values(4, "");
  std::optional<size_t> count;
  std::string first;
  for (const auto& [v, name] : {std::pair{&starts, "starts"}, {&ends, "ends"}, {&axes, "axes"}, {&steps, "steps"}}) {
    if (!*v) continue;
    if (!count) {
      count = (*v)->size();
      first = std::string(name) + " " + ints_text(**v);
    } else if ((*v)->size() != *count) {
      reject(label(n) + ": " + first + " and " + name + " " + ints_text(**v) + " differ in length");
    }
  }
  if (steps)
    for (int64_t v : *steps)
      if (v == 0) reject(label(n) + ": steps " + ints_text(*steps) + " hold 0");
  const Known x = input_shape(n, s, 0);
  if (axes && x.ranked)
    check_axes_in(n, *axes, x.rank(), "input '" + n.input(0) + "' " + dims_text(x.dims) + " of rank " +
                                          std::to_string(x.rank()));
}

// Tile: one repeat count >= 0 per input axis.
void check_tile(const NodeProto& n, const Scope& s) {
  if (s.opset < 6) return;  // Tile-1 took a scalar count and an axis
  const TensorProto* t = n.input_size() > 1 ? s.constant(n.input(1)) : nullptr;
  const auto repeats = t ? int64_values(*t) : std::nullopt;
  if (!repeats) return;
  for (int64_t v : *repeats)
    if (v < 0) reject(label(n) + ": repeats " + ints_text(*repeats) + " hold " + std::to_string(v));
  const Known x = input_shape(n, s, 0);
  if (x.ranked && static_cast<int64_t>(repeats->size()) != x.rank())
    reject(label(n) + ": repeats " + ints_text(*repeats) + " has " + std::to_string(repeats->size()) +
           " entries, input '" + n.input(0) + "' " + dims_text(x.dims) + " has rank " + std::to_string(x.rank()));
}

// Gather: constant indices inside [-d, d - 1] of the gathered axis.
void check_gather_indices(const NodeProto& n, const Scope& s) {
  const Known x = input_shape(n, s, 0);
  const TensorProto* t = n.input_size() > 1 ? s.constant(n.input(1)) : nullptr;
  if (!t || !x.ranked) return;
  const int64_t axis = int_attribute(n, "axis", 0), a = axis < 0 ? axis + x.rank() : axis;
  if (!x.dim_known(a)) return;
  const auto indices = flat_ints(*t);
  if (!indices) return;
  const int64_t d = x.dim(a);
  for (int64_t v : *indices)
    if (v < -d || v >= d)
      reject(label(n) + ": index " + std::to_string(v) + " of constant '" + n.input(1) + "' is outside axis " +
             std::to_string(axis) + " of input '" + n.input(0) + "' " + dims_text(x.dims) + " (valid: " +
             std::to_string(-d) + ".." + std::to_string(d - 1) + ")");
}

// QuantizeLinear / DequantizeLinear: a zero point with as many elements as the scale; a per-axis
// scale (1-D, more than one element) as long as the axis; a blocked scale (block_size > 0) of the
// input's rank with ceil(dim / block_size) along the axis and the input's dims elsewhere.
void check_quantize(const NodeProto& n, const Scope& s) {
  const Known x = input_shape(n, s, 0), scale = input_shape(n, s, 1), zp = input_shape(n, s, 2);
  const std::string st = "scale '" + input_name(n, 1) + "' " + dims_text(scale.dims);
  if (scale.full() && zp.full() && checked_product(scale.dims) != checked_product(zp.dims))
    reject(label(n) + ": zero point '" + n.input(2) + "' " + dims_text(zp.dims) + " and " + st +
           " differ in element count");
  if (!x.ranked || !scale.ranked) return;
  const int64_t axis = int_attribute(n, "axis", 1), block = int_attribute(n, "block_size", 0);
  const int64_t a = axis < 0 ? axis + x.rank() : axis;
  const std::string xt = "input '" + n.input(0) + "' " + dims_text(x.dims);
  if (block < 0) reject(label(n) + ": block_size " + std::to_string(block) + " is negative");
  const bool per_tensor = scale.rank() == 0 || (scale.rank() == 1 && scale.dim(0) == 1);
  if (per_tensor || (block == 0 && scale.rank() == 1 && !scale.dim_known(0))) return;
  check_axis(n, s, 0, axis, false);
  if (block == 0) {
    if (scale.rank() != 1)
      reject(label(n) + ": " + st + " is neither a scalar nor 1-D (per axis), and block_size is 0");
    if (x.dim_known(a) && scale.dim(0) != x.dim(a))
      reject(label(n) + ": per-axis " + st + " has " + std::to_string(scale.dim(0)) + " elements, axis " +
             std::to_string(axis) + " of " + xt + " is " + std::to_string(x.dim(a)));
    return;
  }
  if (scale.rank() != x.rank())
    reject(label(n) + ": blocked " + st + " must have the rank of " + xt);
  for (int64_t d = 0; d < x.rank(); ++d) {
    if (!x.dim_known(d) || !scale.dim_known(d)) continue;
    const int64_t want = d == a ? (x.dim(d) + block - 1) / block : x.dim(d);
    if (scale.dim(d) != want)
      reject(label(n) + ": blocked " + st + " has dim " + std::to_string(d) + " = " + std::to_string(scale.dim(d)) +
             ", expected " + std::to_string(want) + " for " + xt + " and block_size " + std::to_string(block));
  }
}

void check_node(const NodeProto& n, const Scope& s) {
  if (!n.domain().empty() && n.domain() != "ai.onnx") return;
  const std::string& op = n.op_type();
  if (auto it = kAxisOps.find(op); it != kAxisOps.end()) {
    const auto* attr = find_attribute(n, "axis");
    if (attr) check_axis(n, s, 0, attr->i(), false);
    else if (it->second) check_axis(n, s, 0, *it->second, false);
    if (op == "Split") check_split(n, s);
    if (op == "Gather") check_gather_indices(n, s);
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
  } else if (kBroadcastOps.count(op)) {
    check_broadcast(n, s);
  } else if (op == "MatMul" || op == "MatMulInteger") {
    check_matmul(n, s);
  } else if (op == "Gemm") {
    check_gemm(n, s);
  } else if (op == "Conv" || op == "ConvInteger" || op == "QLinearConv") {
    check_conv(n, s);
  } else if (op == "BatchNormalization") {
    check_batch_norm(n, s);
  } else if (op == "Transpose") {
    check_transpose(n, s);
  } else if (op == "Slice") {
    check_slice(n, s);
  } else if (op == "Tile") {
    check_tile(n, s);
  } else if (op == "QuantizeLinear" || op == "DequantizeLinear") {
    check_quantize(n, s);
  }
}

void check_graph(const GraphProto& g, const Scope* parent, int64_t opset) {
  Scope s;
  s.parent = parent;
  s.opset = opset;
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
      } else if (const auto* one = find_attribute(n, "value_int"); one && one->type() == onnx::AttributeProto::INT) {
        TensorProto& t = s.made.emplace_back();  // a scalar
        t.set_data_type(TensorProto::INT64);
        t.add_int64_data(one->i());
        s.constants[n.output(0)] = &t;
        s.shapes[n.output(0)] = from_dims(t.dims());
      }
    }
    check_node(n, s);
    for (const auto& a : n.attribute()) {
      if (a.has_g()) check_graph(a.g(), &s, opset);
      for (const auto& sub : a.graphs()) check_graph(sub, &s, opset);
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
  int64_t opset = 0;
  for (const auto& o : model.opset_import())
    if (o.domain().empty() || o.domain() == "ai.onnx") opset = o.version();
  check_graph(*g, nullptr, opset);
}

}  // namespace compress
