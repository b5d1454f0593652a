// Shape and data-movement kernels (DepthToSpace/SpaceToDepth among them), constants, and If.
#include <algorithm>
#include <cmath>
#include <numeric>

#include "core/checked.h"
#include "eval/broadcast.h"
#include "eval/ops.h"

namespace compress::eval {

namespace {

std::vector<int64_t> axes_arg(const OpCall& c, size_t input, const char* attr) {
  if (c.has(input)) return as_ints(c.input(input));
  return c.attr_ints(attr);
}

}  // namespace

void op_Reshape(OpCall& c) {
  const Tensor& x = c.input(0);
  std::vector<int64_t> shape = as_ints(c.input(1));
  const bool allowzero = c.attr_i("allowzero", 0) != 0;
  int64_t infer = -1;
  std::vector<int64_t> known_dims;
  for (size_t k = 0; k < shape.size(); ++k) {
    if (shape[k] == 0 && !allowzero) {
      if (k >= x.dims.size()) c.bad("shape 0 at dim " + std::to_string(k) + " beyond input rank");
      shape[k] = x.dims[k];
    }
    if (shape[k] == -1 && infer < 0) infer = static_cast<int64_t>(k);
    else known_dims.push_back(shape[k]);
  }
  // Negative dims (a second -1 among them) and products past int64 are no shape for any input.
  const auto known = checked_product(known_dims);
  if (!known) c.bad("shape holds a negative dim or its product overflows int64");
  if (infer >= 0) shape[static_cast<size_t>(infer)] = *known ? x.numel() / *known : 0;
  if (checked_product(shape) != x.numel()) c.bad("cannot reshape " + std::to_string(x.numel()) + " elements");
  c.out[0] = x;
  c.out[0].dims = shape;
}

void op_Flatten(OpCall& c) {
  const Tensor& x = c.input(0);
  const int64_t rank = static_cast<int64_t>(x.dims.size());
  int64_t axis = c.attr_i("axis", 1);
  if (axis < 0) axis += rank;
  if (axis < 0 || axis > rank) c.bad("axis " + std::to_string(c.attr_i("axis", 1)) + " out of range for rank " + std::to_string(rank));
  int64_t a = 1;
  for (int64_t k = 0; k < axis; ++k) a *= x.dims[k];
  c.out[0] = x;
  c.out[0].dims = {a, a ? x.numel() / a : 0};
}

void op_Transpose(OpCall& c) {
  const Tensor& x = c.input(0);
  const size_t rank = x.dims.size();
  std::vector<int64_t> perm = c.attr_ints("perm");
  if (perm.empty())
    for (size_t k = 0; k < rank; ++k) perm.push_back(static_cast<int64_t>(rank - 1 - k));
  std::vector<bool> used(rank, false);
  if (perm.size() != rank) c.bad("perm has " + std::to_string(perm.size()) + " entries for rank " + std::to_string(rank));
  for (int64_t p : perm) {
    if (p < 0 || p >= static_cast<int64_t>(rank) || used[static_cast<size_t>(p)]) c.bad("perm is not a permutation");
    used[static_cast<size_t>(p)] = true;
  }
  std::vector<int64_t> out_dims(rank);
  const auto in_strides = strides_of(x.dims);
  std::vector<int64_t> st(rank);
  for (size_t k = 0; k < rank; ++k) {
    out_dims[k] = x.dims[perm[k]];
    st[k] = in_strides[perm[k]];
  }
  std::vector<int64_t> index(static_cast<size_t>(x.numel()));
  for_each_index(out_dims, [&](int64_t k, const std::vector<int64_t>& idx) {
    int64_t off = 0;
    for (size_t d = 0; d < rank; ++d) off += idx[d] * st[d];
    index[k] = off;
  });
  c.out[0] = take(x, out_dims, index);
}

namespace {

// DepthToSpace (to_space) and SpaceToDepth on N x C x H x W: each output element's source index.
void depth_space(OpCall& c, bool to_space) {
  const Tensor& x = c.input(0);
  if (x.dims.size() != 4) c.bad("input must have rank 4 (N x C x H x W)");
  const int64_t b = c.attr_i("blocksize", 0);
  if (b < 1 || b > 4096) c.bad("blocksize must be in [1, 4096]");
  const int64_t n = x.dims[0], ch = x.dims[1], h = x.dims[2], w = x.dims[3];
  const bool crd = c.attr_s("mode", "DCR") == "CRD";
  if (to_space ? ch % (b * b) != 0 : (h % b != 0 || w % b != 0))
    c.bad(to_space ? "channels must be a multiple of blocksize^2" : "height and width must be multiples of blocksize");
  const std::vector<int64_t> dims = to_space ? std::vector<int64_t>{n, ch / (b * b), h * b, w * b}
                                             : std::vector<int64_t>{n, ch * b * b, h / b, w / b};
  std::vector<int64_t> index(static_cast<size_t>(x.numel()));
  for_each_index(dims, [&](int64_t k, const std::vector<int64_t>& o) {
    if (to_space) {
      const int64_t i = o[2] % b, j = o[3] % b, oc = dims[1];
      const int64_t src_c = crd ? (o[1] * b + i) * b + j : (i * b + j) * oc + o[1];
      index[static_cast<size_t>(k)] = ((o[0] * ch + src_c) * h + o[2] / b) * w + o[3] / b;
    } else {
      const int64_t block = o[1] / ch, src_c = o[1] % ch, i = block / b, j = block % b;
      index[static_cast<size_t>(k)] = ((o[0] * ch + src_c) * h + o[2] * b + i) * w + o[3] * b + j;
    }
  });
  c.out[0] = take(x, dims, index);
}

}  // namespace

void op_DepthToSpace(OpCall& c) { depth_space(c, true); }
void op_SpaceToDepth(OpCall& c) { depth_space(c, false); }

void op_Squeeze(OpCall& c) {
  const Tensor& x = c.input(0);
  const int64_t rank = static_cast<int64_t>(x.dims.size());
  const auto axes = axes_arg(c, 1, "axes");
  std::vector<bool> drop(static_cast<size_t>(rank), false);
  if (axes.empty())
    for (int64_t k = 0; k < rank; ++k) drop[k] = x.dims[k] == 1;
  for (auto a : axes) {
    const int64_t k = norm_axis(c, a, rank);
    if (x.dims[static_cast<size_t>(k)] != 1)
      c.bad("axis " + std::to_string(a) + " has size " + std::to_string(x.dims[static_cast<size_t>(k)]) + ", not 1");
    drop[static_cast<size_t>(k)] = true;
  }
  c.out[0] = x;
  c.out[0].dims.clear();
  for (int64_t k = 0; k < rank; ++k)
    if (!drop[k]) c.out[0].dims.push_back(x.dims[k]);
}

void op_Unsqueeze(OpCall& c) {
  const Tensor& x = c.input(0);
  auto axes = axes_arg(c, 1, "axes");
  const int64_t rank = static_cast<int64_t>(x.dims.size() + axes.size());
  for (auto& a : axes) a = norm_axis(c, a, rank);
  std::sort(axes.begin(), axes.end());
  if (std::adjacent_find(axes.begin(), axes.end()) != axes.end()) c.bad("axes name one axis twice");
  std::vector<int64_t> dims = x.dims;
  for (auto a : axes) dims.insert(dims.begin() + a, 1);
  c.out[0] = x;
  c.out[0].dims = dims;
}

void op_Concat(OpCall& c) {
  const Tensor& first = c.input(0);
  const int64_t rank = static_cast<int64_t>(first.dims.size());
  const int64_t axis = norm_axis(c, c.attr_i("axis", 0), rank);
  Tensor& o = c.out[0];
  o.dtype = first.dtype;
  o.dims = first.dims;
  o.dims[axis] = 0;
  int64_t outer = 1;
  for (int64_t k = 0; k < axis; ++k) outer *= first.dims[k];
  for (size_t n = 0; n < c.n_in(); ++n) {
    const auto& dims = c.input(n).dims;
    if (c.input(n).dtype != first.dtype) c.bad("inputs differ in type");  // copied from one storage
    if (dims.size() != first.dims.size()) c.bad("inputs differ in rank");
    for (int64_t k = 0; k < rank; ++k)
      if (k != axis && dims[static_cast<size_t>(k)] != first.dims[static_cast<size_t>(k)])
        c.bad("inputs differ in dim " + std::to_string(k) + " outside the concat axis");
    o.dims[axis] += dims[axis];
  }
  const int64_t out_row = numel_of(o.dims) / std::max<int64_t>(outer, 1);
  o.f.resize(o.is_float() ? static_cast<size_t>(numel_of(o.dims)) : 0);
  o.i.resize(o.is_float() ? 0 : static_cast<size_t>(numel_of(o.dims)));
  int64_t col = 0;
  for (size_t n = 0; n < c.n_in(); ++n) {
    const Tensor& t = c.input(n);
    if (t.dims.size() != first.dims.size()) c.bad("inputs differ in rank");
    const int64_t row = outer ? t.numel() / outer : 0;
    for (int64_t r = 0; r < outer; ++r) {
      if (o.is_float()) std::copy_n(t.f.begin() + r * row, row, o.f.begin() + r * out_row + col);
      else std::copy_n(t.i.begin() + r * row, row, o.i.begin() + r * out_row + col);
    }
    col += row;
  }
}

void op_Split(OpCall& c) {
  const Tensor& x = c.input(0);
  const int64_t rank = static_cast<int64_t>(x.dims.size());
  const int64_t axis = norm_axis(c, c.attr_i("axis", 0), rank);
  const auto n_out = static_cast<int64_t>(c.out.size());
  std::vector<int64_t> split = c.opset < 13 ? c.attr_ints("split") : (c.has(1) ? as_ints(c.input(1)) : std::vector<int64_t>{});
  const int64_t len = x.dims[axis];
  if (split.empty()) {
    const int64_t chunk = (len + n_out - 1) / n_out;
    for (int64_t k = 0; k < n_out; ++k) split.push_back(std::min(chunk, len - k * chunk));
  }
  if (static_cast<int64_t>(split.size()) != n_out) c.bad("split sizes do not match the outputs");
  int64_t total = 0;
  for (int64_t part : split) {
    if (part < 0) c.bad("negative split size " + std::to_string(part));
    total += part;
  }
  if (total != len) c.bad("split sizes add up to " + std::to_string(total) + ", not the axis length " + std::to_string(len));
  int64_t outer = 1, inner = 1;
  for (int64_t k = 0; k < axis; ++k) outer *= x.dims[k];
  for (int64_t k = axis + 1; k < rank; ++k) inner *= x.dims[k];
  int64_t start = 0;
  for (int64_t n = 0; n < n_out; ++n) {
    std::vector<int64_t> dims = x.dims;
    dims[axis] = split[n];
    std::vector<int64_t> index;
    index.reserve(static_cast<size_t>(numel_of(dims)));
    for (int64_t o = 0; o < outer; ++o)
      for (int64_t k = 0; k < split[n]; ++k)
        for (int64_t i = 0; i < inner; ++i) index.push_back((o * len + start + k) * inner + i);
    c.out[n] = take(x, dims, index);
    start += split[n];
  }
}

void op_Slice(OpCall& c) {
  const Tensor& x = c.input(0);
  const int64_t rank = static_cast<int64_t>(x.dims.size());
  std::vector<int64_t> starts, ends, axes, steps;
  if (c.opset < 10) {
    starts = c.attr_ints("starts");
    ends = c.attr_ints("ends");
    axes = c.attr_ints("axes");
  } else {
    starts = as_ints(c.input(1));
    ends = as_ints(c.input(2));
    if (c.has(3)) axes = as_ints(c.input(3));
    if (c.has(4)) steps = as_ints(c.input(4));
  }
  if (axes.empty())
    for (size_t k = 0; k < starts.size(); ++k) axes.push_back(static_cast<int64_t>(k));
  if (steps.empty()) steps.assign(starts.size(), 1);
  if (ends.size() != starts.size() || axes.size() != starts.size() || steps.size() != starts.size())
    c.bad("starts, ends, axes and steps differ in length");
  std::vector<int64_t> begin(static_cast<size_t>(rank), 0), step(static_cast<size_t>(rank), 1), dims = x.dims;
  for (size_t k = 0; k < axes.size(); ++k) {
    const int64_t a = norm_axis(c, axes[k], rank);
    const int64_t d = x.dims[a];
    int64_t s = starts[k], e = ends[k];
    const int64_t st = steps[k];
    if (st == 0) c.bad("step 0");
    if (s < 0) s += d;
    if (e < 0) e += d;
    if (st > 0) {
      s = std::clamp<int64_t>(s, 0, d);
      e = std::clamp<int64_t>(e, 0, d);
      dims[a] = e > s ? (e - s + st - 1) / st : 0;
    } else {
      s = std::clamp<int64_t>(s, 0, d - 1);
      e = std::clamp<int64_t>(e, -1, d - 1);
      dims[a] = s > e ? (s - e + (-st) - 1) / (-st) : 0;
    }
    begin[a] = s;
    step[a] = st;
  }
  const auto strides = strides_of(x.dims);
  std::vector<int64_t> index(static_cast<size_t>(numel_of(dims)));
  for_each_index(dims, [&](int64_t k, const std::vector<int64_t>& idx) {
    int64_t off = 0;
    for (int64_t d = 0; d < rank; ++d) off += (begin[d] + idx[d] * step[d]) * strides[d];
    index[k] = off;
  });
  c.out[0] = take(x, dims, index);
}

void op_Gather(OpCall& c) {
  const Tensor& x = c.input(0);
  const Tensor& ind = c.input(1);
  const int64_t rank = static_cast<int64_t>(x.dims.size());
  if (rank == 0) c.bad("input 0 is a scalar; Gather needs rank >= 1");
  const int64_t axis = norm_axis(c, c.attr_i("axis", 0), rank);
  int64_t outer = 1, inner = 1;
  for (int64_t k = 0; k < axis; ++k) outer *= x.dims[k];
  for (int64_t k = axis + 1; k < rank; ++k) inner *= x.dims[k];
  const int64_t len = x.dims[axis];
  std::vector<int64_t> dims(x.dims.begin(), x.dims.begin() + axis);
  dims.insert(dims.end(), ind.dims.begin(), ind.dims.end());
  dims.insert(dims.end(), x.dims.begin() + axis + 1, x.dims.end());
  const auto indices = as_ints(ind);
  std::vector<int64_t> index;
  index.reserve(static_cast<size_t>(numel_of(dims)));
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t j : indices) {
      if (j < 0) j += len;
      if (j < 0 || j >= len) c.bad("index " + std::to_string(j) + " out of range");
      for (int64_t i = 0; i < inner; ++i) index.push_back((o * len + j) * inner + i);
    }
  c.out[0] = take(x, dims, index);
}

