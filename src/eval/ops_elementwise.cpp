// Element-wise, activation, cast, softmax and reduction kernels.
#include <algorithm>
#include <cmath>
#include <limits>

#include "eval/broadcast.h"
#include "eval/kernels.h"
#include "eval/ops.h"

namespace compress::eval {

namespace {

// out = f(a, b) with broadcasting; float inputs when `a` is float (b converted), else int64 math.
template <class FF, class FI>
void arith(OpCall& call, const Tensor& a, const Tensor& b, Tensor& o, FF ff, FI fi) {
  o.dtype = a.dtype;
  o.dims = broadcast_dims(call, a.dims, b.dims);
  const int64_t n = numel_of(o.dims);
  if (a.is_float()) {
    const std::vector<float> bconv = b.is_float() ? std::vector<float>{} : as_floats(b);
    const float* pa = a.f.data();
    const float* pb = b.is_float() ? b.f.data() : bconv.data();
    o.f.resize(static_cast<size_t>(n));
    float* po = o.f.data();
    for_each_broadcast_run<2>(o.dims, {&a.dims, &b.dims}, kernels::reference_mode(),
                              [&](int64_t k, int64_t len, const std::array<int64_t, 2>& off, const std::array<int64_t, 2>& st) {
                                const float* x = pa + off[0];
                                const float* y = pb + off[1];
                                float* z = po + k;
                                if (st[0] && st[1]) {
                                  for (int64_t j = 0; j < len; ++j) z[j] = ff(x[j], y[j]);
                                } else if (st[0]) {
                                  const float yv = *y;
                                  for (int64_t j = 0; j < len; ++j) z[j] = ff(x[j], yv);
                                } else if (st[1]) {
                                  const float xv = *x;
                                  for (int64_t j = 0; j < len; ++j) z[j] = ff(xv, y[j]);
                                } else {
                                  const float v = ff(*x, *y);
                                  for (int64_t j = 0; j < len; ++j) z[j] = v;
                                }
                              });
    round_to_dtype(o);
  } else {
    const std::vector<int64_t> bconv = b.is_float() ? as_ints(b) : std::vector<int64_t>{};
    const int64_t* pa = a.i.data();
    const int64_t* pb = b.is_float() ? bconv.data() : b.i.data();
    o.i.resize(static_cast<size_t>(n));
    int64_t* po = o.i.data();
    for_each_broadcast<2>(o.dims, {&a.dims, &b.dims}, [&](int64_t k, const std::array<int64_t, 2>& off) {
      po[k] = wrap_int(fi(pa[off[0]], pb[off[1]]), o.dtype);
    });
  }
}

template <class FF, class FI>
void binary(OpCall& call, FF ff, FI fi) {
  arith(call, call.input(0), call.input(1), call.out[0], ff, fi);
}

// Folds Max/Min/Sum over any number of inputs.
template <class FF, class FI>
void variadic(OpCall& call, FF ff, FI fi) {
  if (call.n_in() == 0) call.bad("needs at least one input");
  Tensor acc = call.input(0);
  for (size_t k = 1; k < call.n_in(); ++k) {
    Tensor next;
    arith(call, acc, call.input(k), next, ff, fi);
    acc = std::move(next);
  }
  call.out[0] = std::move(acc);
}

template <class F>
void compare(OpCall& call, F f) {
  const Tensor& a = call.input(0);
  const Tensor& b = call.input(1);
  Tensor& o = call.out[0];
  o.dtype = TP::BOOL;
  o.dims = broadcast_dims(call, a.dims, b.dims);
  o.i.resize(static_cast<size_t>(numel_of(o.dims)));
  int64_t* po = o.i.data();
  if (!a.is_float() && !b.is_float()) {
    for_each_broadcast<2>(o.dims, {&a.dims, &b.dims},
                          [&](int64_t k, const std::array<int64_t, 2>& off) { po[k] = f(a.i[off[0]], b.i[off[1]]); });
  } else {
    for_each_broadcast<2>(o.dims, {&a.dims, &b.dims},
                          [&](int64_t k, const std::array<int64_t, 2>& off) { po[k] = f(a.at(off[0]), b.at(off[1])); });
  }
}

// Float-only unary op, keeps the dtype (float16 re-rounded).
template <class F>
void unary_f(OpCall& call, F f) {
  const Tensor& x = call.input(0);
  if (!x.is_float()) call.unsupported("integer input (" + std::to_string(x.dtype) + ") not supported");
  Tensor& o = call.out[0];
  o.dtype = x.dtype;
  o.dims = x.dims;
  o.f.resize(x.f.size());
  for (size_t k = 0; k < x.f.size(); ++k) o.f[k] = f(x.f[k]);
  round_to_dtype(o);
}

// Unary op defined for floats and integers.
template <class FF, class FI>
void unary_any(OpCall& call, FF ff, FI fi) {
  const Tensor& x = call.input(0);
  if (x.is_float()) return unary_f(call, ff);
  Tensor& o = call.out[0];
  o.dtype = x.dtype;
  o.dims = x.dims;
  o.i.resize(x.i.size());
  for (size_t k = 0; k < x.i.size(); ++k) o.i[k] = wrap_int(fi(x.i[k]), x.dtype);
}

// Integer arithmetic wraps in two's complement as the runtimes' does; signed overflow in C++ is
// undefined, so it is done in uint64.
int64_t wrapping_add(int64_t a, int64_t b) { return static_cast<int64_t>(static_cast<uint64_t>(a) + static_cast<uint64_t>(b)); }
int64_t wrapping_sub(int64_t a, int64_t b) { return static_cast<int64_t>(static_cast<uint64_t>(a) - static_cast<uint64_t>(b)); }
int64_t wrapping_mul(int64_t a, int64_t b) { return static_cast<int64_t>(static_cast<uint64_t>(a) * static_cast<uint64_t>(b)); }
// INT64_MIN / -1 and INT64_MIN % -1 overflow too (a division by zero gives 0 here).
bool division_overflows(int64_t a, int64_t b) { return b == 0 || (a == std::numeric_limits<int64_t>::min() && b == -1); }

}  // namespace

void op_Add(OpCall& c) { binary(c, [](float a, float b) { return a + b; }, wrapping_add); }
void op_Sub(OpCall& c) { binary(c, [](float a, float b) { return a - b; }, wrapping_sub); }
void op_Mul(OpCall& c) { binary(c, [](float a, float b) { return a * b; }, wrapping_mul); }
void op_Div(OpCall& c) {
  binary(c, [](float a, float b) { return a / b; },
         [](int64_t a, int64_t b) { return division_overflows(a, b) ? (b == 0 ? int64_t{0} : wrapping_sub(0, a)) : a / b; });
}
void op_Pow(OpCall& c) {
  binary(c, [](float a, float b) { return b == 2.0f ? a * a : std::pow(a, b); },
         [](int64_t a, int64_t b) { return to_int64_saturated(std::pow(static_cast<double>(a), static_cast<double>(b))); });
}
void op_Mod(OpCall& c) {
  if (c.attr_i("fmod", 0)) {
    binary(c, [](float a, float b) { return std::fmod(a, b); }, [](int64_t a, int64_t b) { return division_overflows(a, b) ? int64_t{0} : a % b; });
  } else {
    binary(c,
           [](float a, float b) {
             float m = std::fmod(a, b);
             return (m != 0 && ((m < 0) != (b < 0))) ? m + b : m;
           },
           [](int64_t a, int64_t b) {
             if (division_overflows(a, b)) return int64_t{0};
             int64_t m = a % b;
             return (m != 0 && ((m < 0) != (b < 0))) ? m + b : m;
           });
  }
}
void op_Max(OpCall& c) {
  variadic(c, [](float a, float b) { return std::isnan(a) || std::isnan(b) ? NAN : std::max(a, b); },
           [](int64_t a, int64_t b) { return std::max(a, b); });
}
void op_Min(OpCall& c) {
  variadic(c, [](float a, float b) { return std::isnan(a) || std::isnan(b) ? NAN : std::min(a, b); },
           [](int64_t a, int64_t b) { return std::min(a, b); });
}
void op_Sum(OpCall& c) { variadic(c, [](float a, float b) { return a + b; }, wrapping_add); }
void op_Mean(OpCall& c) {
  op_Sum(c);
  const float n = static_cast<float>(c.n_in());
  for (auto& v : c.out[0].f) v /= n;
}

void op_Equal(OpCall& c) { compare(c, [](auto a, auto b) { return a == b; }); }
void op_Less(OpCall& c) { compare(c, [](auto a, auto b) { return a < b; }); }
void op_Greater(OpCall& c) { compare(c, [](auto a, auto b) { return a > b; }); }
void op_LessOrEqual(OpCall& c) { compare(c, [](auto a, auto b) { return a <= b; }); }
void op_GreaterOrEqual(OpCall& c) { compare(c, [](auto a, auto b) { return a >= b; }); }
void op_And(OpCall& c) { compare(c, [](auto a, auto b) { return a && b; }); }
void op_Or(OpCall& c) { compare(c, [](auto a, auto b) { return a || b; }); }
void op_Xor(OpCall& c) { compare(c, [](auto a, auto b) { return (a != 0) != (b != 0); }); }

void op_Not(OpCall& c) {
  const Tensor& x = c.input(0);
  Tensor& o = c.out[0];
  o.dtype = TP::BOOL;
  o.dims = x.dims;
  o.i.resize(x.i.size());
  for (size_t k = 0; k < x.i.size(); ++k) o.i[k] = x.i[k] == 0;
}

void op_Where(OpCall& c) {
  const Tensor& cond = c.input(0);
  const Tensor& x = c.input(1);
  const Tensor& y = c.input(2);
  // The condition is read as integers and Y through X's storage: anything else reads past a vector.
  if (cond.is_float()) c.bad("condition must be bool, not a float type");
  if (x.dtype != y.dtype) c.bad("X and Y differ in type");
  Tensor& o = c.out[0];
  o.dtype = x.dtype;
  o.dims = broadcast_dims(c, broadcast_dims(c, cond.dims, x.dims), y.dims);
  const auto n = static_cast<size_t>(numel_of(o.dims));
  if (x.is_float()) {
    o.f.resize(n);
    for_each_broadcast<3>(o.dims, {&cond.dims, &x.dims, &y.dims}, [&](int64_t k, const std::array<int64_t, 3>& off) {
      o.f[k] = cond.i[off[0]] ? x.f[off[1]] : y.f[off[2]];
    });
  } else {
    o.i.resize(n);
    for_each_broadcast<3>(o.dims, {&cond.dims, &x.dims, &y.dims}, [&](int64_t k, const std::array<int64_t, 3>& off) {
      o.i[k] = cond.i[off[0]] ? x.i[off[1]] : y.i[off[2]];
    });
  }
}

void op_Relu(OpCall& c) {
  unary_any(c, [](float v) { return v > 0 ? v : 0.0f; }, [](int64_t v) { return v > 0 ? v : 0; });
}
void op_LeakyRelu(OpCall& c) {
  const float alpha = c.attr_f("alpha", 0.01f);
  unary_f(c, [alpha](float v) { return v >= 0 ? v : alpha * v; });
}
void op_Sigmoid(OpCall& c) {
  unary_f(c, [](float v) { return v >= 0 ? 1.0f / (1.0f + std::exp(-v)) : std::exp(v) / (1.0f + std::exp(v)); });
}
void op_Tanh(OpCall& c) { unary_f(c, [](float v) { return std::tanh(v); }); }
void op_Erf(OpCall& c) { unary_f(c, [](float v) { return std::erf(v); }); }
void op_Exp(OpCall& c) { unary_f(c, [](float v) { return std::exp(v); }); }
void op_Log(OpCall& c) { unary_f(c, [](float v) { return std::log(v); }); }
void op_Sqrt(OpCall& c) { unary_f(c, [](float v) { return std::sqrt(v); }); }
void op_Sin(OpCall& c) { unary_f(c, [](float v) { return std::sin(v); }); }
void op_Cos(OpCall& c) { unary_f(c, [](float v) { return std::cos(v); }); }
void op_Reciprocal(OpCall& c) { unary_f(c, [](float v) { return 1.0f / v; }); }
void op_Floor(OpCall& c) { unary_f(c, [](float v) { return std::floor(v); }); }
void op_Ceil(OpCall& c) { unary_f(c, [](float v) { return std::ceil(v); }); }
void op_Round(OpCall& c) { unary_f(c, [](float v) { return std::nearbyint(v); }); }
void op_Softsign(OpCall& c) { unary_f(c, [](float v) { return v / (1.0f + std::fabs(v)); }); }
void op_Softplus(OpCall& c) {
  unary_f(c, [](float v) { return v > 0 ? v + std::log1p(std::exp(-v)) : std::log1p(std::exp(v)); });
}
void op_Neg(OpCall& c) { unary_any(c, [](float v) { return -v; }, [](int64_t v) { return wrapping_sub(0, v); }); }
void op_Abs(OpCall& c) {
  unary_any(c, [](float v) { return std::fabs(v); }, [](int64_t v) { return v < 0 ? wrapping_sub(0, v) : v; });
}
void op_Sign(OpCall& c) {
  unary_any(c, [](float v) { return v > 0 ? 1.0f : (v < 0 ? -1.0f : 0.0f); },
            [](int64_t v) { return int64_t{v > 0 ? 1 : (v < 0 ? -1 : 0)}; });
}
void op_Elu(OpCall& c) {
  const float alpha = c.attr_f("alpha", 1.0f);
  unary_f(c, [alpha](float v) { return v >= 0 ? v : alpha * (std::exp(v) - 1.0f); });
}
void op_Selu(OpCall& c) {
  const float alpha = c.attr_f("alpha", 1.67326319217681884765625f);
  const float gamma = c.attr_f("gamma", 1.05070102214813232421875f);
  unary_f(c, [=](float v) { return v > 0 ? gamma * v : gamma * (alpha * std::exp(v) - alpha); });
}
void op_HardSigmoid(OpCall& c) {
  const float alpha = c.attr_f("alpha", 0.2f), beta = c.attr_f("beta", 0.5f);
  unary_f(c, [=](float v) { return std::max(0.0f, std::min(1.0f, alpha * v + beta)); });
}
void op_HardSwish(OpCall& c) {
  unary_f(c, [](float v) { return v * std::max(0.0f, std::min(1.0f, v / 6.0f + 0.5f)); });
}

void op_PRelu(OpCall& c) {
  // Slope broadcasts to X (unidirectionally: a per-channel slope [C, 1, 1] is the usual form).
  if (broadcast_dims(c, c.input(0).dims, c.input(1).dims) != c.input(0).dims) c.bad("slope does not broadcast to X");
  binary(c, [](float x, float s) { return x < 0 ? x * s : x; }, [](int64_t x, int64_t s) { return x < 0 ? x * s : x; });
}
void op_ThresholdedRelu(OpCall& c) {
  const float alpha = c.attr_f("alpha", 1.0f);
  unary_f(c, [alpha](float v) { return v > alpha ? v : 0.0f; });
}
void op_Celu(OpCall& c) {
  const float alpha = c.attr_f("alpha", 1.0f);
  if (alpha == 0.0f) c.bad("alpha must not be 0");
  unary_f(c, [alpha](float v) { return std::max(0.0f, v) + std::min(0.0f, alpha * (std::exp(v / alpha) - 1.0f)); });
}
void op_Shrink(OpCall& c) {
  const float bias = c.attr_f("bias", 0.0f), lambd = c.attr_f("lambd", 0.5f);
  unary_any(c, [=](float v) { return v < -lambd ? v + bias : (v > lambd ? v - bias : 0.0f); },
            [=](int64_t v) {
              const auto f = static_cast<float>(v);
              return to_int64_saturated(f < -lambd ? f + bias : (f > lambd ? f - bias : 0.0f));
            });
}
void op_Tan(OpCall& c) { unary_f(c, [](float v) { return std::tan(v); }); }
void op_Asin(OpCall& c) { unary_f(c, [](float v) { return std::asin(v); }); }
void op_Acos(OpCall& c) { unary_f(c, [](float v) { return std::acos(v); }); }
void op_Atan(OpCall& c) { unary_f(c, [](float v) { return std::atan(v); }); }
void op_Sinh(OpCall& c) { unary_f(c, [](float v) { return std::sinh(v); }); }
void op_Cosh(OpCall& c) { unary_f(c, [](float v) { return std::cosh(v); }); }
void op_Asinh(OpCall& c) { unary_f(c, [](float v) { return std::asinh(v); }); }
void op_Acosh(OpCall& c) { unary_f(c, [](float v) { return std::acosh(v); }); }
void op_Atanh(OpCall& c) { unary_f(c, [](float v) { return std::atanh(v); }); }

namespace {

// Bool output of a float test on each element.
template <class F>
void float_test(OpCall& c, F f) {
  const Tensor& x = c.input(0);
  if (!x.is_float()) c.bad("input must be a float tensor");
  c.out[0] = Tensor::ints(x.dims, std::vector<int64_t>(x.f.size()), TP::BOOL);
  for (size_t k = 0; k < x.f.size(); ++k) c.out[0].i[k] = f(x.f[k]);
}

}  // namespace

void op_IsNaN(OpCall& c) { float_test(c, [](float v) { return std::isnan(v); }); }
void op_IsInf(OpCall& c) {
  const bool neg = c.attr_i("detect_negative", 1) != 0, pos = c.attr_i("detect_positive", 1) != 0;
  float_test(c, [=](float v) { return std::isinf(v) && (v > 0 ? pos : neg); });
}

// Inference semantics: the input passes through and the mask is all true. Training mode with a
// ratio above 0 draws random numbers, which no reference comparison can reproduce.
void op_Dropout(OpCall& c) {
  const bool ratio_zero = c.has(1) && c.input(1).numel() == 1 && c.input(1).at(0) == 0.0;
  if (c.has(2) && !c.input(2).is_float() && c.input(2).numel() == 1 && c.input(2).i[0] != 0 && !ratio_zero)
    c.unsupported("training_mode=1 (random dropout)");
  if (c.attr_i("is_test", 1) == 0 && c.opset < 7) c.unsupported("is_test=0 (random dropout)");
  const Tensor& x = c.input(0);
  if (c.out.size() > 1) c.out[1] = Tensor::ints(x.dims, std::vector<int64_t>(static_cast<size_t>(x.numel()), 1), TP::BOOL);
  c.out[0] = x;
}

void op_Clip(OpCall& c) {
  const Tensor& x = c.input(0);
  // min and max are read as element 0 of X's storage.
  for (size_t k : {1, 2})
    if (c.has(k) && (c.input(k).numel() != 1 || c.input(k).is_float() != x.is_float()))
      c.bad(std::string(k == 1 ? "min" : "max") + " must be one value of X's type");
  if (x.is_float()) {
    float lo = -std::numeric_limits<float>::infinity(), hi = std::numeric_limits<float>::infinity();
    if (c.opset < 11) {
      lo = c.attr_f("min", lo);
      hi = c.attr_f("max", hi);
    } else {
      if (c.has(1)) lo = c.input(1).f[0];
      if (c.has(2)) hi = c.input(2).f[0];
    }
    unary_f(c, [=](float v) { return std::isnan(v) ? v : std::min(hi, std::max(lo, v)); });
  } else {
    int64_t lo = std::numeric_limits<int64_t>::min(), hi = std::numeric_limits<int64_t>::max();
    if (c.has(1)) lo = c.input(1).i[0];
    if (c.has(2)) hi = c.input(2).i[0];
    unary_any(c, [](float v) { return v; }, [=](int64_t v) { return std::min(hi, std::max(lo, v)); });
  }
}

void op_Cast(OpCall& c) {
  const Tensor& x = c.input(0);
  const auto to = static_cast<int32_t>(c.attr_i("to", TP::FLOAT));
  Tensor& o = c.out[0];
  o.dtype = to;
  o.dims = x.dims;
  if (to == TP::STRING) c.unsupported("cast to string");
  if (o.is_float()) {
    o.f = as_floats(x);
    round_to_dtype(o);
  } else if (x.is_float()) {
    o.i.resize(x.f.size());
    for (size_t k = 0; k < x.f.size(); ++k) {
      const float v = x.f[k];
      if (to == TP::BOOL) o.i[k] = v != 0.0f;
      else if (std::isnan(v)) o.i[k] = to == TP::INT64 ? std::numeric_limits<int64_t>::min() : 0;
      else o.i[k] = wrap_int(to_int64_saturated(v), to);
    }
  } else {
    o.i.resize(x.i.size());
    for (size_t k = 0; k < x.i.size(); ++k) o.i[k] = wrap_int(x.i[k], to);
  }
}

void op_CastLike(OpCall& c) {
  // Cast's kernel with `to` taken from the second input's type.
  onnx::NodeProto node = c.node;
  auto* to = node.add_attribute();
  to->set_name("to");
  to->set_type(onnx::AttributeProto::INT);
  to->set_i(c.input(1).dtype);
  OpCall cast{node, {c.in[0]}, std::vector<Tensor>(1), c.opset, {}};
  op_Cast(cast);
  c.out[0] = std::move(cast.out[0]);
}

void op_Identity(OpCall& c) { c.out[0] = c.input(0); }

namespace {

// Softmax over groups: `outer` x `axis_len` x `inner` view, reduced along the middle.
void softmax_3d(std::vector<float>& v, int64_t outer, int64_t len, int64_t inner, bool log) {
  if (v.empty()) return;  // no group to normalize (and no storage to point into)
  for (int64_t o = 0; o < outer; ++o) {
    for (int64_t in = 0; in < inner; ++in) {
      float* p = v.data() + o * len * inner + in;
      float m = -std::numeric_limits<float>::infinity();
      for (int64_t k = 0; k < len; ++k) m = std::max(m, p[k * inner]);
      double sum = 0;
      for (int64_t k = 0; k < len; ++k) sum += std::exp(static_cast<double>(p[k * inner] - m));
      const float ls = static_cast<float>(std::log(sum));
      for (int64_t k = 0; k < len; ++k) {
        const float z = p[k * inner] - m;
        p[k * inner] = log ? z - ls : static_cast<float>(std::exp(static_cast<double>(z)) / sum);
      }
    }
  }
}

void softmax(OpCall& c, bool log) {
  const Tensor& x = c.input(0);
  if (!x.is_float()) c.bad("input must be a float tensor");  // read through .f below
  const int64_t rank = static_cast<int64_t>(x.dims.size());
  Tensor& o = c.out[0];
  o = x;
  const int64_t axis = norm_axis(c, c.attr_i("axis", c.opset < 13 ? 1 : -1), rank);
  int64_t outer = 1, len = 1, inner = 1;
  for (int64_t k = 0; k < rank; ++k) {
    if (k < axis) outer *= x.dims[k];
    else if (c.opset < 13 || k == axis) len *= x.dims[k];
    else inner *= x.dims[k];
  }
  softmax_3d(o.f, outer, len, inner, log);
  round_to_dtype(o);
}

enum class Reduce { kMean, kMax, kMin, kSum, kProd, kL1, kL2, kSumSquare, kLogSum, kLogSumExp };

void reduce(OpCall& c, Reduce kind) {
  const Tensor& x = c.input(0);
  const int64_t rank = static_cast<int64_t>(x.dims.size());
  std::vector<int64_t> axes;
  const bool axes_input = c.has(1);
  if (axes_input) axes = as_ints(c.input(1));
  else axes = c.attr_ints("axes");
  const bool keepdims = c.attr_i("keepdims", 1) != 0;
  if (axes.empty() && (axes_input || c.attr("axes") == nullptr) && c.attr_i("noop_with_empty_axes", 0)) {
    c.out[0] = x;
    return;
  }
  std::vector<bool> reduced(static_cast<size_t>(rank), axes.empty());
  for (auto a : axes) reduced[static_cast<size_t>(norm_axis(c, a, rank))] = true;
  std::vector<int64_t> out_dims, kept_dims(static_cast<size_t>(rank));
  for (int64_t k = 0; k < rank; ++k) {
    kept_dims[k] = reduced[k] ? 1 : x.dims[k];
    if (!reduced[k]) out_dims.push_back(x.dims[k]);
    else if (keepdims) out_dims.push_back(1);
  }
  const int64_t n_out = numel_of(kept_dims);
  const int64_t n_in = x.numel();
  const int64_t count = n_out ? n_in / std::max<int64_t>(n_out, 1) : 0;
  std::vector<double> acc(static_cast<size_t>(n_out));
  const double init = kind == Reduce::kMax   ? -std::numeric_limits<double>::infinity()
                      : kind == Reduce::kMin ? std::numeric_limits<double>::infinity()
                      : kind == Reduce::kProd ? 1.0
                                              : 0.0;
  std::fill(acc.begin(), acc.end(), init);
  // Input element -> output element by broadcasting the kept shape against the input.
  for_each_broadcast<1>(x.dims, {&kept_dims}, [&](int64_t k, const std::array<int64_t, 1>& off) {
    const double v = x.at(k);
    double& a = acc[static_cast<size_t>(off[0])];
    switch (kind) {
      case Reduce::kMax: a = std::max(a, v); break;
      case Reduce::kMin: a = std::min(a, v); break;
      case Reduce::kProd: a *= v; break;
      case Reduce::kL1: a += std::fabs(v); break;
      case Reduce::kL2:
      case Reduce::kSumSquare: a += v * v; break;
      case Reduce::kLogSumExp: a += std::exp(v); break;
      default: a += v; break;
    }
  });
  for (auto& a : acc) {
    if (kind == Reduce::kMean) a /= static_cast<double>(count);
    else if (kind == Reduce::kL2) a = std::sqrt(a);
    else if (kind == Reduce::kLogSum || kind == Reduce::kLogSumExp) a = std::log(a);
  }
  Tensor& o = c.out[0];
  o.dtype = x.dtype;
  o.dims = out_dims;
  if (x.is_float()) {
    o.f.assign(acc.begin(), acc.end());
    round_to_dtype(o);
  } else {
    o.i.resize(acc.size());
    for (size_t k = 0; k < acc.size(); ++k) o.i[k] = to_int64_saturated(acc[k]);
  }
}

// 1 at the first maximum of each group, 0 elsewhere; groups as Softmax forms them for the opset.
void hardmax(OpCall& c) {
  const Tensor& x = c.input(0);
  if (!x.is_float()) c.bad("input must be a float tensor");
  const int64_t rank = static_cast<int64_t>(x.dims.size());
  const int64_t axis = norm_axis(c, c.attr_i("axis", c.opset < 13 ? 1 : -1), rank);
  int64_t outer = 1, len = 1, inner = 1;
  for (int64_t k = 0; k < rank; ++k) {
    if (k < axis) outer *= x.dims[k];
    else if (c.opset < 13 || k == axis) len *= x.dims[k];
    else inner *= x.dims[k];
  }
  Tensor& o = c.out[0];
  o = Tensor::zeros(x.dtype, x.dims);
  for (int64_t a = 0; a < outer; ++a)
    for (int64_t b = 0; b < inner; ++b) {
      if (len == 0) continue;
      const float* p = x.f.data() + a * len * inner + b;
      int64_t best = 0;
      for (int64_t k = 1; k < len; ++k)
        if (p[k * inner] > p[best * inner]) best = k;
      o.f[static_cast<size_t>((a * len + best) * inner + b)] = 1.0f;
    }
}

void arg(OpCall& c, bool max) {
  const Tensor& x = c.input(0);
  const int64_t rank = static_cast<int64_t>(x.dims.size());
  const int64_t axis = norm_axis(c, c.attr_i("axis", 0), rank);
  const bool keepdims = c.attr_i("keepdims", 1) != 0, last = c.attr_i("select_last_index", 0) != 0;
  int64_t outer = 1, inner = 1;
  for (int64_t k = 0; k < axis; ++k) outer *= x.dims[k];
  for (int64_t k = axis + 1; k < rank; ++k) inner *= x.dims[k];
  const int64_t len = x.dims[axis];
  if (len == 0) c.bad("axis " + std::to_string(axis) + " is empty: no element to pick");
  Tensor& o = c.out[0];
  o.dtype = TP::INT64;
  o.dims = x.dims;
  if (keepdims) o.dims[axis] = 1; else o.dims.erase(o.dims.begin() + axis);
  o.i.resize(static_cast<size_t>(outer * inner));
  for (int64_t a = 0; a < outer; ++a)
    for (int64_t b = 0; b < inner; ++b) {
      int64_t best = 0;
      double bv = x.at(a * len * inner + b);
      for (int64_t k = 1; k < len; ++k) {
        const double v = x.at((a * len + k) * inner + b);
        if (max ? (v > bv || (last && v == bv)) : (v < bv || (last && v == bv))) {
          bv = v;
          best = k;
        }
      }
      o.i[a * inner + b] = best;
    }
}

}  // namespace

void op_Softmax(OpCall& c) { softmax(c, false); }
void op_LogSoftmax(OpCall& c) { softmax(c, true); }
void op_ReduceMean(OpCall& c) { reduce(c, Reduce::kMean); }
void op_ReduceMax(OpCall& c) { reduce(c, Reduce::kMax); }
void op_ReduceMin(OpCall& c) { reduce(c, Reduce::kMin); }
void op_ReduceSum(OpCall& c) { reduce(c, Reduce::kSum); }
void op_ReduceProd(OpCall& c) { reduce(c, Reduce::kProd); }
void op_ReduceL1(OpCall& c) { reduce(c, Reduce::kL1); }
void op_ReduceL2(OpCall& c) { reduce(c, Reduce::kL2); }
void op_ReduceSumSquare(OpCall& c) { reduce(c, Reduce::kSumSquare); }
void op_ReduceLogSum(OpCall& c) { reduce(c, Reduce::kLogSum); }
void op_ReduceLogSumExp(OpCall& c) { reduce(c, Reduce::kLogSumExp); }
void op_Hardmax(OpCall& c) { hardmax(c); }
void op_ArgMax(OpCall& c) { arg(c, true); }
void op_ArgMin(OpCall& c) { arg(c, false); }

}  // namespace compress::eval
