// Quantization kernels: (De)QuantizeLinear (per tensor, per axis, blocked), DynamicQuantizeLinear,
// MatMulInteger / ConvInteger (exact integer products) and com.microsoft.MatMulNBits (4-bit blocks).
#include <Eigen/Dense>
#include <algorithm>
#include <cmath>
#include <optional>

#include "core/checked.h"
#include "eval/ops.h"

namespace compress::eval {

namespace {

// x / scale rounded half to even, bounded far inside int64 so that adding a zero point cannot
// overflow (the callers clamp to the 8-bit range next); NaN quantizes like 0.
int64_t rounded(double v) { return std::isnan(v) ? 0 : to_int64_saturated(std::clamp(std::nearbyint(v), -1e15, 1e15)); }

using MatI = Eigen::Matrix<int32_t, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using MatR = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

// For each element of x: the index of its scale / zero point (per tensor, per axis or blocked).
// The scale's and zero point's shapes are checked here: every index below is read unchecked.
std::vector<int64_t> param_index(const OpCall& c, const Tensor& x, const Tensor& scale, const Tensor* zp) {
  if (!scale.is_float()) c.bad("scale must be a float tensor");
  if (zp && zp->is_float()) c.unsupported("float8 zero points");
  if (zp && zp->numel() != scale.numel())
    c.bad("zero point has " + std::to_string(zp->numel()) + " elements, scale " + std::to_string(scale.numel()));
  const int64_t n = x.numel();
  std::vector<int64_t> index(static_cast<size_t>(n), 0);
  if (scale.numel() == 1 && scale.dims.size() <= 1) return index;
  const int64_t rank = static_cast<int64_t>(x.dims.size());
  const int64_t axis = norm_axis(c, c.attr_i("axis", 1), rank);
  const int64_t block = c.attr_i("block_size", 0);
  if (block < 0) c.bad("block_size " + std::to_string(block) + " is negative");
  if (block > 0) {
    if (scale.dims.size() != x.dims.size()) c.bad("blocked scale must have the input's rank");
    for (int64_t d = 0; d < rank; ++d) {
      const int64_t want = d == axis ? (x.dims[d] + block - 1) / block : x.dims[d];
      if (scale.dims[d] != want)
        c.bad("blocked scale has dim " + std::to_string(d) + " = " + std::to_string(scale.dims[d]) + ", expected " +
              std::to_string(want));
    }
    const auto xs = strides_of(x.dims);
    const auto ss = strides_of(scale.dims);
    for (int64_t k = 0; k < n; ++k) {
      int64_t rem = k, off = 0;
      for (int64_t d = 0; d < rank; ++d) {
        int64_t i = rem / xs[d];
        rem %= xs[d];
        if (d == axis) i /= block;
        off += i * ss[d];
      }
      index[k] = off;
    }
    return index;
  }
  if (scale.dims.size() != 1 || scale.dims[0] != x.dims[axis]) c.bad("per-axis scale must be 1-D of the axis length");
  int64_t inner = 1;
  for (int64_t d = axis + 1; d < rank; ++d) inner *= x.dims[d];
  for (int64_t k = 0; k < n; ++k) index[k] = (k / inner) % x.dims[axis];
  return index;
}

int64_t saturate(int64_t v, int32_t dtype) {
  int64_t lo = 0, hi = 255;
  switch (dtype) {
    case TP::INT8: lo = -128; hi = 127; break;
    case TP::UINT8: break;
    case TP::INT16: lo = -32768; hi = 32767; break;
    case TP::UINT16: hi = 65535; break;
    case TP::INT32: lo = INT32_MIN; hi = INT32_MAX; break;
    case 21: hi = 15; break;
    case 22: lo = -8; hi = 7; break;
    default: break;
  }
  return std::clamp(v, lo, hi);
}

// Integer operand minus its zero point (scalar, or per row of A / per column of B).
MatI centered(const int64_t* base, int64_t rows, int64_t cols, const Tensor* zp, bool per_row) {
  MatI m(rows, cols);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t k = 0; k < cols; ++k) {
      int64_t z = 0;
      if (zp && zp->numel() == 1) z = zp->i[0];
      else if (zp) z = zp->i[per_row ? r : k];
      m(r, k) = static_cast<int32_t>(base[r * cols + k] - z);
    }
  return m;
}

}  // namespace

void op_QuantizeLinear(OpCall& c) {
  const Tensor& x = c.input(0);
  const Tensor& scale = c.input(1);
  const Tensor* zp = c.has(2) ? &c.input(2) : nullptr;
  const auto xf = as_floats(x);
  const auto idx = param_index(c, x, scale, zp);
  const int32_t dtype = zp ? zp->dtype : static_cast<int32_t>(c.attr_i("output_dtype", TP::UINT8));
  Tensor& o = c.out[0];
  o.dtype = dtype;
  o.dims = x.dims;
  o.i.resize(xf.size());
  for (size_t k = 0; k < xf.size(); ++k) {
    const float s = scale.f[idx[k]];
    const int64_t z = zp ? zp->i[idx[k]] : 0;
    o.i[k] = saturate(rounded(xf[k] / s) + z, dtype);
  }
}

