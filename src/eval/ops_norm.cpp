// Normalization kernels beside BatchNormalization and LayerNormalization (ops_nn.cpp): LRN,
// InstanceNormalization, MeanVarianceNormalization, LpNormalization. Statistics in double.
#include <algorithm>
#include <cmath>
#include <string>

#include "eval/ops.h"

namespace compress::eval {

namespace {

void need_float_x(const OpCall& c, const Tensor& x) {
  if (!x.is_float()) c.bad("input X must be a float tensor");
}

// N x C x rest view of X (rank >= 2 checked).
struct Nc {
  int64_t n = 0, ch = 0, rest = 0;
};
Nc nc_view(const OpCall& c, const Tensor& x) {
  if (x.dims.size() < 2) c.bad("input X must have rank >= 2 (N x C x ...)");
  Nc v{x.dims[0], x.dims[1], 0};
  v.rest = v.n * v.ch != 0 ? x.numel() / (v.n * v.ch) : 0;
  return v;
}

}  // namespace

void op_LRN(OpCall& c) {
  const Tensor& x = c.input(0);
  need_float_x(c, x);
  const Nc v = nc_view(c, x);
  const int64_t size = c.attr_i("size", 0);
  if (size < 1) c.bad("size must be a positive odd number");
  const double alpha = c.attr_f("alpha", 1e-4f), beta = c.attr_f("beta", 0.75f), bias = c.attr_f("bias", 1.0f);
  const int64_t before = (size - 1) / 2, after = size - 1 - before;  // floor and ceil of (size - 1) / 2
  Tensor& o = c.out[0];
  o = x;
  for (int64_t b = 0; b < v.n; ++b)
    for (int64_t k = 0; k < v.ch; ++k)
      for (int64_t j = 0; j < v.rest; ++j) {
        double sum = 0;
        for (int64_t q = std::max<int64_t>(0, k - before); q <= std::min(v.ch - 1, k + after); ++q) {
          const double e = x.f[static_cast<size_t>((b * v.ch + q) * v.rest + j)];
          sum += e * e;
        }
        const size_t at = static_cast<size_t>((b * v.ch + k) * v.rest + j);
        o.f[at] = static_cast<float>(x.f[at] / std::pow(bias + alpha / static_cast<double>(size) * sum, beta));
      }
  round_to_dtype(o);
}

void op_InstanceNormalization(OpCall& c) {
  const Tensor& x = c.input(0);
  need_float_x(c, x);
  const Nc v = nc_view(c, x);
  const auto scale = as_floats(c.input(1));
  const auto bias = as_floats(c.input(2));
  if (static_cast<int64_t>(scale.size()) != v.ch || static_cast<int64_t>(bias.size()) != v.ch)
    c.bad("scale and B need one value per channel (" + std::to_string(v.ch) + ")");
  const double eps = c.attr_f("epsilon", 1e-5f);
  Tensor& o = c.out[0];
  o = x;
  for (int64_t b = 0; b < v.n; ++b)
    for (int64_t k = 0; k < v.ch; ++k) {
      float* p = o.f.data() + (b * v.ch + k) * v.rest;
      double mean = 0, var = 0;
      for (int64_t j = 0; j < v.rest; ++j) mean += p[j];
      mean /= static_cast<double>(std::max<int64_t>(v.rest, 1));
      for (int64_t j = 0; j < v.rest; ++j) var += (p[j] - mean) * (p[j] - mean);
      var /= static_cast<double>(std::max<int64_t>(v.rest, 1));
      const double a = scale[static_cast<size_t>(k)] / std::sqrt(var + eps);
      for (int64_t j = 0; j < v.rest; ++j) p[j] = static_cast<float>((p[j] - mean) * a + bias[static_cast<size_t>(k)]);
    }
  round_to_dtype(o);
}

// (X - mean) / (sqrt(E[X^2] - mean^2) + 1e-9) over `axes`, as the ONNX function body defines it.
void op_MeanVarianceNormalization(OpCall& c) {
  const Tensor& x = c.input(0);
  need_float_x(c, x);
  const int64_t rank = static_cast<int64_t>(x.dims.size());
  std::vector<bool> reduced(static_cast<size_t>(rank), false);
  for (int64_t a : c.attr_ints("axes", {0, 2, 3})) reduced[static_cast<size_t>(norm_axis(c, a, rank))] = true;
  std::vector<int64_t> kept(x.dims);
  for (int64_t k = 0; k < rank; ++k)
    if (reduced[static_cast<size_t>(k)]) kept[static_cast<size_t>(k)] = 1;
  const int64_t groups = numel_of(kept);
  const double count = groups ? static_cast<double>(x.numel()) / static_cast<double>(groups) : 1.0;
  // Input element -> group by its index with the reduced dims dropped.
  const auto in_strides = strides_of(x.dims), kept_strides = strides_of(kept);
  std::vector<int64_t> group_of(static_cast<size_t>(x.numel()));
  for (int64_t e = 0; e < x.numel(); ++e) {
    int64_t g = 0, rem = e;
    for (int64_t k = 0; k < rank; ++k) {
      const int64_t i = rem / in_strides[static_cast<size_t>(k)];
      rem %= in_strides[static_cast<size_t>(k)];
      if (!reduced[static_cast<size_t>(k)]) g += i * kept_strides[static_cast<size_t>(k)];
    }
    group_of[static_cast<size_t>(e)] = g;
  }
  std::vector<double> sum(static_cast<size_t>(groups)), sq(static_cast<size_t>(groups));
  for (int64_t e = 0; e < x.numel(); ++e) {
    const double v = x.f[static_cast<size_t>(e)];
    sum[static_cast<size_t>(group_of[static_cast<size_t>(e)])] += v;
    sq[static_cast<size_t>(group_of[static_cast<size_t>(e)])] += v * v;
  }
  Tensor& o = c.out[0];
  o = x;
  for (int64_t e = 0; e < x.numel(); ++e) {
    const auto g = static_cast<size_t>(group_of[static_cast<size_t>(e)]);
    const double mean = sum[g] / count;
    const double sd = std::sqrt(std::max(0.0, sq[g] / count - mean * mean));
    o.f[static_cast<size_t>(e)] = static_cast<float>((x.f[static_cast<size_t>(e)] - mean) / (sd + 1e-9));
  }
  round_to_dtype(o);
}

void op_LpNormalization(OpCall& c) {
  const Tensor& x = c.input(0);
  need_float_x(c, x);
  const int64_t rank = static_cast<int64_t>(x.dims.size());
  const int64_t axis = norm_axis(c, c.attr_i("axis", -1), rank);
  const int64_t p = c.attr_i("p", 2);
  if (p != 1 && p != 2) c.bad("p must be 1 or 2");
  int64_t outer = 1, inner = 1;
  for (int64_t k = 0; k < axis; ++k) outer *= x.dims[static_cast<size_t>(k)];
  for (int64_t k = axis + 1; k < rank; ++k) inner *= x.dims[static_cast<size_t>(k)];
  const int64_t len = x.dims[static_cast<size_t>(axis)];
  Tensor& o = c.out[0];
  o = x;
  for (int64_t a = 0; a < outer; ++a)
    for (int64_t b = 0; b < inner; ++b) {
      float* q = o.f.data() + a * len * inner + b;
      double norm = 0;
      for (int64_t k = 0; k < len; ++k) norm += p == 1 ? std::fabs(q[k * inner]) : static_cast<double>(q[k * inner]) * q[k * inner];
      if (p == 2) norm = std::sqrt(norm);
      for (int64_t k = 0; k < len; ++k) q[k * inner] = norm == 0 ? 0.0f : static_cast<float>(q[k * inner] / norm);
    }
  round_to_dtype(o);
}

}  // namespace compress::eval