void op_Shape(OpCall& c) {
  const Tensor& x = c.input(0);
  const int64_t rank = static_cast<int64_t>(x.dims.size());
  int64_t start = c.attr_i("start", 0), end = c.attr_i("end", rank);
  if (start < 0) start += rank;
  if (end < 0) end += rank;
  start = std::clamp<int64_t>(start, 0, rank);
  end = std::clamp<int64_t>(end, 0, rank);
  std::vector<int64_t> v(x.dims.begin() + start, x.dims.begin() + std::max(start, end));
  c.out[0] = Tensor::ints({static_cast<int64_t>(v.size())}, v);
}

void op_Size(OpCall& c) { c.out[0] = Tensor::ints({}, {c.input(0).numel()}); }

void op_ConstantOfShape(OpCall& c) {
  const auto dims = as_ints(c.input(0));
  Tensor value = Tensor::floats({1}, {0.0f});
  if (const auto* a = c.attr("value")) value = from_proto(a->t());
  if (value.numel() != 1) c.bad("value must hold one element, holds " + std::to_string(value.numel()));
  Tensor o = Tensor::zeros(value.dtype, dims);
  if (o.is_float()) std::fill(o.f.begin(), o.f.end(), value.f.at(0));
  else std::fill(o.i.begin(), o.i.end(), value.i.at(0));
  c.out[0] = std::move(o);
}

