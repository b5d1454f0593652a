// Index-driven kernels: triangular masks, running sums, gathers and scatters by index tensors, top-k,
// non-zero, one-hot, identity-like, compress and Einsum. Index values come from the model or its
// inputs, so each one is checked against the dim it addresses, and shapes against each other, before
// any element is read or written.
#include <algorithm>
#include <cmath>
#include <numeric>
#include <string>

#include "core/checked.h"
#include "eval/ops.h"

namespace compress::eval {

namespace {

int64_t rank_of(const Tensor& t) { return static_cast<int64_t>(t.dims.size()); }

// Product of dims[begin, end). Callers pass dims of a tensor that has elements: an empty one may pair
// a 0 with dims whose product overflows, and loops over such spans would never end.
int64_t span(const std::vector<int64_t>& dims, int64_t begin, int64_t end) {
  int64_t n = 1;
  for (int64_t k = begin; k < end; ++k) n *= dims[static_cast<size_t>(k)];
  return n;
}

// Index tensors must hold integers: a float index names no element (and NaN no int64 at all).
const std::vector<int64_t>& index_values(const OpCall& c, const Tensor& t, const std::string& what) {
  if (t.is_float()) c.bad(what + " must be an integer tensor");
  return t.i;
}

// The one integer of a scalar input (0-D, or 1-D of one element as some exporters write it).
int64_t scalar_int(const OpCall& c, size_t k, const std::string& what) {
  const Tensor& t = c.input(k);
  if (t.numel() != 1) c.bad(what + " must be a single value, has " + std::to_string(t.numel()));
  return index_values(c, t, what)[0];
}

// A possibly negative index into a dim of `len`, in [0, len).
int64_t norm_index(const OpCall& c, int64_t j, int64_t len, const std::string& what) {
  const int64_t k = j < 0 ? j + len : j;
  if (k < 0 || k >= len) c.bad(what + " " + std::to_string(j) + " out of range for a dim of " + std::to_string(len));
  return k;
}

// ScatterND / ScatterElements combine an update into the copy of data: none (replace), add, mul, and
// opset 18's max and min.
enum class Reduction { kNone, kAdd, kMul, kMax, kMin };

Reduction reduction_of(const OpCall& c) {
  const std::string r = c.attr_s("reduction", "none");
  if (r == "none") return Reduction::kNone;
  if (r == "add") return Reduction::kAdd;
  if (r == "mul") return Reduction::kMul;
  if (r == "max") return Reduction::kMax;
  if (r == "min") return Reduction::kMin;
  c.bad("unknown reduction '" + r + "'");
}

template <class T>
T reduce_one(Reduction r, T a, T b) {
  switch (r) {
    case Reduction::kAdd: return a + b;
    case Reduction::kMul: return a * b;
    case Reduction::kMax: return std::max(a, b);
    case Reduction::kMin: return std::min(a, b);
    case Reduction::kNone: break;
  }
  return b;
}

// o[at] = o[at] (reduction) upd[from]; integers wrap to the dtype as the runtime's typed math does.
void scatter_one(Tensor& o, int64_t at, const Tensor& upd, int64_t from, Reduction r) {
  const auto a = static_cast<size_t>(at), b = static_cast<size_t>(from);
  if (o.is_float()) {
    o.f[a] = reduce_one(r, o.f[a], upd.f[b]);
  } else if (r == Reduction::kMax || r == Reduction::kMin) {
    o.i[a] = reduce_one(r, o.i[a], upd.i[b]);
  } else {
    // Unsigned math so an overflowing add or mul wraps instead of being undefined.
    const uint64_t v = reduce_one(r, static_cast<uint64_t>(o.i[a]), static_cast<uint64_t>(upd.i[b]));
    o.i[a] = wrap_int(static_cast<int64_t>(v), o.dtype);
  }
}

void need_same_dtype(const OpCall& c, const Tensor& data, const Tensor& updates) {
  if (updates.dtype != data.dtype) c.bad("updates differ in type from data");
}

}  // namespace

void op_Trilu(OpCall& c) {
  const Tensor& x = c.input(0);
  if (x.dims.size() < 2) c.bad("input " + dims_text(x.dims) + " has rank " + std::to_string(x.dims.size()) + ", Trilu needs rank >= 2");
  const int64_t k = c.has(1) ? scalar_int(c, 1, "k") : 0;
  const bool upper = c.attr_i("upper", 1) != 0;
  const int64_t rows = x.dims[x.dims.size() - 2], cols = x.dims.back();
  Tensor o = x;
  const int64_t n = x.numel();
  for (int64_t e = 0; e < n; ++e) {
    const int64_t j = e % cols, i = (e / cols) % rows;
    if (upper ? j - i >= k : j - i <= k) continue;
    if (o.is_float()) o.f[static_cast<size_t>(e)] = 0;
    else o.i[static_cast<size_t>(e)] = 0;
  }
  c.out[0] = std::move(o);
}

void op_CumSum(OpCall& c) {
  const Tensor& x = c.input(0);
  const int64_t rank = rank_of(x);
  const int64_t axis = norm_axis(c, scalar_int(c, 1, "axis"), rank);
  const bool exclusive = c.attr_i("exclusive", 0) != 0, reverse = c.attr_i("reverse", 0) != 0;
  if (x.numel() == 0) {
    c.out[0] = x;
    return;
  }
  const int64_t outer = span(x.dims, 0, axis), len = x.dims[static_cast<size_t>(axis)], inner = span(x.dims, axis + 1, rank);
  Tensor o = Tensor::zeros(x.dtype, x.dims);
  for (int64_t a = 0; a < outer; ++a)
    for (int64_t b = 0; b < inner; ++b) {
      float fsum = 0;
      uint64_t isum = 0;  // unsigned, so overflow wraps as in the typed runtime
      for (int64_t s = 0; s < len; ++s) {
        const auto e = static_cast<size_t>((a * len + (reverse ? len - 1 - s : s)) * inner + b);
        if (x.is_float()) {
          if (exclusive) o.f[e] = fsum;
          fsum += x.f[e];
          if (!exclusive) o.f[e] = fsum;
        } else {
          if (exclusive) o.i[e] = wrap_int(static_cast<int64_t>(isum), x.dtype);
          isum += static_cast<uint64_t>(x.i[e]);
          if (!exclusive) o.i[e] = wrap_int(static_cast<int64_t>(isum), x.dtype);
        }
      }
    }
  round_to_dtype(o);
  c.out[0] = std::move(o);
}

void op_GatherElements(OpCall& c) {
  const Tensor& x = c.input(0);
  const Tensor& ind = c.input(1);
  const int64_t rank = rank_of(x);
  if (rank_of(ind) != rank) c.bad("indices " + dims_text(ind.dims) + " and data " + dims_text(x.dims) + " differ in rank");
  const int64_t axis = norm_axis(c, c.attr_i("axis", 0), rank);
  for (int64_t d = 0; d < rank; ++d)
    if (d != axis && ind.dims[d] > x.dims[d])
      c.bad("indices " + dims_text(ind.dims) + " exceed data " + dims_text(x.dims) + " along dim " + std::to_string(d));
  const auto& idx = index_values(c, ind, "indices");
  const auto strides = strides_of(x.dims);
  std::vector<int64_t> index(static_cast<size_t>(ind.numel()));
  for_each_index(ind.dims, [&](int64_t k, const std::vector<int64_t>& at) {
    int64_t off = 0;
    for (int64_t d = 0; d < rank; ++d)
      off += (d == axis ? norm_index(c, idx[static_cast<size_t>(k)], x.dims[axis], "index") : at[d]) * strides[d];
    index[static_cast<size_t>(k)] = off;
  });
  c.out[0] = take(x, ind.dims, index);
}

void op_GatherND(OpCall& c) {
  const Tensor& x = c.input(0);
  const Tensor& ind = c.input(1);
  const int64_t r = rank_of(x), q = rank_of(ind);
  const int64_t b = c.attr_i("batch_dims", 0);
  if (r < 1 || q < 1) c.bad("data " + dims_text(x.dims) + " and indices " + dims_text(ind.dims) + " must have rank >= 1");
  if (b < 0 || b >= std::min(r, q)) c.bad("batch_dims " + std::to_string(b) + " must be in [0, min(data rank, indices rank))");
  for (int64_t d = 0; d < b; ++d)
    if (ind.dims[d] != x.dims[d])
      c.bad("batch dim " + std::to_string(d) + " differs: indices " + dims_text(ind.dims) + ", data " + dims_text(x.dims));
  const int64_t m = ind.dims.back();
  if (m > r - b)
    c.bad("index tuples of " + std::to_string(m) + " entries for data " + dims_text(x.dims) + " after " + std::to_string(b) +
          " batch dims");
  std::vector<int64_t> dims(ind.dims.begin(), ind.dims.end() - 1);
  dims.insert(dims.end(), x.dims.begin() + b + m, x.dims.end());
  const auto& idx = index_values(c, ind, "indices");
  if (numel_of(dims) == 0) {
    c.out[0] = Tensor::zeros(x.dtype, dims);
    return;
  }
  const auto strides = strides_of(x.dims);
  const int64_t batches = span(x.dims, 0, b), block = span(x.dims, b, r), slice = span(x.dims, b + m, r);
  const int64_t tuples = span(ind.dims, b, q - 1);
  std::vector<int64_t> index;
  index.reserve(static_cast<size_t>(numel_of(dims)));
  for (int64_t bt = 0; bt < batches; ++bt)
    for (int64_t t = 0; t < tuples; ++t) {
      int64_t off = bt * block;
      for (int64_t j = 0; j < m; ++j)
        off += norm_index(c, idx[static_cast<size_t>((bt * tuples + t) * m + j)], x.dims[b + j], "index") * strides[b + j];
      for (int64_t s = 0; s < slice; ++s) index.push_back(off + s);
    }
  c.out[0] = take(x, dims, index);
}

void op_ScatterND(OpCall& c) {
  const Tensor& x = c.input(0);
  const Tensor& ind = c.input(1);
  const Tensor& upd = c.input(2);
  const int64_t r = rank_of(x), q = rank_of(ind);
  if (q < 1) c.bad("indices must have rank >= 1");
  need_same_dtype(c, x, upd);
  const int64_t k = ind.dims.back();
  if (k > r) c.bad("index tuples of " + std::to_string(k) + " entries for data " + dims_text(x.dims));
  std::vector<int64_t> want(ind.dims.begin(), ind.dims.end() - 1);
  want.insert(want.end(), x.dims.begin() + k, x.dims.end());
  if (upd.dims != want) c.bad("updates " + dims_text(upd.dims) + " must have shape " + dims_text(want));
  const Reduction red = reduction_of(c);
  const auto& idx = index_values(c, ind, "indices");
  if (upd.numel() == 0) {
    c.out[0] = x;
    return;
  }
  const auto strides = strides_of(x.dims);
  const int64_t tuples = span(ind.dims, 0, q - 1), slice = span(x.dims, k, r);
  Tensor o = x;
  for (int64_t t = 0; t < tuples; ++t) {
    int64_t off = 0;
    for (int64_t j = 0; j < k; ++j) off += norm_index(c, idx[static_cast<size_t>(t * k + j)], x.dims[j], "index") * strides[j];
    for (int64_t s = 0; s < slice; ++s) scatter_one(o, off + s, upd, t * slice + s, red);
  }
  round_to_dtype(o);
  c.out[0] = std::move(o);
}

void op_ScatterElements(OpCall& c) {
  const Tensor& x = c.input(0);
  const Tensor& ind = c.input(1);
  const Tensor& upd = c.input(2);
  const int64_t rank = rank_of(x);
  need_same_dtype(c, x, upd);
  if (rank_of(ind) != rank) c.bad("indices " + dims_text(ind.dims) + " and data " + dims_text(x.dims) + " differ in rank");
  if (upd.dims != ind.dims) c.bad("updates " + dims_text(upd.dims) + " and indices " + dims_text(ind.dims) + " differ in shape");
  const int64_t axis = norm_axis(c, c.attr_i("axis", 0), rank);
  for (int64_t d = 0; d < rank; ++d)
    if (d != axis && ind.dims[d] > x.dims[d])
      c.bad("indices " + dims_text(ind.dims) + " exceed data " + dims_text(x.dims) + " along dim " + std::to_string(d));
  const Reduction red = reduction_of(c);
  const auto& idx = index_values(c, ind, "indices");
  const auto strides = strides_of(x.dims);
  Tensor o = x;
  for_each_index(ind.dims, [&](int64_t k, const std::vector<int64_t>& at) {
    int64_t off = 0;
    for (int64_t d = 0; d < rank; ++d)
      off += (d == axis ? norm_index(c, idx[static_cast<size_t>(k)], x.dims[axis], "index") : at[d]) * strides[d];
    scatter_one(o, off, upd, k, red);
  });
  round_to_dtype(o);
  c.out[0] = std::move(o);
}

void op_TopK(OpCall& c) {
  const Tensor& x = c.input(0);
  const int64_t rank = rank_of(x);
  const int64_t axis = norm_axis(c, c.attr_i("axis", -1), rank);
  if (c.opset < 10 && !c.attr("k")) c.bad("attribute 'k' is required");
  const int64_t k = c.opset < 10 ? c.attr_i("k", 0) : scalar_int(c, 1, "k");
  const int64_t len = x.dims[static_cast<size_t>(axis)];
  if (k < 0 || k > len) c.bad("k " + std::to_string(k) + " out of range for an axis of " + std::to_string(len));
  const bool largest = c.attr_i("largest", 1) != 0;
  std::vector<int64_t> dims = x.dims;
  dims[static_cast<size_t>(axis)] = k;
  Tensor idx = Tensor::zeros(TP::INT64, dims);
  if (idx.numel() == 0) {
    c.out[0] = Tensor::zeros(x.dtype, dims);
    if (c.out.size() > 1) c.out[1] = std::move(idx);
    return;
  }
  const int64_t outer = span(x.dims, 0, axis), inner = span(x.dims, axis + 1, rank);
  std::vector<int64_t> order(static_cast<size_t>(len)), index(static_cast<size_t>(numel_of(dims)));
  for (int64_t a = 0; a < outer; ++a)
    for (int64_t b = 0; b < inner; ++b) {
      const int64_t base = a * len * inner + b;
      // Ties keep the lower index first, as ONNX specifies; NaN ranks above every number so the
      // order stays a strict weak order (std::partial_sort needs one).
      const auto before = [&](int64_t p, int64_t q) {
        const auto ep = static_cast<size_t>(base + p * inner), eq = static_cast<size_t>(base + q * inner);
        if (x.is_float()) {
          const float vp = x.f[ep], vq = x.f[eq];
          const bool np = std::isnan(vp), nq = std::isnan(vq);
          if (np != nq) return largest ? np : nq;
          if (!np && vp != vq) return largest ? vp > vq : vp < vq;
        } else if (x.i[ep] != x.i[eq]) {
          return largest ? x.i[ep] > x.i[eq] : x.i[ep] < x.i[eq];
        }
        return p < q;
      };
      std::iota(order.begin(), order.end(), int64_t{0});
      std::partial_sort(order.begin(), order.begin() + k, order.end(), before);
      for (int64_t j = 0; j < k; ++j) {
        const auto e = static_cast<size_t>((a * k + j) * inner + b);
        idx.i[e] = order[static_cast<size_t>(j)];
        index[e] = base + order[static_cast<size_t>(j)] * inner;
      }
    }
  c.out[0] = take(x, dims, index);
  if (c.out.size() > 1) c.out[1] = std::move(idx);
}

void op_NonZero(OpCall& c) {
  const Tensor& x = c.input(0);
  // A scalar counts as one element of a 1-D tensor, as numpy's nonzero treats it.
  const std::vector<int64_t> dims = x.dims.empty() ? std::vector<int64_t>{1} : x.dims;
  std::vector<int64_t> hits;
  for (int64_t e = 0; e < x.numel(); ++e)
    if (x.at(e) != 0) hits.push_back(e);
  const auto nnz = static_cast<int64_t>(hits.size());
  const int64_t r = static_cast<int64_t>(dims.size());
  const auto strides = strides_of(dims);
  Tensor o = Tensor::zeros(TP::INT64, {r, nnz});
  for (int64_t j = 0; j < nnz; ++j)
    for (int64_t d = 0; d < r; ++d) o.i[static_cast<size_t>(d * nnz + j)] = hits[static_cast<size_t>(j)] / strides[d] % dims[d];
  c.out[0] = std::move(o);
}

void op_OneHot(OpCall& c) {
  const Tensor& ind = c.input(0);
  const Tensor& depth_t = c.input(1);
  const Tensor& values = c.input(2);
  if (depth_t.numel() != 1) c.bad("depth must be a single value, has " + std::to_string(depth_t.numel()));
  if (values.numel() != 2) c.bad("values must hold [off, on], holds " + std::to_string(values.numel()) + " elements");
  // A float depth is cast to int64 (ONNX); bounded first so the cast is defined.
  const double depth_v = std::trunc(depth_t.at(0));
  if (!(depth_v >= 1 && depth_v <= 1 << 30)) c.bad("depth " + std::to_string(depth_t.at(0)) + " must be in [1, 2^30]");
  const auto depth = static_cast<int64_t>(depth_v);
  const int64_t r = rank_of(ind);
  const int64_t axis = norm_axis(c, c.attr_i("axis", -1), r + 1);
  std::vector<int64_t> dims = ind.dims;
  dims.insert(dims.begin() + axis, depth);
  Tensor o = Tensor::zeros(values.dtype, dims);
  if (o.is_float()) std::fill(o.f.begin(), o.f.end(), values.f[0]);
  else std::fill(o.i.begin(), o.i.end(), values.i[0]);
  const int64_t n = ind.numel();
  const int64_t inner = n ? span(ind.dims, axis, r) : 1;
  for (int64_t e = 0; e < n; ++e) {
    // Indices outside [-depth, depth) give a row of off values (ONNX), not an error.
    double v = std::trunc(ind.at(e));
    if (v < 0) v += static_cast<double>(depth);
    if (!(v >= 0 && v < static_cast<double>(depth))) continue;
    const auto at = static_cast<size_t>((e / inner * depth + static_cast<int64_t>(v)) * inner + e % inner);
    if (o.is_float()) o.f[at] = values.f[1];
    else o.i[at] = values.i[1];
  }
  c.out[0] = std::move(o);
}

void op_EyeLike(OpCall& c) {
  const Tensor& x = c.input(0);
  if (x.dims.size() != 2) c.bad("input " + dims_text(x.dims) + " has rank " + std::to_string(x.dims.size()) + ", EyeLike needs rank 2");
  const auto dtype = static_cast<int32_t>(c.attr_i("dtype", x.dtype));
  switch (dtype) {
    case TP::FLOAT: case TP::DOUBLE: case TP::FLOAT16: case TP::INT8: case TP::UINT8: case TP::INT16:
    case TP::UINT16: case TP::INT32: case TP::UINT32: case TP::INT64: case TP::UINT64: case TP::BOOL: break;
    default: c.bad("dtype " + std::to_string(dtype) + " is not a numeric or bool type");
  }
  const int64_t k = c.attr_i("k", 0), rows = x.dims[0], cols = x.dims[1];
  Tensor o = Tensor::zeros(dtype, x.dims);
  // k outside (-rows, cols) leaves no diagonal inside; checked first so i + k cannot overflow.
  if (k > -rows && k < cols)
    for (int64_t i = std::max<int64_t>(0, -k); i < rows && i + k < cols; ++i) {
      const auto e = static_cast<size_t>(i * cols + i + k);
      if (o.is_float()) o.f[e] = 1;
      else o.i[e] = 1;
    }
  c.out[0] = std::move(o);
}

void op_Compress(OpCall& c) {
  const Tensor& x = c.input(0);
  const Tensor& cond = c.input(1);
  if (cond.dims.size() != 1) c.bad("condition " + dims_text(cond.dims) + " must be 1-D");
  const bool flat = c.attr("axis") == nullptr;
  const int64_t rank = rank_of(x);
  const int64_t axis = flat ? 0 : norm_axis(c, c.attr_i("axis", 0), rank);
  const int64_t len = flat ? x.numel() : x.dims[static_cast<size_t>(axis)];
  // A shorter condition drops the rest (ONNX); a longer one names slices that do not exist.
  if (cond.numel() > len) c.bad("condition has " + std::to_string(cond.numel()) + " entries, the axis " + std::to_string(len));
  std::vector<int64_t> keep;
  for (int64_t k = 0; k < cond.numel(); ++k)
    if (cond.at(k) != 0) keep.push_back(k);
  const auto kept = static_cast<int64_t>(keep.size());
  if (flat) {
    c.out[0] = take(x, {kept}, keep);
    return;
  }
  std::vector<int64_t> dims = x.dims;
  dims[static_cast<size_t>(axis)] = kept;
  if (numel_of(dims) == 0) {
    c.out[0] = Tensor::zeros(x.dtype, dims);
    return;
  }
  const int64_t outer = span(x.dims, 0, axis), inner = span(x.dims, axis + 1, rank);
  std::vector<int64_t> index;
  index.reserve(static_cast<size_t>(numel_of(dims)));
  for (int64_t a = 0; a < outer; ++a)
    for (int64_t k : keep)
      for (int64_t b = 0; b < inner; ++b) index.push_back((a * len + k) * inner + b);
  c.out[0] = take(x, dims, index);
}

namespace {

// Einsum labels: 'A'-'Z' are 0-25 and 'a'-'z' 26-51 (so sorting ids sorts as the implicit output
// does, by character), and the ellipsis dims, right-aligned across operands, are 52 on.
constexpr int kEllipsisLabel = 52;
constexpr double kMaxEinsumSteps = 1e10;

struct EinsumTerm {
  std::vector<int> letters;
  int ellipsis_at = -1;  // position among the letters where "..." stands, or -1
};

EinsumTerm parse_term(const OpCall& c, const std::string& s) {
  EinsumTerm t;
  for (size_t p = 0; p < s.size(); ++p) {
    const char ch = s[p];
    if (ch >= 'A' && ch <= 'Z') {
      t.letters.push_back(ch - 'A');
    } else if (ch >= 'a' && ch <= 'z') {
      t.letters.push_back(26 + ch - 'a');
    } else if (s.compare(p, 3, "...") == 0 && t.ellipsis_at < 0) {
      t.ellipsis_at = static_cast<int>(t.letters.size());
      p += 2;
    } else {
      c.bad("equation term '" + s + "' holds '" + std::string(1, ch) + "' (letters and one '...' only)");
    }
  }
  return t;
}

// The term's label per axis, its "..." standing for `n_ell` dims that end at the last ellipsis label.
std::vector<int> term_labels(const EinsumTerm& t, int n_ell, int ell_rank) {
  std::vector<int> labels(t.letters.begin(), t.letters.end());
  if (t.ellipsis_at >= 0) {
    std::vector<int> ell;
    for (int e = ell_rank - n_ell; e < ell_rank; ++e) ell.push_back(kEllipsisLabel + e);
    labels.insert(labels.begin() + t.ellipsis_at, ell.begin(), ell.end());
  }
  return labels;
}

}  // namespace

// out[output labels] = sum over the other labels of the product of the operands, each indexed by its
// labels; a label repeated within one operand reads its diagonal. A plain loop over output x summed
// index space: this is the reference, not a fast path.
void op_Einsum(OpCall& c) {
  const size_t n_ops = c.n_in();
  if (n_ops == 0) c.bad("needs at least one operand");
  std::vector<const Tensor*> ops(n_ops);
  for (size_t k = 0; k < n_ops; ++k) {
    ops[k] = &c.input(k);
    if (ops[k]->dtype != ops[0]->dtype) c.bad("operands differ in type");
  }
  std::string eq;
  for (char ch : c.attr_s("equation", ""))
    if (ch != ' ') eq += ch;
  const size_t arrow = eq.find("->");
  const bool explicit_out = arrow != std::string::npos;
  const std::string lhs = eq.substr(0, arrow);
  std::vector<EinsumTerm> terms;
  for (size_t start = 0;;) {
    const size_t comma = lhs.find(',', start);
    terms.push_back(parse_term(c, lhs.substr(start, comma == std::string::npos ? std::string::npos : comma - start)));
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  if (terms.size() != n_ops)
    c.bad("equation '" + eq + "' names " + std::to_string(terms.size()) + " operands, the node has " + std::to_string(n_ops));

  // Ellipsis widths per operand and the broadcast width.
  std::vector<int> n_ell(n_ops, 0);
  int ell_rank = 0;
  for (size_t k = 0; k < n_ops; ++k) {
    const int64_t rank = rank_of(*ops[k]), named = static_cast<int64_t>(terms[k].letters.size());
    if (terms[k].ellipsis_at < 0 ? rank != named : rank < named)
      c.bad("operand " + std::to_string(k) + " " + dims_text(ops[k]->dims) + " does not fit equation term " + std::to_string(k));
    n_ell[k] = static_cast<int>(rank - named);
    ell_rank = std::max(ell_rank, n_ell[k]);
  }

  // Size per label: letters must agree, ellipsis dims broadcast (1 stretches).
  std::vector<int64_t> size(static_cast<size_t>(kEllipsisLabel + ell_rank), -1);
  std::vector<int> count(size.size(), 0);
  std::vector<std::vector<int>> labels(n_ops);
  for (size_t k = 0; k < n_ops; ++k) {
    labels[k] = term_labels(terms[k], n_ell[k], ell_rank);
    for (size_t a = 0; a < labels[k].size(); ++a) {
      const auto l = static_cast<size_t>(labels[k][a]);
      const int64_t d = ops[k]->dims[a];
      ++count[l];
      if (size[l] < 0 || (l >= kEllipsisLabel && size[l] == 1)) size[l] = d;
      else if (d != size[l] && !(l >= kEllipsisLabel && d == 1))
        c.bad("operand " + std::to_string(k) + " " + dims_text(ops[k]->dims) + " has dim " + std::to_string(d) +
              " where another has " + std::to_string(size[l]));
    }
  }

  std::vector<int> out_labels;
  if (explicit_out) {
    const EinsumTerm out = parse_term(c, eq.substr(arrow + 2));
    out_labels = term_labels(out, out.ellipsis_at < 0 ? 0 : ell_rank, ell_rank);
    std::vector<bool> seen(size.size(), false);
    for (int l : out.letters) {
      if (size[static_cast<size_t>(l)] < 0) c.bad("output subscript missing from the inputs in '" + eq + "'");
      if (seen[static_cast<size_t>(l)]) c.bad("output subscript repeated in '" + eq + "'");
      seen[static_cast<size_t>(l)] = true;
    }
  } else {
    // Implicit output: the broadcast dims, then every letter used once, in character order.
    for (int e = 0; e < ell_rank; ++e) out_labels.push_back(kEllipsisLabel + e);
    for (int l = 0; l < kEllipsisLabel; ++l)
      if (count[static_cast<size_t>(l)] == 1) out_labels.push_back(l);
  }
  std::vector<bool> in_out(size.size(), false);
  for (int l : out_labels) in_out[static_cast<size_t>(l)] = true;
  std::vector<int> sum_labels;
  for (size_t l = 0; l < size.size(); ++l)
    if (size[l] >= 0 && !in_out[l]) sum_labels.push_back(static_cast<int>(l));

  std::vector<int64_t> out_dims, sum_dims;
  for (int l : out_labels) out_dims.push_back(size[static_cast<size_t>(l)]);
  for (int l : sum_labels) sum_dims.push_back(size[static_cast<size_t>(l)]);
  const auto sum_n = checked_product(sum_dims);
  const int64_t out_n = numel_of(out_dims);
  if (!sum_n || static_cast<double>(out_n) * static_cast<double>(*sum_n) * static_cast<double>(n_ops) > kMaxEinsumSteps)
    c.unsupported("equation '" + eq + "' needs more than 1e10 multiply-adds in this reference loop");

  // Per operand, the stride of each label: axes sharing a label add up (the diagonal), a broadcast
  // ellipsis dim of 1 stays at 0.
  std::vector<std::vector<int64_t>> stride(n_ops, std::vector<int64_t>(size.size(), 0));
  for (size_t k = 0; k < n_ops; ++k) {
    const auto st = strides_of(ops[k]->dims);
    for (size_t a = 0; a < labels[k].size(); ++a) {
      const auto l = static_cast<size_t>(labels[k][a]);
      if (ops[k]->dims[a] == size[l]) stride[k][l] += st[a];
    }
  }
  // Advances the odometer `idx` over labels `ls` (sizes `dims`) by one, moving each operand's offset.
  const auto step = [&](const std::vector<int>& ls, const std::vector<int64_t>& dims, std::vector<int64_t>& idx,
                        std::vector<int64_t>& off) {
    for (size_t d = ls.size(); d-- > 0;) {
      const auto l = static_cast<size_t>(ls[d]);
      for (size_t k = 0; k < n_ops; ++k) off[k] += stride[k][l];
      if (++idx[d] < dims[d]) return;
      for (size_t k = 0; k < n_ops; ++k) off[k] -= stride[k][l] * dims[d];
      idx[d] = 0;
    }
  };

  const bool is_float = ops[0]->is_float();
  Tensor o = Tensor::zeros(ops[0]->dtype, out_dims);
  std::vector<int64_t> base(n_ops, 0), out_idx(out_labels.size(), 0);
  for (int64_t e = 0; e < out_n; ++e) {
    std::vector<int64_t> off = base, sum_idx(sum_labels.size(), 0);
    double fsum = 0;
    uint64_t isum = 0;  // unsigned, so overflow wraps as in the typed runtime
    for (int64_t s = 0; s < *sum_n; ++s) {
      if (is_float) {
        double p = 1;
        for (size_t k = 0; k < n_ops; ++k) p *= ops[k]->f[static_cast<size_t>(off[k])];
        fsum += p;
      } else {
        uint64_t p = 1;
        for (size_t k = 0; k < n_ops; ++k) p *= static_cast<uint64_t>(ops[k]->i[static_cast<size_t>(off[k])]);
        isum += p;
      }
      step(sum_labels, sum_dims, sum_idx, off);
    }
    if (is_float) o.f[static_cast<size_t>(e)] = static_cast<float>(fsum);
    else o.i[static_cast<size_t>(e)] = wrap_int(static_cast<int64_t>(isum), o.dtype);
    step(out_labels, out_dims, out_idx, base);
  }
  round_to_dtype(o);
  c.out[0] = std::move(o);
}

}  // namespace compress::eval
