// Dense and convolutional kernels: Gemm/MatMul through Eigen, Conv and ConvTranspose as im2col/col2im
// around one Eigen GEMM per group, pooling, normalization, Resize/Upsample, and the RNN/LSTM/GRU recurrences.
#include <Eigen/Dense>
#include <algorithm>
#include <cmath>
#include <limits>
#include <optional>

#include "core/checked.h"
#include "eval/kernels.h"
#include "eval/ops.h"

namespace compress::eval {

namespace {

using MatR = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using MapR = Eigen::Map<MatR>;
using CMapR = Eigen::Map<const MatR>;

void need_float(const OpCall& c, const Tensor& t) {
  if (!t.is_float()) c.unsupported("integer tensors are not supported here");
}

// Conv-like ops read X [N, C, spatial...] and W [M, C / group, kernel...] (ConvTranspose: W
// [C, M / group, kernel...]): both of one rank, 3 to 5, checked before any dim is read.
void need_conv_ranks(const OpCall& c, const Tensor& x, const Tensor* w) {
  if (w) need_float(c, *w);  // read through .f below, like X
  if (x.dims.size() < 3) c.bad("input X " + dims_text(x.dims) + " has rank " + std::to_string(x.dims.size()) + ", expected N x C x spatial dims (rank >= 3)");
  if (w && w->dims.size() != x.dims.size())
    c.bad("weight W " + dims_text(w->dims) + " has rank " + std::to_string(w->dims.size()) + ", input X " +
          dims_text(x.dims) + " has rank " + std::to_string(x.dims.size()));
}

// kernel_shape, when given, must be W's spatial dims: the kernels index W by it.
std::vector<int64_t> conv_kernel(const OpCall& c, const Tensor& w) {
  const std::vector<int64_t> spatial(w.dims.begin() + 2, w.dims.end());
  const auto kernel = c.attr_ints("kernel_shape", spatial);
  if (kernel != spatial) c.bad("kernel_shape " + dims_text(kernel) + " does not match weight W " + dims_text(w.dims));
  return kernel;
}

void need_bias(const OpCall& c, size_t input, int64_t channels) {
  if (c.has(input)) need_float(c, c.input(input));
  if (c.has(input) && c.input(input).numel() != channels)
    c.bad("bias B " + dims_text(c.input(input).dims) + " needs " + std::to_string(channels) + " elements, one per output channel");
}

// An attribute of per-spatial-dim values must have `want` entries.
std::vector<int64_t> spatial_attr(const OpCall& c, const char* name, size_t want, int64_t fill) {
  auto v = c.attr_ints(name, std::vector<int64_t>(want, fill));
  if (v.size() != want)
    c.bad("attribute '" + std::string(name) + "' has " + std::to_string(v.size()) + " entries, expected " + std::to_string(want));
  return v;
}

}  // namespace

void op_Gemm(OpCall& c) {
  const Tensor& a = c.input(0);
  const Tensor& b = c.input(1);
  need_float(c, a);
  need_float(c, b);
  const bool ta = c.attr_i("transA", 0) != 0, tb = c.attr_i("transB", 0) != 0;
  const float alpha = c.attr_f("alpha", 1.0f), beta = c.attr_f("beta", 1.0f);
  if (a.dims.size() != 2 || b.dims.size() != 2) c.bad("A and B must be 2-D");
  const int64_t m = ta ? a.dims[1] : a.dims[0], k = ta ? a.dims[0] : a.dims[1];
  const int64_t n = tb ? b.dims[0] : b.dims[1];
  if ((tb ? b.dims[1] : b.dims[0]) != k) c.bad("inner dimensions differ");
  Tensor& o = c.out[0];
  o.dtype = a.dtype;
  o.dims = {m, n};
  o.f.assign(static_cast<size_t>(m * n), 0.0f);
  MapR y(o.f.data(), m, n);
  CMapR am(a.f.data(), a.dims[0], a.dims[1]);
  CMapR bm(b.f.data(), b.dims[0], b.dims[1]);
  if (ta && tb) y.noalias() = am.transpose() * bm.transpose();
  else if (ta) y.noalias() = am.transpose() * bm;
  else if (tb) y.noalias() = am * bm.transpose();
  else y.noalias() = am * bm;
  if (alpha != 1.0f) y *= alpha;
  if (c.has(2) && beta != 0.0f) {
    const Tensor& cc = c.input(2);
    const auto bd = broadcast_dims(c, cc.dims, o.dims);
    if (bd != o.dims) c.bad("C does not broadcast to [M, N]");
    const auto cf = as_floats(cc);
    const size_t r = cc.dims.size();
    const int64_t cm = r == 2 ? cc.dims[0] : 1, cn = r >= 1 ? cc.dims[r - 1] : 1;
    for (int64_t i = 0; i < m; ++i)
      for (int64_t j = 0; j < n; ++j) y(i, j) += beta * cf[(cm == 1 ? 0 : i) * cn + (cn == 1 ? 0 : j)];
  }
  round_to_dtype(o);
}

void op_MatMul(OpCall& c) {
  const Tensor& a = c.input(0);
  const Tensor& b = c.input(1);
  need_float(c, a);
  need_float(c, b);
  if (a.dims.empty() || b.dims.empty()) c.bad("operands must have rank >= 1, not scalars");
  std::vector<int64_t> ad = a.dims, bd = b.dims;
  const bool a1 = ad.size() == 1, b1 = bd.size() == 1;
  if (a1) ad.insert(ad.begin(), 1);
  if (b1) bd.push_back(1);
  const int64_t m = ad[ad.size() - 2], k = ad.back(), n = bd.back();
  if (bd[bd.size() - 2] != k) c.bad("inner dimensions differ (" + std::to_string(k) + " vs " + std::to_string(bd[bd.size() - 2]) + ")");
  const std::vector<int64_t> abatch(ad.begin(), ad.end() - 2), bbatch(bd.begin(), bd.end() - 2);
  const auto batch = broadcast_dims(c, abatch, bbatch);
  std::vector<int64_t> out = batch;
  if (!a1) out.push_back(m);
  if (!b1) out.push_back(n);
  Tensor& o = c.out[0];
  o.dtype = a.dtype;
  o.dims = out;
  const int64_t nb = numel_of(batch);
  o.f.assign(static_cast<size_t>(nb * m * n), 0.0f);
  // Offsets of each batch element in A and B under broadcasting.
  const size_t r = batch.size();
  std::vector<int64_t> idx(r, 0);
  auto offset = [&](const std::vector<int64_t>& dims) {
    int64_t off = 0, stride = 1;
    for (size_t d = r; d-- > 0;) {
      const size_t lead = r - dims.size();
      const int64_t dim = d < lead ? 1 : dims[d - lead];
      if (dim != 1) off += idx[d] * stride;
      stride *= dim;
    }
    return off;
  };
  for (int64_t bi = 0; bi < nb; ++bi) {
    CMapR am(a.f.data() + offset(abatch) * m * k, m, k);
    CMapR bm(b.f.data() + offset(bbatch) * k * n, k, n);
    kernels::sgemm(m, n, k, am.data(), k, bm.data(), n, o.f.data() + bi * m * n, n, false);
    for (size_t d = r; d-- > 0;) {
      if (++idx[d] < batch[d]) break;
      idx[d] = 0;
    }
  }
  round_to_dtype(o);
}

namespace {

// Spatial geometry of a Conv / pool, padded to 3 dims (leading dims of size 1).
struct Geometry {
  std::array<int64_t, 3> in{1, 1, 1}, k{1, 1, 1}, s{1, 1, 1}, d{1, 1, 1}, pb{0, 0, 0}, pe{0, 0, 0}, out{1, 1, 1};
  int64_t in_size() const { return in[0] * in[1] * in[2]; }
  int64_t out_size() const { return out[0] * out[1] * out[2]; }
  int64_t k_size() const { return k[0] * k[1] * k[2]; }
};

Geometry geometry(const OpCall& c, const std::vector<int64_t>& x_dims, const std::vector<int64_t>& kernel, bool ceil_mode) {
  if (x_dims.size() < 3) c.bad("input X " + dims_text(x_dims) + " has rank " + std::to_string(x_dims.size()) + ", expected N x C x spatial dims (rank >= 3)");
  const size_t sp = x_dims.size() - 2;
  if (sp > 3) c.unsupported(std::to_string(sp) + " spatial dims (1 to 3 supported)");
  if (kernel.size() != sp) c.bad("kernel_shape " + dims_text(kernel) + " does not match the " + std::to_string(sp) + " spatial dims of input X " + dims_text(x_dims));
  const auto strides = spatial_attr(c, "strides", sp, 1);
  const auto dil = spatial_attr(c, "dilations", sp, 1);
  const auto pads = spatial_attr(c, "pads", 2 * sp, 0);
  const std::string auto_pad = c.attr_s("auto_pad", "NOTSET");
  Geometry g;
  const size_t lead = 3 - sp;
  for (size_t q = 0; q < sp; ++q) {
    const size_t t = lead + q;
    g.in[t] = x_dims[2 + q];
    g.k[t] = kernel[q];
    g.s[t] = strides[q];
    g.d[t] = dil[q];
    // Attribute values come from the file: sums and products that would overflow are refused.
    const auto ext_minus_one = checked_mul(g.k[t] - 1, g.d[t]);
    if (!ext_minus_one) c.bad("kernel_shape and dilations overflow along spatial dim " + std::to_string(q));
    const int64_t ext = *ext_minus_one + 1;
    if (auto_pad == "SAME_UPPER" || auto_pad == "SAME_LOWER") {
      g.out[t] = (g.in[t] + g.s[t] - 1) / g.s[t];
      const int64_t total = std::max<int64_t>(0, (g.out[t] - 1) * g.s[t] + ext - g.in[t]);
      g.pb[t] = auto_pad == "SAME_UPPER" ? total / 2 : total - total / 2;
      g.pe[t] = total - g.pb[t];
    } else {
      if (auto_pad != "VALID") {
        g.pb[t] = pads[q];
        g.pe[t] = pads[q + sp];
      }
      const auto padded = checked_add(g.in[t], g.pb[t]);
      if (!padded || !checked_add(*padded, g.pe[t])) c.bad("pads overflow along spatial dim " + std::to_string(q));
      const int64_t span = g.in[t] + g.pb[t] + g.pe[t] - ext;
      if (span < 0)
        c.bad("kernel extent " + std::to_string(ext) + " (kernel " + std::to_string(g.k[t]) + ", dilation " +
              std::to_string(g.d[t]) + ") is larger than the padded input " + std::to_string(g.in[t] + g.pb[t] + g.pe[t]) +
              " along spatial dim " + std::to_string(q) + " of X " + dims_text(x_dims));
      if (ceil_mode) {
        g.out[t] = (span + g.s[t] - 1) / g.s[t] + 1;
        if ((g.out[t] - 1) * g.s[t] >= g.in[t] + g.pb[t]) --g.out[t];
      } else {
        g.out[t] = span / g.s[t] + 1;
      }
    }
  }
  // Pads far beyond the input make an output no allocation can hold: refused as numel_of refuses dims.
  numel_of({x_dims[0], x_dims[1], g.out[0], g.out[1], g.out[2]});
  return g;
}

// The taps [lo, hi) of a window starting at input index `start` along one dim that land inside the
// input: the pooling loops visit only those, so their cost is bounded by the input, not by
// kernel_shape (a kernel of 2^40 with auto_pad SAME looped for hours).
std::pair<int64_t, int64_t> taps_inside(int64_t start, int64_t k, int64_t d, int64_t in) {
  const int64_t lo = start >= 0 ? 0 : (-start + d - 1) / d;
  const int64_t hi = start > in - 1 ? 0 : std::min(k, (in - 1 - start) / d + 1);
  return {lo, std::max(lo, hi)};
}

// col [cg * k, (r1 - r0) * out2] for one image's channels [cg, in], output rows r in [r0, r1) where
// r = o0 * out1 + o1 (the whole image when r0 = 0, r1 = out0 * out1).
void im2col(const float* x, int64_t cg, const Geometry& g, float* col, int64_t r0, int64_t r1) {
  const int64_t ksz = g.k_size(), width = (r1 - r0) * g.out[2];
  for (int64_t ch = 0; ch < cg; ++ch) {
    const float* xc = x + ch * g.in_size();
    for (int64_t k0 = 0; k0 < g.k[0]; ++k0)
      for (int64_t k1 = 0; k1 < g.k[1]; ++k1)
        for (int64_t k2 = 0; k2 < g.k[2]; ++k2) {
          float* rowp = col + (ch * ksz + (k0 * g.k[1] + k1) * g.k[2] + k2) * width;
          const int64_t off2 = k2 * g.d[2] - g.pb[2];
          // Valid o2: 0 <= o2 * s2 + off2 < in2.
          int64_t lo = off2 >= 0 ? 0 : (-off2 + g.s[2] - 1) / g.s[2];
          const int64_t hi = g.in[2] - 1 - off2 < 0 ? 0 : std::min(g.out[2], (g.in[2] - 1 - off2) / g.s[2] + 1);
          lo = std::min(lo, hi);
          for (int64_t r = r0; r < r1; ++r) {
            const int64_t o0 = r / g.out[1], o1 = r % g.out[1];
            const int64_t i0 = o0 * g.s[0] - g.pb[0] + k0 * g.d[0];
            const int64_t i1 = o1 * g.s[1] - g.pb[1] + k1 * g.d[1];
            float* dst = rowp + (r - r0) * g.out[2];
            if (i0 < 0 || i0 >= g.in[0] || i1 < 0 || i1 >= g.in[1]) {
              std::fill_n(dst, g.out[2], 0.0f);
              continue;
            }
            const float* src = xc + (i0 * g.in[1] + i1) * g.in[2];
            std::fill_n(dst, lo, 0.0f);
            if (g.s[2] == 1) {
              std::copy(src + lo + off2, src + hi + off2, dst + lo);
            } else {
              for (int64_t o2 = lo; o2 < hi; ++o2) dst[o2] = src[o2 * g.s[2] + off2];
            }
            std::fill(dst + hi, dst + g.out[2], 0.0f);
          }
        }
  }
}

std::vector<int64_t> out_dims(int64_t n, int64_t ch, const Geometry& g, size_t sp) {
  std::vector<int64_t> dims{n, ch};
  for (size_t q = 3 - sp; q < 3; ++q) dims.push_back(g.out[q]);
  return dims;
}

}  // namespace

void op_Conv(OpCall& c) {
  const Tensor& x = c.input(0);
  const Tensor& w = c.input(1);
  need_float(c, x);
  need_conv_ranks(c, x, &w);
  const int64_t group = c.attr_i("group", 1);
  const int64_t n = x.dims[0], cin = x.dims[1], m = w.dims[0], cg = w.dims[1];
  if (cg * group != cin) c.bad("input channels " + std::to_string(cin) + " != " + std::to_string(cg) + " x group " + std::to_string(group));
  if (m % group != 0) c.bad("output channels " + std::to_string(m) + " of W " + dims_text(w.dims) + " are not a multiple of group " + std::to_string(group));
  need_bias(c, 2, m);
  const auto kernel = conv_kernel(c, w);
  const Geometry g = geometry(c, x.dims, kernel, false);
  const size_t sp = x.dims.size() - 2;
  Tensor& o = c.out[0];
  o.dtype = x.dtype;
  o.dims = out_dims(n, m, g, sp);
  const int64_t osz = g.out_size(), rows = cg * g.k_size(), mg = m / group;
  o.f.resize(static_cast<size_t>(n * m * osz));
  const float* bias = c.has(2) ? c.input(2).f.data() : nullptr;
  const bool reference = kernels::reference_mode();
  if (cg == 1 && !reference) {
    // Depthwise (one input channel per group, any channel multiplier): direct sliding window.
    for (int64_t b = 0; b < n; ++b)
      kernels::depthwise_conv(x.f.data() + b * cin * g.in_size(), w.f.data(), bias, o.f.data() + b * m * osz, cin, mg,
                              g.in.data(), g.k.data(), g.s.data(), g.d.data(), g.pb.data(), g.out.data());
    round_to_dtype(o);
    return;
  }
  const bool direct = g.k_size() == 1 && g.s == std::array<int64_t, 3>{1, 1, 1} && g.pb == std::array<int64_t, 3>{0, 0, 0} &&
                      g.pe == std::array<int64_t, 3>{0, 0, 0};
  // im2col in tiles of whole output rows (about 256K floats of columns) so the buffer stays cache-sized.
  const int64_t out_rows = g.out[0] * g.out[1];
  const int64_t tile_rows =
      reference ? out_rows : std::clamp<int64_t>((int64_t{1} << 18) / std::max<int64_t>(1, rows * g.out[2]), 1, out_rows);
  std::vector<float> col(direct ? 0 : static_cast<size_t>(rows * tile_rows * g.out[2]));
  for (int64_t b = 0; b < n; ++b)
    for (int64_t gi = 0; gi < group; ++gi) {
      const float* xin = x.f.data() + (b * cin + gi * cg) * g.in_size();
      const float* wg = w.f.data() + gi * mg * rows;
      float* yg = o.f.data() + (b * m + gi * mg) * osz;
      if (direct) {
        kernels::sgemm(mg, osz, rows, wg, rows, xin, osz, yg, osz, false);
        continue;
      }
      for (int64_t r0 = 0; r0 < out_rows; r0 += tile_rows) {
        const int64_t r1 = std::min(out_rows, r0 + tile_rows), width = (r1 - r0) * g.out[2];
        im2col(xin, cg, g, col.data(), r0, r1);
        kernels::sgemm(mg, width, rows, wg, rows, col.data(), width, yg + r0 * g.out[2], osz, false);
      }
    }
  if (bias) {
    for (int64_t b = 0; b < n; ++b)
      for (int64_t ch = 0; ch < m; ++ch) {
        float* p = o.f.data() + (b * m + ch) * osz;
        for (int64_t k = 0; k < osz; ++k) p[k] += bias[ch];
      }
  }
  round_to_dtype(o);
}

void op_ConvTranspose(OpCall& c) {
  const Tensor& x = c.input(0);
  const Tensor& w = c.input(1);
  need_float(c, x);
  need_conv_ranks(c, x, &w);
  const int64_t group = c.attr_i("group", 1);
  const int64_t n = x.dims[0], cin = x.dims[1], mg = w.dims[1], m = mg * group, cg = cin / group;
  if (cin % group != 0 || w.dims[0] != cin)
    c.bad("input channels " + std::to_string(cin) + " of X " + dims_text(x.dims) + " must equal W's first dim " +
          std::to_string(w.dims[0]) + " and be a multiple of group " + std::to_string(group));
  need_bias(c, 2, m);
  const size_t sp = x.dims.size() - 2;
  if (sp > 3) c.unsupported(std::to_string(sp) + " spatial dims");
  const auto kernel = conv_kernel(c, w);
  const auto strides = spatial_attr(c, "strides", sp, 1);
  const auto dil = spatial_attr(c, "dilations", sp, 1);
  const auto pads = spatial_attr(c, "pads", 2 * sp, 0);
  const auto out_pad = spatial_attr(c, "output_padding", sp, 0);
  const auto out_shape = c.attr_ints("output_shape");
  if (!out_shape.empty() && out_shape.size() < sp)
    c.bad("output_shape " + dims_text(out_shape) + " has fewer entries than the " + std::to_string(sp) + " spatial dims");
  const std::string auto_pad = c.attr_s("auto_pad", "NOTSET");
  Geometry g;  // here `in` is the conv input (our output) and `out` the conv output (our input)
  const size_t lead = 3 - sp;
  for (size_t q = 0; q < sp; ++q) {
    const size_t t = lead + q;
    g.out[t] = x.dims[2 + q];
    g.k[t] = kernel[q];
    g.s[t] = strides[q];
    g.d[t] = dil[q];
    // strides, dilations and output_padding come from the file: an overflowing size is refused.
    const auto ext = checked_mul(g.k[t] - 1, g.d[t]), stretched = checked_mul(g.s[t], g.out[t] - 1);
    const auto partial = ext && stretched ? checked_add(*stretched, out_pad[q]) : std::nullopt;
    const auto full_or = partial ? checked_add(*partial, *ext + 1) : std::nullopt;
    if (!full_or) c.bad("strides, dilations and output_padding overflow along spatial dim " + std::to_string(q));
    const int64_t full = *full_or;
    if (!out_shape.empty() || auto_pad == "SAME_UPPER" || auto_pad == "SAME_LOWER") {
      const int64_t target = !out_shape.empty() ? out_shape[out_shape.size() - sp + q] : g.out[t] * g.s[t];
      const int64_t total = full - target;
      const int64_t half = total >= 0 ? total / 2 : -((-total + 1) / 2);  // floor, as the spec's Python
      g.pb[t] = auto_pad == "SAME_UPPER" ? half : total - half;
      g.pe[t] = total - g.pb[t];
      g.in[t] = target;
    } else {
      if (auto_pad != "VALID") {
        g.pb[t] = pads[q];
        g.pe[t] = pads[q + sp];
      }
      g.in[t] = full - g.pb[t] - g.pe[t];
    }
    if (g.in[t] < 1)
      c.bad("output spatial dim " + std::to_string(q) + " would be " + std::to_string(g.in[t]) + " (pads exceed the output)");
  }
  Tensor& o = c.out[0];
  o.dtype = x.dtype;
  o.dims = {n, m};
  for (size_t q = lead; q < 3; ++q) o.dims.push_back(g.in[q]);
  numel_of(o.dims);  // output_shape or pads far beyond the input: refused before allocating
  const int64_t isz = g.out_size(), osz = g.in_size(), ksz = g.k_size(), rows = mg * ksz;
  o.f.assign(static_cast<size_t>(n * m * osz), 0.0f);
  MatR col(rows, isz);
  for (int64_t b = 0; b < n; ++b)
    for (int64_t gi = 0; gi < group; ++gi) {
      CMapR xm(x.f.data() + (b * cin + gi * cg) * isz, cg, isz);
      CMapR wm(w.f.data() + gi * cg * rows, cg, rows);
      col.noalias() = wm.transpose() * xm;
      float* y = o.f.data() + (b * m + gi * mg) * osz;
      for (int64_t ch = 0; ch < mg; ++ch)
        for (int64_t k0 = 0; k0 < g.k[0]; ++k0)
          for (int64_t k1 = 0; k1 < g.k[1]; ++k1)
            for (int64_t k2 = 0; k2 < g.k[2]; ++k2) {
              const float* row = col.data() + (ch * ksz + (k0 * g.k[1] + k1) * g.k[2] + k2) * isz;
              for (int64_t i0 = 0; i0 < g.out[0]; ++i0) {
                const int64_t p0 = i0 * g.s[0] - g.pb[0] + k0 * g.d[0];
                if (p0 < 0 || p0 >= g.in[0]) continue;
                for (int64_t i1 = 0; i1 < g.out[1]; ++i1) {
                  const int64_t p1 = i1 * g.s[1] - g.pb[1] + k1 * g.d[1];
                  if (p1 < 0 || p1 >= g.in[1]) continue;
                  for (int64_t i2 = 0; i2 < g.out[2]; ++i2) {
                    const int64_t p2 = i2 * g.s[2] - g.pb[2] + k2 * g.d[2];
                    if (p2 < 0 || p2 >= g.in[2]) continue;
                    y[ch * osz + (p0 * g.in[1] + p1) * g.in[2] + p2] += row[(i0 * g.out[1] + i1) * g.out[2] + i2];
                  }
                }
              }
            }
    }
  if (c.has(2)) {
    const auto& bias = c.input(2).f;
    for (int64_t b = 0; b < n; ++b)
      for (int64_t ch = 0; ch < m; ++ch)
        for (int64_t k = 0; k < osz; ++k) o.f[(b * m + ch) * osz + k] += bias[ch];
  }
  round_to_dtype(o);
}

namespace {

void pool(OpCall& c, bool max) {
  const Tensor& x0 = c.input(0);
  // Integer MaxPool (uint8/int8) runs on exact float copies.
  const Tensor x = x0.is_float() || !max ? x0 : Tensor::floats(x0.dims, as_floats(x0));
  need_float(c, x);
  const bool want_indices = c.out.size() > 1 && !c.node.output(1).empty();
  if (want_indices && c.attr_i("storage_order", 0) != 0) c.unsupported("Indices with storage_order=1");
  const auto kernel = c.attr_ints("kernel_shape");
  const bool ceil_mode = c.attr_i("ceil_mode", 0) != 0;
  const Geometry g = geometry(c, x.dims, kernel, ceil_mode);
  const bool include_pad = c.attr_i("count_include_pad", 0) != 0;
  const int64_t planes = x.dims[0] * x.dims[1], isz = g.in_size(), osz = g.out_size();
  Tensor& o = c.out[0];
  o.dtype = x.dtype;
  o.dims = out_dims(x.dims[0], x.dims[1], g, x.dims.size() - 2);
  o.f.resize(static_cast<size_t>(planes * osz));
  std::vector<int64_t> indices(want_indices ? static_cast<size_t>(planes * osz) : 0);
  for (int64_t p = 0; p < planes; ++p) {
    const float* xp = x.f.data() + p * isz;
    float* yp = o.f.data() + p * osz;
    for (int64_t o0 = 0; o0 < g.out[0]; ++o0)
      for (int64_t o1 = 0; o1 < g.out[1]; ++o1)
        for (int64_t o2 = 0; o2 < g.out[2]; ++o2) {
          float best = -std::numeric_limits<float>::infinity();
          int64_t best_at = 0;
          double sum = 0;
          int64_t count = 0, padded = 1;
          const std::array<int64_t, 3> o{o0, o1, o2};
          for (int q = 0; q < 3; ++q) {
            // Window extent clipped to the padded input, for count_include_pad.
            const int64_t start = o[q] * g.s[q] - g.pb[q];
            const int64_t end = std::min(start + (g.k[q] - 1) * g.d[q] + 1, g.in[q] + g.pe[q]);
            padded *= (end - start + g.d[q] - 1) / g.d[q];
          }
          std::array<std::pair<int64_t, int64_t>, 3> tap;
          for (int q = 0; q < 3; ++q) tap[q] = taps_inside(o[q] * g.s[q] - g.pb[q], g.k[q], g.d[q], g.in[q]);
          for (int64_t k0 = tap[0].first; k0 < tap[0].second; ++k0) {
            const int64_t i0 = o0 * g.s[0] - g.pb[0] + k0 * g.d[0];
            for (int64_t k1 = tap[1].first; k1 < tap[1].second; ++k1) {
              const int64_t i1 = o1 * g.s[1] - g.pb[1] + k1 * g.d[1];
              for (int64_t k2 = tap[2].first; k2 < tap[2].second; ++k2) {
                const int64_t i2 = o2 * g.s[2] - g.pb[2] + k2 * g.d[2];
                const float v = xp[(i0 * g.in[1] + i1) * g.in[2] + i2];
                if (v > best) {
                  best = v;
                  best_at = p * isz + (i0 * g.in[1] + i1) * g.in[2] + i2;
                }
                sum += v;
                ++count;
              }
            }
          }
          const int64_t at = (o0 * g.out[1] + o1) * g.out[2] + o2;
          yp[at] = max ? best : static_cast<float>(sum / static_cast<double>(include_pad ? padded : std::max<int64_t>(count, 1)));
          if (want_indices) indices[static_cast<size_t>(p * osz + at)] = best_at;
        }
  }
  round_to_dtype(o);
  if (want_indices) c.out[1] = Tensor::ints(o.dims, std::move(indices));
  if (!x0.is_float()) {
    Tensor back = Tensor::ints(o.dims, as_ints(o), x0.dtype);
    c.out[0] = std::move(back);
  }
}

void global_pool(OpCall& c, bool max) {
  const Tensor& x = c.input(0);
  need_float(c, x);
  if (x.dims.size() < 2) c.bad("input X " + dims_text(x.dims) + " has rank " + std::to_string(x.dims.size()) + ", expected N x C x spatial dims");
  const int64_t planes = x.dims[0] * x.dims[1];
  const int64_t sz = planes ? x.numel() / planes : 0;
  if (planes > 0 && sz == 0) c.bad("input X " + dims_text(x.dims) + " has empty spatial dims: nothing to pool");
  Tensor& o = c.out[0];
  o.dtype = x.dtype;
  o.dims = x.dims;
  for (size_t k = 2; k < o.dims.size(); ++k) o.dims[k] = 1;
  o.f.resize(static_cast<size_t>(planes));
  for (int64_t p = 0; p < planes; ++p) {
    const float* xp = x.f.data() + p * sz;
    if (max) {
      o.f[p] = *std::max_element(xp, xp + sz);
    } else {
      double s = 0;
      for (int64_t k = 0; k < sz; ++k) s += xp[k];
      o.f[p] = static_cast<float>(s / static_cast<double>(sz));
    }
  }
  round_to_dtype(o);
}

}  // namespace

void op_MaxPool(OpCall& c) { pool(c, true); }
void op_AveragePool(OpCall& c) { pool(c, false); }
void op_GlobalAveragePool(OpCall& c) { global_pool(c, false); }
void op_GlobalMaxPool(OpCall& c) { global_pool(c, true); }

void op_BatchNormalization(OpCall& c) {
  const Tensor& x = c.input(0);
  need_float(c, x);
  if (c.attr_i("training_mode", 0) != 0) c.unsupported("training_mode=1");
  if (x.dims.empty()) c.bad("input X is a scalar, expected N x C x ...");
  const int64_t n = x.dims[0], ch = x.dims.size() > 1 ? x.dims[1] : 1;
  // scale, B, mean and var are read at every channel index.
  for (size_t k = 1; k <= 4; ++k) {
    need_float(c, c.input(k));
    if (c.input(k).numel() != ch)
      c.bad("input " + std::to_string(k) + " " + dims_text(c.input(k).dims) + " needs " + std::to_string(ch) +
            " elements, one per channel of X " + dims_text(x.dims));
  }
  const auto& scale = c.input(1).f;
  const auto& bias = c.input(2).f;
  const auto& mean = c.input(3).f;
  const auto& var = c.input(4).f;
  const float eps = c.attr_f("epsilon", 1e-5f);
  const int64_t sz = (n * ch) != 0 ? x.numel() / (n * ch) : 0;
  Tensor& o = c.out[0];
  o = x;
  for (int64_t b = 0; b < n; ++b)
    for (int64_t k = 0; k < ch; ++k) {
      const float a = scale[k] / std::sqrt(var[k] + eps);
      const float s = bias[k] - mean[k] * a;
      float* p = o.f.data() + (b * ch + k) * sz;
      for (int64_t j = 0; j < sz; ++j) p[j] = p[j] * a + s;
    }
  round_to_dtype(o);
}

void op_LayerNormalization(OpCall& c) {
  const Tensor& x = c.input(0);
  need_float(c, x);
  const int64_t rank = static_cast<int64_t>(x.dims.size());
  const int64_t axis = norm_axis(c, c.attr_i("axis", -1), rank);
  const float eps = c.attr_f("epsilon", 1e-5f);
  int64_t outer = 1;
  for (int64_t k = 0; k < axis; ++k) outer *= x.dims[k];
  const int64_t len = outer ? x.numel() / outer : 0;
  const auto scale = as_floats(c.input(1));
  const std::vector<float> bias = c.has(2) ? as_floats(c.input(2)) : std::vector<float>{};
  // Scale and B are read at every index of the normalized slice (or broadcast from one value).
  if (scale.size() != 1 && static_cast<int64_t>(scale.size()) != len)
    c.bad("Scale has " + std::to_string(scale.size()) + " elements, the normalized dims hold " + std::to_string(len));
  if (bias.size() > 1 && static_cast<int64_t>(bias.size()) != len)
    c.bad("B has " + std::to_string(bias.size()) + " elements, the normalized dims hold " + std::to_string(len));
  Tensor& o = c.out[0];
  o = x;
  std::vector<int64_t> stat_dims = x.dims;
  for (int64_t k = axis; k < rank; ++k) stat_dims[k] = 1;
  std::vector<float> means(static_cast<size_t>(outer)), inv(static_cast<size_t>(outer));
  for (int64_t r = 0; r < outer; ++r) {
    float* p = o.f.data() + r * len;
    double mean = 0, var = 0;
    for (int64_t k = 0; k < len; ++k) mean += p[k];
    mean /= static_cast<double>(len);
    for (int64_t k = 0; k < len; ++k) var += (p[k] - mean) * (p[k] - mean);
    var /= static_cast<double>(len);
    const double is = 1.0 / std::sqrt(var + eps);
    means[r] = static_cast<float>(mean);
    inv[r] = static_cast<float>(is);
    for (int64_t k = 0; k < len; ++k) {
      const float s = scale[scale.size() == 1 ? 0 : k], b = bias.empty() ? 0.0f : bias[bias.size() == 1 ? 0 : k];
      p[k] = static_cast<float>((p[k] - mean) * is) * s + b;
    }
  }
  round_to_dtype(o);
  if (c.out.size() > 1) c.out[1] = Tensor::floats(stat_dims, means);
  if (c.out.size() > 2) c.out[2] = Tensor::floats(stat_dims, inv);
}

namespace {

// Cubic convolution weights of the 4 taps around fraction t (Keys, coefficient a).
std::array<float, 4> cubic_weights(float t, float a) {
  auto w = [a](float x) {
    x = std::fabs(x);
    if (x <= 1) return ((a + 2) * x - (a + 3)) * x * x + 1;
    if (x < 2) return ((a * x - 5 * a) * x + 8 * a) * x - 4 * a;
    return 0.0f;
  };
  return {w(t + 1), w(t), w(1 - t), w(2 - t)};
}

}  // namespace

void op_Resize(OpCall& c) {
  const Tensor& x = c.input(0);
  need_float(c, x);
  const size_t rank = x.dims.size();
  const std::string mode = c.attr_s("mode", "nearest");
  if (mode != "nearest" && mode != "linear" && mode != "cubic") c.unsupported("mode '" + mode + "'");
  const std::string ctm = c.opset < 11 ? "asymmetric" : c.attr_s("coordinate_transformation_mode", "half_pixel");
  const std::string nearest = c.attr_s("nearest_mode", "round_prefer_floor");
  const float cubic_a = c.attr_f("cubic_coeff_a", -0.75f);
  const bool exclude_outside = c.attr_i("exclude_outside", 0) != 0;
  const float extrapolation = c.attr_f("extrapolation_value", 0.0f);
  if (c.attr("axes")) c.unsupported("the axes attribute");
  std::vector<float> scales, roi;
  std::vector<int64_t> out(rank);
  std::vector<float> resized_len(rank);  // the length the coordinate transforms see (in * scale, unfloored)
  const size_t scales_input = c.opset < 11 ? 1 : 2;
  if (c.opset >= 11 && c.has(1) && c.input(1).numel() > 0) roi = as_floats(c.input(1));
  if (c.has(scales_input) && c.input(scales_input).numel() > 0) scales = as_floats(c.input(scales_input));
  if (c.opset >= 11 && c.has(3) && c.input(3).numel() > 0) {
    const auto sizes = as_ints(c.input(3));
    if (c.attr_s("keep_aspect_ratio_policy", "stretch") != "stretch") c.unsupported("keep_aspect_ratio_policy");
    if (sizes.size() != rank)
      c.bad("sizes " + dims_text(sizes) + " has " + std::to_string(sizes.size()) + " entries, input X " +
            dims_text(x.dims) + " has rank " + std::to_string(rank));
    scales.resize(rank);
    for (size_t d = 0; d < rank; ++d) {
      if (sizes[d] < 0 || (sizes[d] > 0 && x.dims[d] == 0))
        c.bad("sizes " + dims_text(sizes) + " cannot resize input X " + dims_text(x.dims));
      out[d] = sizes[d];
      scales[d] = static_cast<float>(out[d]) / static_cast<float>(x.dims[d]);
      resized_len[d] = static_cast<float>(out[d]);
    }
  } else {
    if (scales.size() != rank)
      c.bad("scales has " + std::to_string(scales.size()) + " entries, input X " + dims_text(x.dims) + " has rank " +
            std::to_string(rank) + " (one scale per dim)");
    for (size_t d = 0; d < rank; ++d) {
      // Also bounds the output: the float product below must convert to an int64 dim.
      if (!(scales[d] > 0.0f) || !std::isfinite(scales[d]) || static_cast<double>(x.dims[d]) * scales[d] > 1e9)
        c.bad("scale " + std::to_string(scales[d]) + " for dim " + std::to_string(d) + " of input X " + dims_text(x.dims) +
              " (scales must be > 0 and give a dim below 1e9)");
      resized_len[d] = static_cast<float>(x.dims[d]) * scales[d];
      out[d] = static_cast<int64_t>(std::floor(resized_len[d]));
    }
  }
  Tensor cur = x;
  for (size_t d = 0; d < rank; ++d) {
    const bool crop = ctm == "tf_crop_and_resize";
    if (out[d] == cur.dims[d] && scales[d] == 1.0f && !crop) continue;
    const int64_t in_len = cur.dims[d], out_len = out[d];
    int64_t outer = 1, inner = 1;
    for (size_t q = 0; q < d; ++q) outer *= cur.dims[q];
    for (size_t q = d + 1; q < rank; ++q) inner *= cur.dims[q];
    // Per output coordinate: up to 4 (index, weight) taps, or `outside` for tf_crop_and_resize.
    const int taps = mode == "nearest" ? 1 : (mode == "linear" ? 2 : 4);
    std::vector<int64_t> idx(static_cast<size_t>(out_len * taps));
    std::vector<float> wt(static_cast<size_t>(out_len * taps));
    std::vector<bool> outside(static_cast<size_t>(out_len), false);
    const float s = scales[d], len = resized_len[d];
    for (int64_t j = 0; j < out_len; ++j) {
      const auto fj = static_cast<float>(j);
      float xo = 0;
      if (ctm == "half_pixel") xo = (fj + 0.5f) / s - 0.5f;
      else if (ctm == "pytorch_half_pixel") xo = len > 1 ? (fj + 0.5f) / s - 0.5f : 0.0f;
      else if (ctm == "align_corners") xo = len == 1 ? 0.0f : fj * static_cast<float>(in_len - 1) / (len - 1);
      else if (ctm == "asymmetric") xo = fj / s;
      else if (ctm == "tf_half_pixel_for_nn") xo = (fj + 0.5f) / s;
      else if (crop) {
        if (roi.size() != 2 * rank) c.bad("roi must have 2 * rank entries");
        const float r0 = roi[d], r1 = roi[d + rank];
        xo = out_len > 1 ? r0 * static_cast<float>(in_len - 1) + fj * (r1 - r0) * static_cast<float>(in_len - 1) / static_cast<float>(out_len - 1)
                         : 0.5f * (r0 + r1) * static_cast<float>(in_len - 1);
        if (xo < 0 || xo > static_cast<float>(in_len - 1)) outside[j] = true;
      } else {
        c.unsupported("coordinate_transformation_mode '" + ctm + "'");
      }
      int64_t* ip = idx.data() + j * taps;
      float* wp = wt.data() + j * taps;
      if (mode == "nearest") {
        float r;
        if (nearest == "round_prefer_floor") r = (xo == std::floor(xo) + 0.5f) ? std::floor(xo) : std::round(xo);
        else if (nearest == "round_prefer_ceil") r = std::round(xo);
        else if (nearest == "floor") r = std::floor(xo);
        else if (nearest == "ceil") r = std::ceil(xo);
        else c.unsupported("nearest_mode '" + nearest + "'");
        ip[0] = std::clamp<int64_t>(static_cast<int64_t>(r), 0, in_len - 1);
        wp[0] = 1.0f;
      } else if (mode == "linear") {
        const float xc = std::clamp(xo, 0.0f, static_cast<float>(in_len - 1));
        ip[0] = static_cast<int64_t>(std::floor(xc));
        ip[1] = std::min(ip[0] + 1, in_len - 1);
        wp[1] = xc - static_cast<float>(ip[0]);
        wp[0] = 1.0f - wp[1];
      } else {
        const float base = std::floor(xo);
        const auto w = cubic_weights(xo - base, cubic_a);
        float total = 0;
        for (int t = 0; t < 4; ++t) {
          const int64_t i = static_cast<int64_t>(base) - 1 + t;
          const bool in = i >= 0 && i < in_len;
          ip[t] = std::clamp<int64_t>(i, 0, in_len - 1);
          wp[t] = exclude_outside && !in ? 0.0f : w[static_cast<size_t>(t)];
          total += wp[t];
        }
        if (exclude_outside && total != 0)
          for (int t = 0; t < 4; ++t) wp[t] /= total;
      }
    }
    Tensor next;
    next.dtype = cur.dtype;
    next.dims = cur.dims;
    next.dims[d] = out_len;
    next.f.assign(static_cast<size_t>(outer * out_len * inner), 0.0f);
    for (int64_t a = 0; a < outer; ++a)
      for (int64_t j = 0; j < out_len; ++j) {
        float* q = next.f.data() + (a * out_len + j) * inner;
        if (outside[j]) {
          std::fill_n(q, inner, extrapolation);
          continue;
        }
        for (int t = 0; t < taps; ++t) {
          const float w = wt[j * taps + t];
          if (w == 0.0f) continue;
          const float* p = cur.f.data() + (a * in_len + idx[j * taps + t]) * inner;
          for (int64_t b = 0; b < inner; ++b) q[b] += w * p[b];
        }
      }
    cur = std::move(next);
  }
  c.out[0] = std::move(cur);
  round_to_dtype(c.out[0]);
}

namespace {

float sigm(float v) { return v >= 0 ? 1.0f / (1.0f + std::exp(-v)) : std::exp(v) / (1.0f + std::exp(v)); }

struct RnnSetup {
  int64_t seq = 0, batch = 0, input = 0, hidden = 0, dirs = 1;
  std::string direction;
  std::vector<int64_t> lens;
  bool layout1 = false;
};

std::vector<int64_t> state_dims(const RnnSetup& s);

// Every input's shape is checked against X, hidden_size and the gate count before the kernels index
// them by those sizes: W, R and B that disagree with each other are a malformed model, not a crash.
RnnSetup rnn_setup(const OpCall& c, const std::vector<std::string>& default_acts, int64_t gates) {
  RnnSetup s;
  const Tensor& x = c.input(0);
  need_float(c, x);
  for (size_t k = 0; k < 3; ++k) {
    need_float(c, c.input(k));
    if (c.input(k).dims.size() != 3) c.bad("input " + std::to_string(k) + " must have rank 3");
  }
  s.layout1 = c.attr_i("layout", 0) != 0;
  s.seq = s.layout1 ? x.dims[1] : x.dims[0];
  s.batch = s.layout1 ? x.dims[0] : x.dims[1];
  s.input = x.dims[2];
  s.hidden = c.attr_i("hidden_size", c.input(2).dims[2]);
  s.direction = c.attr_s("direction", "forward");
  s.dirs = s.direction == "bidirectional" ? 2 : 1;
  if (const auto* acts = c.attr("activations")) {
    for (int k = 0; k < acts->strings_size(); ++k)
      if (acts->strings(k) != default_acts[static_cast<size_t>(k) % default_acts.size()])
        c.unsupported("activation '" + acts->strings(k) + "' (only the defaults are supported)");
  }
  if (c.attr("clip")) c.unsupported("clip");
  if (s.direction != "forward" && s.direction != "reverse" && s.direction != "bidirectional")
    c.bad("direction '" + s.direction + "' is not forward, reverse or bidirectional");
  if (s.hidden < 1) c.bad("hidden_size must be positive");
  const auto expect = [&](size_t k, const std::vector<int64_t>& dims, const char* what) {
    if (!c.has(k)) return;
    if (c.input(k).dims != dims) c.bad(std::string(what) + " has the wrong shape for hidden_size " + std::to_string(s.hidden));
    need_float(c, c.input(k));
  };
  expect(1, {s.dirs, gates * s.hidden, s.input}, "W");
  expect(2, {s.dirs, gates * s.hidden, s.hidden}, "R");
  expect(3, {s.dirs, 2 * gates * s.hidden}, "B");
  expect(5, state_dims(s), "initial_h");
  s.lens.assign(static_cast<size_t>(s.batch), s.seq);
  if (c.has(4)) {
    s.lens = as_ints(c.input(4));
    if (static_cast<int64_t>(s.lens.size()) != s.batch) c.bad("sequence_lens must hold one length per batch row");
    for (int64_t l : s.lens)
      if (l < 0 || l > s.seq) c.bad("sequence length " + std::to_string(l) + " is outside [0, " + std::to_string(s.seq) + "]");
  }
  return s;
}

// x[t, b, :] with either layout.
const float* x_at(const Tensor& x, const RnnSetup& s, int64_t t, int64_t b) {
  return x.f.data() + (s.layout1 ? (b * s.seq + t) : (t * s.batch + b)) * s.input;
}

// Y [seq, dirs, batch, H] (layout 0) or [batch, seq, dirs, H]; states [dirs, batch, H] or [batch, dirs, H].
float* y_at(Tensor& y, const RnnSetup& s, int64_t t, int64_t d, int64_t b) {
  return y.f.data() + (s.layout1 ? ((b * s.seq + t) * s.dirs + d) : ((t * s.dirs + d) * s.batch + b)) * s.hidden;
}
int64_t state_off(const RnnSetup& s, int64_t d, int64_t b) {
  return (s.layout1 ? (b * s.dirs + d) : (d * s.batch + b)) * s.hidden;
}
std::vector<int64_t> state_dims(const RnnSetup& s) {
  return s.layout1 ? std::vector<int64_t>{s.batch, s.dirs, s.hidden} : std::vector<int64_t>{s.dirs, s.batch, s.hidden};
}
std::vector<int64_t> y_dims(const RnnSetup& s) {
  return s.layout1 ? std::vector<int64_t>{s.batch, s.seq, s.dirs, s.hidden}
                   : std::vector<int64_t>{s.seq, s.dirs, s.batch, s.hidden};
}

// The time loop every recurrence shares, for direction d: per batch row, `cell(b, xt, hv)` steps the
// hidden state hv (H floats, updated in place) on input row xt, over the row's sequence length in
// the direction's order; each new state is also Y's entry for that step.
template <class Cell>
void recur(const RnnSetup& s, const Tensor& x, Tensor& y, Tensor& yh, int64_t d, Cell&& cell) {
  const bool reverse = s.direction == "reverse" || d == 1;
  for (int64_t b = 0; b < s.batch; ++b) {
    float* hs = yh.f.data() + state_off(s, d, b);
    const int64_t len = s.lens[b];
    for (int64_t step = 0; step < len; ++step) {
      const int64_t t = reverse ? len - 1 - step : step;
      Eigen::Map<const Eigen::RowVectorXf> xt(x_at(x, s, t, b), s.input);
      Eigen::Map<Eigen::RowVectorXf> hv(hs, s.hidden);
      cell(b, xt, hv);
      std::copy_n(hs, s.hidden, y_at(y, s, t, d, b));
    }
  }
}

}  // namespace

void op_LSTM(OpCall& c) {
  const RnnSetup s = rnn_setup(c, {"Sigmoid", "Tanh", "Tanh"}, 4);
  if (c.attr_i("input_forget", 0)) c.unsupported("input_forget=1");
  if (c.has(6) && c.input(6).dims != state_dims(s)) c.bad("initial_c has the wrong shape");
  if (c.has(7) && c.input(7).dims != std::vector<int64_t>{s.dirs, 3 * s.hidden}) c.bad("P has the wrong shape");
  const Tensor& x = c.input(0);
  const Tensor& w = c.input(1);
  const Tensor& r = c.input(2);
  const int64_t h = s.hidden, g4 = 4 * h;
  Tensor y = Tensor::zeros(x.dtype, y_dims(s));
  Tensor yh = Tensor::zeros(x.dtype, state_dims(s)), yc = Tensor::zeros(x.dtype, state_dims(s));
  if (c.has(5)) yh.f = c.input(5).f;
  if (c.has(6)) yc.f = c.input(6).f;
  MatR gates(1, g4);
  for (int64_t d = 0; d < s.dirs; ++d) {
    CMapR wm(w.f.data() + d * g4 * s.input, g4, s.input);
    CMapR rm(r.f.data() + d * g4 * h, g4, h);
    std::vector<float> bias(static_cast<size_t>(g4), 0.0f), peep(static_cast<size_t>(3 * h), 0.0f);
    if (c.has(3))
      for (int64_t k = 0; k < g4; ++k) bias[k] = c.input(3).f[d * 8 * h + k] + c.input(3).f[d * 8 * h + g4 + k];
    if (c.has(7)) std::copy_n(c.input(7).f.begin() + d * 3 * h, 3 * h, peep.begin());
    recur(s, x, y, yh, d, [&](int64_t b, const auto& xt, auto& hv) {
      float* cs = yc.f.data() + state_off(s, d, b);
      gates.noalias() = xt * wm.transpose();
      gates.noalias() += hv * rm.transpose();
      const float* gp = gates.data();
      for (int64_t k = 0; k < h; ++k) {
        const float i = sigm(gp[k] + bias[k] + peep[k] * cs[k]);
        const float f = sigm(gp[2 * h + k] + bias[2 * h + k] + peep[2 * h + k] * cs[k]);
        const float cc = std::tanh(gp[3 * h + k] + bias[3 * h + k]);
        cs[k] = f * cs[k] + i * cc;
        const float o = sigm(gp[h + k] + bias[h + k] + peep[h + k] * cs[k]);
        hv(k) = o * std::tanh(cs[k]);
      }
    });
  }
  if (!c.out.empty()) c.out[0] = std::move(y);
  if (c.out.size() > 1) c.out[1] = std::move(yh);
  if (c.out.size() > 2) c.out[2] = std::move(yc);
}

void op_GRU(OpCall& c) {
  const RnnSetup s = rnn_setup(c, {"Sigmoid", "Tanh"}, 3);
  const bool lbr = c.attr_i("linear_before_reset", 0) != 0;
  const Tensor& x = c.input(0);
  const Tensor& w = c.input(1);
  const Tensor& r = c.input(2);
  const int64_t h = s.hidden, g3 = 3 * h;
  Tensor y = Tensor::zeros(x.dtype, y_dims(s));
  Tensor yh = Tensor::zeros(x.dtype, state_dims(s));
  if (c.has(5)) yh.f = c.input(5).f;
  MatR xw(1, g3), hr(1, g3);
  std::vector<float> hnew(static_cast<size_t>(h));
  for (int64_t d = 0; d < s.dirs; ++d) {
    CMapR wm(w.f.data() + d * g3 * s.input, g3, s.input);
    CMapR rm(r.f.data() + d * g3 * h, g3, h);
    std::vector<float> wb(static_cast<size_t>(g3), 0.0f), rb(static_cast<size_t>(g3), 0.0f);
    if (c.has(3))
      for (int64_t k = 0; k < g3; ++k) {
        wb[k] = c.input(3).f[d * 6 * h + k];
        rb[k] = c.input(3).f[d * 6 * h + g3 + k];
      }
    recur(s, x, y, yh, d, [&](int64_t, const auto& xt, auto& hv) {
      xw.noalias() = xt * wm.transpose();
      hr.noalias() = hv * rm.transpose();
      // Reset gate first: the candidate reads (r * H) R_h^T (or r * (H R_h^T) with linear_before_reset).
      Eigen::RowVectorXf rh(h);
      for (int64_t k = 0; k < h; ++k) rh(k) = sigm(xw(0, h + k) + wb[h + k] + hr(0, h + k) + rb[h + k]);
      Eigen::RowVectorXf lin(h);
      if (lbr) {
        for (int64_t k = 0; k < h; ++k) lin(k) = rh(k) * (hr(0, 2 * h + k) + rb[2 * h + k]);
      } else {
        lin.noalias() = rh.cwiseProduct(hv) * rm.bottomRows(h).transpose();
        for (int64_t k = 0; k < h; ++k) lin(k) += rb[2 * h + k];
      }
      for (int64_t k = 0; k < h; ++k) {
        const float z = sigm(xw(0, k) + wb[k] + hr(0, k) + rb[k]);
        const float hh = std::tanh(xw(0, 2 * h + k) + wb[2 * h + k] + lin(k));
        hnew[k] = (1.0f - z) * hh + z * hv(k);
      }
      for (int64_t k = 0; k < h; ++k) hv(k) = hnew[k];
    });
  }
  if (!c.out.empty()) c.out[0] = std::move(y);
  if (c.out.size() > 1) c.out[1] = std::move(yh);
}

void op_RNN(OpCall& c) {
  const RnnSetup s = rnn_setup(c, {"Tanh"}, 1);
  const Tensor& x = c.input(0);
  const Tensor& w = c.input(1);
  const Tensor& r = c.input(2);
  const int64_t h = s.hidden;
  Tensor y = Tensor::zeros(x.dtype, y_dims(s));
  Tensor yh = Tensor::zeros(x.dtype, state_dims(s));
  if (c.has(5)) yh.f = c.input(5).f;
  MatR pre(1, h);
  for (int64_t d = 0; d < s.dirs; ++d) {
    CMapR wm(w.f.data() + d * h * s.input, h, s.input);
    CMapR rm(r.f.data() + d * h * h, h, h);
    std::vector<float> bias(static_cast<size_t>(h), 0.0f);
    if (c.has(3))
      for (int64_t k = 0; k < h; ++k) bias[k] = c.input(3).f[d * 2 * h + k] + c.input(3).f[d * 2 * h + h + k];
    recur(s, x, y, yh, d, [&](int64_t, const auto& xt, auto& hv) {
      pre.noalias() = xt * wm.transpose();
      pre.noalias() += hv * rm.transpose();
      for (int64_t k = 0; k < h; ++k) hv(k) = std::tanh(pre(0, k) + bias[k]);
    });
  }
  if (!c.out.empty()) c.out[0] = std::move(y);
  if (c.out.size() > 1) c.out[1] = std::move(yh);
}

// Upsample (opsets 7-9, Resize's predecessor): Resize with asymmetric coordinates and, for nearest,
// the floor rounding that Upsample specifies, on a synthesized Resize node.
void op_Upsample(OpCall& c) {
  onnx::NodeProto node;
  node.set_op_type("Resize");
  node.set_name(c.node.name());
  const auto set_s = [&](const char* name, const std::string& v) {
    auto* a = node.add_attribute();
    a->set_name(name);
    a->set_type(onnx::AttributeProto::STRING);
    a->set_s(v);
  };
  const std::string mode = c.attr_s("mode", "nearest");
  set_s("mode", mode == "bilinear" ? "linear" : mode);
  set_s("coordinate_transformation_mode", "asymmetric");
  set_s("nearest_mode", "floor");
  Tensor scales;
  if (c.opset >= 9) {
    scales = c.input(1);
  } else {
    const auto values = c.attr_floats("scales");
    scales = Tensor::floats({static_cast<int64_t>(values.size())}, values);
  }
  OpCall resize{node, {c.in[0], nullptr, &scales}, std::vector<Tensor>(1), 11, {}};
  op_Resize(resize);
  c.out[0] = std::move(resize.out[0]);
}

namespace {

// GridSample's source coordinate of a normalized grid value in [-1, 1] along a dim of `size`, with
// the padding mode's border handling (PyTorch's grid_sampler semantics, which ONNX's tests follow).
float reflect(float v, float twice_low, float twice_high) {
  if (twice_low == twice_high) return 0.0f;
  const float low = twice_low / 2, span = (twice_high - twice_low) / 2;
  v = std::fabs(v - low);
  const float extra = std::fmod(v, span);
  const auto flips = static_cast<int64_t>(std::floor(v / span));
  return flips % 2 == 0 ? extra + low : span - extra + low;
}

float padded_coordinate(float v, int64_t size, const std::string& padding, bool align_corners) {
  const auto clip = [size](float x) { return std::min(static_cast<float>(size - 1), std::max(x, 0.0f)); };
  if (padding == "border") return clip(v);
  if (padding == "reflection") {
    v = align_corners ? reflect(v, 0, 2.0f * static_cast<float>(size - 1)) : reflect(v, -1, 2.0f * static_cast<float>(size) - 1);
    return clip(v);
  }
  return v;
}

float unnormalized(float v, int64_t size, bool align_corners) {
  return align_corners ? (v + 1) / 2 * static_cast<float>(size - 1) : ((v + 1) * static_cast<float>(size) - 1) / 2;
}

}  // namespace

void op_GridSample(OpCall& c) {
  const Tensor& x = c.input(0);
  const Tensor& grid = c.input(1);
  need_float(c, x);
  need_float(c, grid);
  if (x.dims.size() != 4) c.bad("input X " + dims_text(x.dims) + " must be N x C x H x W");
  if (grid.dims.size() != 4 || grid.dims[0] != x.dims[0] || grid.dims[3] != 2)
    c.bad("grid " + dims_text(grid.dims) + " must be N x H_out x W_out x 2 with X's N");
  const std::string mode = c.attr_s("mode", "bilinear"), padding = c.attr_s("padding_mode", "zeros");
  if (mode != "bilinear" && mode != "nearest" && mode != "bicubic") c.unsupported("mode '" + mode + "'");
  if (padding != "zeros" && padding != "border" && padding != "reflection") c.unsupported("padding_mode '" + padding + "'");
  const bool align = c.attr_i("align_corners", 0) != 0;
  const int64_t n = x.dims[0], ch = x.dims[1], h = x.dims[2], w = x.dims[3], ho = grid.dims[1], wo = grid.dims[2];
  Tensor& o = c.out[0];
  o = Tensor::zeros(x.dtype, {n, ch, ho, wo});
  for (int64_t b = 0; b < n; ++b)
    for (int64_t i = 0; i < ho; ++i)
      for (int64_t j = 0; j < wo; ++j) {
        const float* g = grid.f.data() + ((b * ho + i) * wo + j) * 2;
        // A NaN grid value samples nothing; far-off ones are pulled in to where every padding mode
        // already gives its final answer (so float -> int64 conversions below stay defined).
        if (!std::isfinite(g[0]) || !std::isfinite(g[1])) continue;
        const float gx = std::clamp(unnormalized(g[0], w, align), -1e9f, 1e9f);
        const float gy = std::clamp(unnormalized(g[1], h, align), -1e9f, 1e9f);
        for (int64_t k = 0; k < ch; ++k) {
          const float* plane = x.f.data() + (b * ch + k) * h * w;
          // A tap outside the input reads 0 (zeros padding; the other modes moved it inside).
          const auto at = [&](int64_t yy, int64_t xx) { return yy >= 0 && yy < h && xx >= 0 && xx < w ? plane[yy * w + xx] : 0.0f; };
          float v = 0;
          if (mode == "bicubic") {
            // Taps around the unpadded position, each moved inside by the padding mode on its own.
            const float x0 = std::floor(gx), y0 = std::floor(gy);
            const auto wx = cubic_weights(gx - x0, -0.75f), wy = cubic_weights(gy - y0, -0.75f);
            for (int r = 0; r < 4; ++r) {
              const float yy = padded_coordinate(y0 - 1 + static_cast<float>(r), h, padding, align);
              for (int q = 0; q < 4; ++q) {
                const float xx = padded_coordinate(x0 - 1 + static_cast<float>(q), w, padding, align);
                v += wy[static_cast<size_t>(r)] * wx[static_cast<size_t>(q)] *
                     at(static_cast<int64_t>(std::floor(yy)), static_cast<int64_t>(std::floor(xx)));
              }
            }
          } else {
            const float px = padded_coordinate(gx, w, padding, align), py = padded_coordinate(gy, h, padding, align);
            if (mode == "nearest") {
              v = at(static_cast<int64_t>(std::nearbyint(py)), static_cast<int64_t>(std::nearbyint(px)));
            } else {
              const float x0 = std::floor(px), y0 = std::floor(py), tx = px - x0, ty = py - y0;
              const auto xi = static_cast<int64_t>(x0), yi = static_cast<int64_t>(y0);
              v = at(yi, xi) * (1 - tx) * (1 - ty) + at(yi, xi + 1) * tx * (1 - ty) + at(yi + 1, xi) * (1 - tx) * ty +
                  at(yi + 1, xi + 1) * tx * ty;
            }
          }
          o.f[static_cast<size_t>(((b * ch + k) * ho + i) * wo + j)] = v;
        }
      }
  round_to_dtype(o);
}

}  // namespace compress::eval