void op_DequantizeLinear(OpCall& c) {
  const Tensor& x = c.input(0);
  const Tensor& scale = c.input(1);
  const Tensor* zp = c.has(2) ? &c.input(2) : nullptr;
  if (x.is_float()) c.unsupported("float8 inputs");
  if (zp && zp->dtype != x.dtype) c.bad("zero point type differs from the input's");
  const auto idx = param_index(c, x, scale, zp);
  Tensor& o = c.out[0];
  o.dtype = scale.dtype;
  o.dims = x.dims;
  o.f.resize(x.i.size());
  for (size_t k = 0; k < x.i.size(); ++k) {
    const int64_t z = zp ? zp->i[idx[k]] : 0;
    o.f[k] = static_cast<float>(x.i[k] - z) * scale.f[idx[k]];
  }
  round_to_dtype(o);
}

void op_DynamicQuantizeLinear(OpCall& c) {
  const Tensor& x = c.input(0);
  float lo = 0.0f, hi = 0.0f;
  for (float v : x.f) {
    lo = std::min(lo, v);
    hi = std::max(hi, v);
  }
  const float scale = (hi - lo) / 255.0f;
  int64_t zp = 0;
  if (scale != 0.0f) zp = std::clamp<int64_t>(rounded(-lo / scale), 0, 255);
  Tensor& y = c.out[0];
  y.dtype = TP::UINT8;
  y.dims = x.dims;
  y.i.resize(x.f.size());
  for (size_t k = 0; k < x.f.size(); ++k)
    y.i[k] = scale == 0.0f ? zp : std::clamp<int64_t>(rounded(x.f[k] / scale) + zp, 0, 255);
  if (c.out.size() > 1) c.out[1] = Tensor::floats({}, {scale});
  if (c.out.size() > 2) c.out[2] = Tensor::ints({}, {zp}, TP::UINT8);
}

void op_MatMulInteger(OpCall& c) {
  const Tensor& a = c.input(0);
  const Tensor& b = c.input(1);
  const Tensor* azp = c.has(2) ? &c.input(2) : nullptr;
  const Tensor* bzp = c.has(3) ? &c.input(3) : nullptr;
  if (a.is_float() || b.is_float()) c.bad("A and B must be integer tensors");
  // A zero point of the operand's type: one value, one per row of A, or one per column of B.
  for (const Tensor* zp : {azp, bzp})
    if (zp && zp->dtype != (zp == azp ? a : b).dtype) c.bad("zero point type differs from its operand's");
  if (a.dims.size() < 2 || b.dims.size() < 2) c.unsupported("1-D operands");
  const int64_t m = a.dims[a.dims.size() - 2], k = a.dims.back(), n = b.dims.back();
  if (b.dims[b.dims.size() - 2] != k) c.bad("inner dimensions differ");
  if (azp && azp->numel() != 1 && azp->numel() != m) c.bad("a_zero_point must have 1 or " + std::to_string(m) + " elements");
  if (bzp && bzp->numel() != 1 && bzp->numel() != n) c.bad("b_zero_point must have 1 or " + std::to_string(n) + " elements");
  // Batch counts from the leading dims, not numel / (m * k): an empty matrix would divide by zero.
  const std::vector<int64_t> a_lead(a.dims.begin(), a.dims.end() - 2), b_lead(b.dims.begin(), b.dims.end() - 2);
  const int64_t a_batch = numel_of(a_lead), b_batch = numel_of(b_lead);
  if (b_batch != 1 && b_batch != a_batch) c.unsupported("batched B that differs from A's batch");
  if (a_batch != 1 && b_batch != 1 && broadcast_dims(c, a_lead, b_lead) != (a_lead.size() >= b_lead.size() ? a_lead : b_lead))
    c.unsupported("batch dims of A and B that broadcast");
  if (azp && azp->numel() != 1 && a_batch != 1) c.unsupported("per-row a_zero_point with batched A");
  Tensor& o = c.out[0];
  o.dtype = TP::INT32;
  o.dims = std::vector<int64_t>(a.dims.begin(), a.dims.end() - 1);
  if (b.dims.size() > a.dims.size()) o.dims = std::vector<int64_t>(b.dims.begin(), b.dims.end() - 1);
  o.dims.back() = m;
  o.dims.push_back(n);
  o.i.resize(static_cast<size_t>(std::max(a_batch, b_batch) * m * n));
  MatI bm = centered(b.i.data(), k, n, bzp, false);
  for (int64_t bi = 0; bi < std::max(a_batch, b_batch); ++bi) {
    if (b_batch > 1) bm = centered(b.i.data() + bi * k * n, k, n, bzp, false);
    const MatI am = centered(a.i.data() + (a_batch > 1 ? bi : 0) * m * k, m, k, azp, true);
    const MatI y = am * bm;
    std::copy(y.data(), y.data() + m * n, o.i.begin() + bi * m * n);
  }
}

