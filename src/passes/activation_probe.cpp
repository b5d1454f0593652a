#include "passes/activation_probe.h"

#include <compress/error.h>

#include <algorithm>

#include "passes/weights.h"

namespace compress {

namespace {

using RowMajorF = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

// Samples [first, first + count) of `t` along axis 0.
eval::Tensor slice_samples(const eval::Tensor& t, int64_t first, int64_t count) {
  eval::Tensor out;
  out.dtype = t.dtype;
  out.dims = t.dims;
  out.dims[0] = count;
  const int64_t per = t.dims[0] == 0 ? 0 : t.numel() / t.dims[0];
  const auto b = static_cast<size_t>(first * per), e = static_cast<size_t>((first + count) * per);
  if (t.is_float())
    out.f.assign(t.f.begin() + static_cast<std::ptrdiff_t>(b), t.f.begin() + static_cast<std::ptrdiff_t>(e));
  else
    out.i.assign(t.i.begin() + static_cast<std::ptrdiff_t>(b), t.i.begin() + static_cast<std::ptrdiff_t>(e));
  return out;
}

}  // namespace

ActivationProbe::ActivationProbe(const Model& model, const std::vector<std::string>& values) {
  onnx::ModelProto proto = model.proto();
  auto* graph = proto.mutable_graph();
  for (const auto& v : values) {
    bool present = false;
    for (const auto& o : graph->output()) present = present || o.name() == v;
    if (!present) graph->add_output()->set_name(v);
  }
  copy_ = std::make_unique<Model>(Model::from_proto(std::move(proto)));
  evaluator_ = std::make_unique<eval::Evaluator>(*copy_);
}

int64_t ActivationProbe::sample_count(const eval::TensorMap& samples) {
  int64_t n = -1;
  for (const auto& [name, t] : samples) {
    if (t.dims.empty()) throw Error(ExitCode::kUsage, "calibrate: samples of '" + name + "' have no sample axis");
    if (n >= 0 && t.dims[0] != n)
      throw Error(ExitCode::kUsage, "calibrate: inputs have different sample counts (" + std::to_string(n) + " and " +
                                        std::to_string(t.dims[0]) + " for '" + name + "')");
    n = t.dims[0];
  }
  return std::max<int64_t>(n, 0);
}

void ActivationProbe::for_each_batch(const eval::TensorMap& samples, int64_t batch,
                                     const std::function<void(const eval::TensorMap&)>& fn) const {
  const int64_t n = sample_count(samples);
  for (const auto& name : evaluator_->input_names()) {
    if (!samples.count(name)) throw Error(ExitCode::kUsage, "calibrate: no samples for model input '" + name + "'");
    const std::vector<int64_t> shape = evaluator_->input_shape(name);
    if (!shape.empty() && shape[0] > 0) batch = std::min(batch, shape[0]);
  }
  for (int64_t first = 0; first < n; first += batch) {
    const int64_t count = std::min(batch, n - first);
    eval::TensorMap feeds;
    for (const auto& name : evaluator_->input_names()) feeds[name] = slice_samples(samples.at(name), first, count);
    eval::TensorMap values = evaluator_->run(feeds);
    for (auto& [name, t] : feeds) values.emplace(name, std::move(t));  // requested values may be inputs
    fn(values);
  }
}

int64_t ConvPatches::positions() const {
  int64_t p = 1;
  for (int64_t o : out) p *= o;
  return p;
}

int64_t ConvPatches::kernel_size() const {
  int64_t k = 1;
  for (int64_t v : kernel) k *= v;
  return k;
}

bool conv_patches(const onnx::NodeProto& conv, const std::vector<int64_t>& x_dims,
                  const std::vector<int64_t>& weight_dims, ConvPatches& p) {
  if (x_dims.size() < 3 || x_dims.size() > 5 || weight_dims.size() != x_dims.size()) return false;
  if (int_attribute(conv, "group", 1) != 1 || weight_dims[1] != x_dims[1]) return false;
  const size_t sp = x_dims.size() - 2;
  p.in.assign(x_dims.begin() + 2, x_dims.end());
  p.kernel = ints_attribute(conv, "kernel_shape", {weight_dims.begin() + 2, weight_dims.end()});
  p.strides = ints_attribute(conv, "strides", std::vector<int64_t>(sp, 1));
  p.dilations = ints_attribute(conv, "dilations", std::vector<int64_t>(sp, 1));
  const std::vector<int64_t> pads = ints_attribute(conv, "pads", std::vector<int64_t>(2 * sp, 0));
  if (p.kernel.size() != sp || p.strides.size() != sp || p.dilations.size() != sp || pads.size() != 2 * sp) return false;
  const std::string auto_pad = string_attribute(conv, "auto_pad", "NOTSET");
  p.pad_begin.assign(sp, 0);
  p.out.assign(sp, 0);
  for (size_t q = 0; q < sp; ++q) {
    const int64_t ext = (p.kernel[q] - 1) * p.dilations[q] + 1;
    if (auto_pad == "SAME_UPPER" || auto_pad == "SAME_LOWER") {
      p.out[q] = (p.in[q] + p.strides[q] - 1) / p.strides[q];
      const int64_t total = std::max<int64_t>(0, (p.out[q] - 1) * p.strides[q] + ext - p.in[q]);
      p.pad_begin[q] = auto_pad == "SAME_UPPER" ? total / 2 : total - total / 2;
    } else {
      int64_t pe = 0;
      if (auto_pad != "VALID") {
        p.pad_begin[q] = pads[q];
        pe = pads[q + sp];
      }
      p.out[q] = (p.in[q] + p.pad_begin[q] + pe - ext) / p.strides[q] + 1;
    }
    if (p.out[q] <= 0) return false;
  }
  return true;
}

Eigen::MatrixXf im2col_rows(const eval::Tensor& x, const ConvPatches& p, int64_t first_index, int64_t stride) {
  const size_t sp = p.in.size();
  const int64_t n = x.dims[0], c = x.dims[1], positions = p.positions(), ksz = p.kernel_size();
  int64_t in_size = 1;
  for (int64_t v : p.in) in_size *= v;
  std::vector<int64_t> kept;
  for (int64_t r = 0; r < n * positions; ++r)
    if ((first_index + r) % stride == 0) kept.push_back(r);
  RowMajorF rows = RowMajorF::Zero(static_cast<int64_t>(kept.size()), c * ksz);
  std::vector<int64_t> o(sp), k(sp);
  for (size_t row = 0; row < kept.size(); ++row) {
    const int64_t image = kept[row] / positions;
    int64_t pos = kept[row] % positions;
    for (size_t q = sp; q-- > 0;) {
      o[q] = pos % p.out[q];
      pos /= p.out[q];
    }
    for (int64_t kk = 0; kk < ksz; ++kk) {
      int64_t rem = kk, offset = 0;
      bool inside = true;
      for (size_t q = sp; q-- > 0;) {
        k[q] = rem % p.kernel[q];
        rem /= p.kernel[q];
      }
      for (size_t q = 0; q < sp; ++q) {
        const int64_t i = o[q] * p.strides[q] - p.pad_begin[q] + k[q] * p.dilations[q];
        if (i < 0 || i >= p.in[q]) inside = false;
        offset = offset * p.in[q] + i;
      }
      if (!inside) continue;
      for (int64_t ch = 0; ch < c; ++ch)
        rows(static_cast<int64_t>(row), ch * ksz + kk) = x.f[static_cast<size_t>((image * c + ch) * in_size + offset)];
    }
  }
  return rows;
}

Eigen::MatrixXf as_rows(const eval::Tensor& x) {
  const int64_t cols = x.dims.empty() ? 1 : x.dims.back();
  const int64_t rows = cols == 0 ? 0 : x.numel() / cols;
  return Eigen::Map<const RowMajorF>(x.f.data(), rows, cols);
}

}  // namespace compress