void op_Constant(OpCall& c) {
  if (const auto* a = c.attr("value")) {
    c.out[0] = from_proto(a->t());
  } else if (const auto* f = c.attr("value_float")) {
    c.out[0] = Tensor::floats({}, {f->f()});
  } else if (const auto* fs = c.attr("value_floats")) {
    c.out[0] = Tensor::floats({fs->floats_size()}, {fs->floats().begin(), fs->floats().end()});
  } else if (const auto* i = c.attr("value_int")) {
    c.out[0] = Tensor::ints({}, {i->i()});
  } else if (const auto* is = c.attr("value_ints")) {
    c.out[0] = Tensor::ints({is->ints_size()}, {is->ints().begin(), is->ints().end()});
  } else {
    c.unsupported("only value, value_float(s) and value_int(s) are supported");
  }
}

void op_Expand(OpCall& c) {
  const Tensor& x = c.input(0);
  if (c.input(1).dims.size() != 1) c.bad("shape input must be 1-D, has rank " + std::to_string(c.input(1).dims.size()));
  const auto shape = as_ints(c.input(1));
  for (int64_t v : shape)
    if (v < 0) c.bad("shape holds " + std::to_string(v) + " (dims must be >= 0)");
  const auto dims = broadcast_dims(c, x.dims, shape);
  std::vector<int64_t> index(static_cast<size_t>(numel_of(dims)));
  for_each_broadcast<1>(dims, {&x.dims}, [&](int64_t k, const std::array<int64_t, 1>& off) { index[k] = off[0]; });
  c.out[0] = take(x, dims, index);
}