void op_ConvInteger(OpCall& c) {
  const Tensor& x = c.input(0);
  const Tensor& w = c.input(1);
  if (x.is_float() || w.is_float()) c.bad("x and w must be integer tensors");
  if (w.dims.empty()) c.bad("weight w is a scalar");
  // x_zero_point: one value; w_zero_point: one, or one per output channel. Each of its operand's type.
  if (c.has(2) && (c.input(2).numel() != 1 || c.input(2).dtype != x.dtype))
    c.bad("x_zero_point must be one value of x's type");
  if (c.has(3) && ((c.input(3).numel() != 1 && c.input(3).numel() != w.dims[0]) || c.input(3).dtype != w.dtype))
    c.bad("w_zero_point must be 1 or " + std::to_string(w.dims[0]) + " values of w's type");
  const int64_t xz = c.has(2) ? c.input(2).i[0] : 0;
  Tensor xf = Tensor::floats(x.dims, std::vector<float>(x.i.size()));
  for (size_t k = 0; k < x.i.size(); ++k) xf.f[k] = static_cast<float>(x.i[k] - xz);
  Tensor wf = Tensor::floats(w.dims, std::vector<float>(w.i.size()));
  const int64_t per = w.numel() / std::max<int64_t>(w.dims[0], 1);
  for (size_t k = 0; k < w.i.size(); ++k) {
    int64_t z = 0;
    if (c.has(3)) z = c.input(3).numel() == 1 ? c.input(3).i[0] : c.input(3).i[static_cast<int64_t>(k) / per];
    wf.f[k] = static_cast<float>(w.i[k] - z);
  }
  OpCall conv{c.node, {&xf, &wf}, std::vector<Tensor>(1), c.opset, {}};
  op_Conv(conv);
  Tensor& o = c.out[0];
  o.dtype = TP::INT32;
  o.dims = conv.out[0].dims;
  o.i.resize(conv.out[0].f.size());
  for (size_t k = 0; k < o.i.size(); ++k) o.i[k] = to_int64_saturated(std::nearbyint(conv.out[0].f[k]));
}

void op_MatMulNBits(OpCall& c) {
  const Tensor& a = c.input(0);
  const Tensor& packed = c.input(1);
  const Tensor& scales = c.input(2);
  const int64_t kk = c.attr_i("K", 0), n = c.attr_i("N", 0), bits = c.attr_i("bits", 4), block = c.attr_i("block_size", 0);
  if (bits != 4) c.unsupported("bits=" + std::to_string(bits));
  if (c.has(4)) c.unsupported("g_idx");
  if (c.has(3) && c.input(3).is_float()) c.unsupported("float zero points");
  if (!a.is_float() || packed.is_float() || !scales.is_float()) c.bad("A and scales must be float, B uint8");
  if (block < 16 || (block & (block - 1)) != 0) c.bad("block_size " + std::to_string(block) + " is not a power of 2 >= 16");
  if (kk <= 0 || n < 0 || a.dims.empty() || a.dims.back() != kk) c.bad("A's last dim must be K > 0, N >= 0");
  const int64_t blocks = (kk + block - 1) / block, blob = block / 2, zp_bytes = (blocks + 1) / 2;
  // Every index below is read unchecked: B, scales, zero points and bias must hold N rows of blocks.
  auto need = [&](const Tensor& t, std::optional<int64_t> want, const char* what) {
    if (!want || t.numel() < *want)
      c.bad(std::string(what) + " has " + std::to_string(t.numel()) + " elements, too few for N " + std::to_string(n) +
            " and K " + std::to_string(kk));
  };
  need(packed, checked_product(std::vector<int64_t>{n, blocks, blob}), "B");
  need(scales, checked_mul(n, blocks), "scales");
  if (c.has(3)) need(c.input(3), checked_mul(n, zp_bytes), "zero_points");
  if (c.has(5)) need(c.input(5), n, "bias");
  MatR wt(kk, n);
  for (int64_t col = 0; col < n; ++col)
    for (int64_t b = 0; b < blocks; ++b) {
      const float s = scales.f[col * blocks + b];
      int64_t zp = 8;
      if (c.has(3)) {
        const int64_t byte = c.input(3).i[col * zp_bytes + b / 2];
        zp = (b % 2 == 0) ? (byte & 0x0F) : ((byte >> 4) & 0x0F);
      }
      for (int64_t j = 0; j < block && b * block + j < kk; ++j) {
        const int64_t byte = packed.i[(col * blocks + b) * blob + j / 2];
        const int64_t q = (j % 2 == 0) ? (byte & 0x0F) : ((byte >> 4) & 0x0F);
        wt(b * block + j, col) = static_cast<float>(q - zp) * s;
      }
    }
  Tensor& o = c.out[0];
  o.dtype = a.dtype;
  o.dims = a.dims;
  o.dims.back() = n;
  const int64_t rows = a.numel() / kk;
  o.f.resize(static_cast<size_t>(rows * n));
  Eigen::Map<MatR>(o.f.data(), rows, n).noalias() = Eigen::Map<const MatR>(a.f.data(), rows, kk) * wt;
  if (c.has(5)) {
    const auto& bias = c.input(5).f;
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t j = 0; j < n; ++j) o.f[r * n + j] += bias[j];
  }
  round_to_dtype(o);
}

}  // namespace compress::eval