void op_Tile(OpCall& c) {
  const Tensor& x = c.input(0);
  const auto reps = as_ints(c.input(1));
  if (reps.size() != x.dims.size())
    c.bad("repeats has " + std::to_string(reps.size()) + " entries, input has rank " + std::to_string(x.dims.size()));
  std::vector<int64_t> dims = x.dims;
  for (size_t k = 0; k < dims.size(); ++k) {
    const auto tiled = checked_mul(dims[k], reps[k]);
    if (reps[k] < 0 || !tiled) c.bad("repeats holds " + std::to_string(reps[k]) + " (must be >= 0 and keep dims in int64)");
    dims[k] = *tiled;
  }
  const auto strides = strides_of(x.dims);
  std::vector<int64_t> index(static_cast<size_t>(numel_of(dims)));
  for_each_index(dims, [&](int64_t k, const std::vector<int64_t>& idx) {
    int64_t off = 0;
    for (size_t d = 0; d < dims.size(); ++d) off += (idx[d] % x.dims[d]) * strides[d];
    index[k] = off;
  });
  c.out[0] = take(x, dims, index);
}

void op_Range(OpCall& c) {
  const Tensor& start = c.input(0);
  // Three scalars of one type; a count that is not finite and small would not convert to int64.
  for (size_t k = 1; k < 3; ++k)
    if (c.input(k).dtype != start.dtype) c.bad("start, limit and delta differ in type");
  for (size_t k = 0; k < 3; ++k)
    if (c.input(k).numel() != 1) c.bad("start, limit and delta must be single values");
  const double s = start.at(0), l = c.input(1).at(0), d = c.input(2).at(0);
  const double count = std::max(0.0, std::ceil((l - s) / d));
  if (!(count <= 1e9)) c.bad("delta " + std::to_string(d) + " gives no finite count below 1e9");
  const auto n = static_cast<int64_t>(count);
  Tensor o = Tensor::zeros(start.dtype, {n});
  for (int64_t k = 0; k < n; ++k) {
    if (o.is_float()) o.f[k] = static_cast<float>(start.f[0] + static_cast<float>(k) * c.input(2).f[0]);
    else o.i[k] = start.i[0] + k * c.input(2).i[0];
  }
  c.out[0] = std::move(o);
}

void op_Pad(OpCall& c) {
  const Tensor& x = c.input(0);
  const int64_t rank = static_cast<int64_t>(x.dims.size());
  const std::string mode = c.attr_s("mode", "constant");
  std::vector<int64_t> pads;
  double value = 0;
  if (c.opset < 11) {
    pads = c.attr_ints("pads");
    value = c.attr_f("value", 0.0f);
  } else {
    pads = as_ints(c.input(1));
    if (c.has(2) && c.input(2).numel() > 0) value = c.input(2).at(0);
  }
  std::vector<int64_t> begin(static_cast<size_t>(rank), 0), end(static_cast<size_t>(rank), 0);
  if (c.has(3)) {
    const auto axes = as_ints(c.input(3));
    if (pads.size() != 2 * axes.size()) c.bad("pads must have 2 entries per axis");
    for (size_t k = 0; k < axes.size(); ++k) {
      const int64_t a = norm_axis(c, axes[k], rank);
      begin[a] = pads[k];
      end[a] = pads[k + axes.size()];
    }
  } else {
    if (static_cast<int64_t>(pads.size()) != 2 * rank) c.bad("pads must have 2 * rank entries");
    for (int64_t k = 0; k < rank; ++k) {
      begin[k] = pads[k];
      end[k] = pads[k + rank];
    }
  }
  std::vector<int64_t> dims(static_cast<size_t>(rank));
  for (int64_t k = 0; k < rank; ++k) dims[k] = x.dims[k] + begin[k] + end[k];
  const auto strides = strides_of(x.dims);
  std::vector<int64_t> index(static_cast<size_t>(numel_of(dims)));
  for_each_index(dims, [&](int64_t k, const std::vector<int64_t>& idx) {
    int64_t off = 0;
    for (int64_t d = 0; d < rank; ++d) {
      int64_t i = idx[d] - begin[d];
      const int64_t n = x.dims[d];
      if (i < 0 || i >= n) {
        if (mode == "constant") {
          off = -1;
          break;
        }
        if (mode == "edge") i = std::clamp<int64_t>(i, 0, n - 1);
        else if (mode == "reflect") {
          const int64_t period = 2 * (n - 1);
          if (period == 0) i = 0;
          else {
            i = ((i % period) + period) % period;
            if (i >= n) i = period - i;
          }
        } else if (mode == "wrap") {
          i = ((i % n) + n) % n;
        } else {
          c.unsupported("mode '" + mode + "'");
        }
      }
      off += i * strides[d];
    }
    index[k] = off;
  });
  c.out[0] = take(x, dims, index, value);
}

void op_If(OpCall& c) {
  if (c.input(0).numel() != 1) c.bad("condition must be a single value");
  const bool cond = c.input(0).at(0) != 0;
  const auto* branch = c.attr(cond ? "then_branch" : "else_branch");
  if (!branch) c.bad("missing branch");
  auto outs = c.run_subgraph(branch->g(), {});
  if (outs.size() != c.out.size()) c.bad("branch returns " + std::to_string(outs.size()) + " values");
  for (size_t k = 0; k < outs.size(); ++k) c.out[k] = std::move(outs[k]);
}

}  // namespace compress::eval
