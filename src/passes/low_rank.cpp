// low-rank: replaces a large constant weight by the product of two thin factors (truncated SVD).
//
// Before: X -> MatMul(W[K,N]) -> Y;  Gemm(X, W, C);            Conv(X, W[Co,Ci,k..], b)
// After:  X -> MatMul(A[K,r]) -> MatMul(B[r,N]) -> [Add(beta C)] -> Y;  Conv(X, W1[r,Ci,k..]) -> Conv(W2[Co,r,1..], b)
//
// Math: W = U S V^T; keeping r singular triplets, A = U_r S_r^(1/2) and B = S_r^(1/2) V_r^T give the
// best rank-r approximation (Eckart-Young) with relative Frobenius error sqrt(1 - energy kept), where
// energy kept = sum_{i<r} s_i^2 / ||W||_F^2. Params and MACs per output position go from K N to
// r (K + N). Gemm: op(W) is W^T when transB=1; alpha is folded into A, beta into a copy of constant C;
// the result is MatMul, MatMul, Add. Conv: W is the [Co, Ci k..] matrix; the first Conv (r channels,
// the original kernel, strides, pads, dilations, auto_pad) holds B, the 1x1 Conv holds A and the bias.
// Rank: `rank` > 0 wins, else `rank-ratio` > 0 (r = ceil(ratio min(K,N))), else `energy` (smallest r
// keeping that fraction of the squared singular values); then rounded up to a multiple of `round-to`,
// never above min(K,N). A layer is rewritten only if r (K + N) <= max-param-ratio K N.
// Cheap first: in energy mode the rank comes from the singular values alone (eigenvalues of the
// smaller Gram matrix W^T W or W W^T, no factors), and a layer whose rank does not pay is skipped
// before any factor is formed. SVD of the kept layers: BDCSVD (double); a randomized SVD (float
// products, fixed seed) when min(K,N) >= randomized-above and the sketch (rank + oversample) stays
// below min(K,N)/2.
// Skipped, with reason: Gemm transA=1 (gemm_trans_a); Gemm with a non-constant C and beta != 1
// (gemm_dynamic_bias_with_beta); grouped Conv (grouped_conv); weights read by any node not rewritten
// the same way (shared_with_other_use, shared_weight_mixed_use); all-zero weights (weight_is_zero);
// layers where the rank does not pay
// (param_ratio_too_high, listed with would_be_param_ratio); plus collect_weights' reasons.
// Subgraphs: a weight is grouped with every reader in the graph that holds it and in all graphs nested
// in it (If/Loop/Scan bodies read outer weights); the factors go beside the original, which is removed.
// calibrate=DIR (data-aware, the whitening idea of SVD-LLM, Wang et al. 2024, and ASVD, Yuan et al.
// 2023): with the layer inputs X on the samples (rows = samples x positions, K columns; im2col
// patches for Conv, at most 20000 evenly spaced ones), C = X^T X / n + 1e-6 tr(C)/K I = S S^T
// (Cholesky). The SVD of S^T W (K x N) truncated to r, U_r Sigma_r V_r^T, gives A = S^-T U_r
// Sigma_r^(1/2), B = Sigma_r^(1/2) V_r^T, and X A B is the best rank-r approximation of X W in the
// Frobenius norm (||X M||_F^2 = n ||S^T M||_F^2 up to the ridge). Energy then counts output energy.
// Layers read inside subgraphs, or whose input cannot be evaluated, keep the plain SVD (counted as
// calibrate_fallback.<reason>). Stats add the output-space relative error on the samples next to
// that of the plain SVD at the same rank.
// Options: energy, rank-ratio, rank, round-to, max-param-ratio, min-elements, randomized-above,
// oversample, power-iterations, calibrate, exclude.
#include <compress/error.h>
#include <compress/tensor.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <span>

#include "passes/activation_probe.h"
#include "passes/error_metrics.h"
#include "passes/low_rank_svd.h"
#include "core/log.h"
#include "passes/passes.h"
#include "passes/weights.h"

namespace compress {

namespace {

using RowMajorF = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

// Matrices at least this big are factorized one at a time with Eigen's threaded products; smaller ones
// run side by side, one per thread.
constexpr int64_t kParallelInsideElements = 1 << 20;
// Weights are loaded, factorized and written back in batches of at most this many elements (or
// one weight, if larger): the pass's peak memory is the model plus a batch, on any model size.
constexpr int64_t kBatchElements = int64_t{4} << 20;

struct Settings {
  double energy = 0.95;
  double rank_ratio = 0;
  int64_t rank = 0;
  int64_t round_to = 8;
  double max_param_ratio = 0.8;
  int64_t randomized_above = 1024;
  int64_t oversample = 16;
  int64_t power_iterations = 2;
};

// How the readers of one weight use it; all readers of a rewritten weight must agree.
enum class Layout { kMatMul, kMatMulTransposed, kConv };

// One weight and the nodes that read it, with the factorization computed for it.
struct Job {
  Graph* graph = nullptr;  // the graph holding the weight; readers may be in its subgraphs
  std::string value;
  std::vector<WeightRef> refs;
  Layout layout = Layout::kMatMul;
  float alpha = 1;
  int64_t rows = 0, cols = 0;  // of m, known before m is loaded
  Eigen::MatrixXf m;           // rows x cols; MatMul K x N, Conv Co x (Ci k..); loaded per batch

  std::string skip_reason;
  int64_t rank = 0;
  double would_be_ratio = 0;
  double energy_kept = 0;
  ReconstructionError error;
  bool randomized = false;
  Eigen::MatrixXf left, right;  // m ~= left * right

  // calibrate: G = X^T X / n of the readers' inputs (K x K; im2col patches for Conv), empty if none.
  Eigen::MatrixXd gram;
  int64_t gram_rows = 0;
  int64_t patch_stride = 0;  // Conv: keep every patch_stride-th patch
  std::string calibrate_fallback;  // why a job with samples fell back to the plain SVD
  double output_error = 0, plain_output_error = 0;
};

// Ridge added to the activation covariance, relative to its mean diagonal: keeps the Cholesky
// factor invertible when some inputs are constant or collinear on the samples.
constexpr double kRidge = 1e-6;
// At most this many im2col rows (patches) per Conv layer enter the covariance.
constexpr int64_t kMaxPatchRows = 20000;
// Samples per evaluator run.
constexpr int64_t kCalibrationBatch = 64;

int64_t round_up(int64_t r, int64_t multiple, int64_t max_rank) {
  return std::min(max_rank, (r + multiple - 1) / multiple * multiple);
}

// ||X D||_F / ||X W||_F from the Gram matrix G = X^T X / n: sqrt(tr(D^T G D) / tr(W^T G W)).
double output_relative_error(const Eigen::MatrixXd& gram, const Eigen::MatrixXd& w, const Eigen::MatrixXd& d) {
  const double ref = (w.transpose() * gram * w).trace();
  return ref > 0 ? std::sqrt(std::max(0.0, (d.transpose() * gram * d).trace()) / ref) : 0.0;
}

void factorize(Job& job, const Settings& s) {
  const int64_t rows = job.m.rows(), cols = job.m.cols(), min_dim = std::min(rows, cols);
  const double full = static_cast<double>(rows) * static_cast<double>(cols);
  // Calibrated: W is K x N (the Conv matrix is stored Co x K) and the SVD is of S^T W, C = S S^T.
  Eigen::MatrixXd w, chol;
  Eigen::MatrixXf target = job.m;
  if (job.gram.size() > 0) {
    w = job.layout == Layout::kConv ? Eigen::MatrixXd(job.m.transpose().cast<double>()) : Eigen::MatrixXd(job.m.cast<double>());
    const double k = static_cast<double>(job.gram.rows());
    Eigen::MatrixXd c = job.gram;
    c.diagonal().array() += kRidge * c.trace() / k;
    Eigen::LLT<Eigen::MatrixXd> llt(c);
    if (llt.info() != Eigen::Success) {
      job.calibrate_fallback = "not_positive_definite";
      job.gram.resize(0, 0);
    } else {
      chol = llt.matrixL();
      target = (chol.transpose() * w).cast<float>();
    }
  }
  // Largest rank that max-param-ratio allows.
  const int64_t rank_cap = static_cast<int64_t>(std::floor(s.max_param_ratio * full / static_cast<double>(rows + cols)));
  auto randomized_fits = [&](int64_t k) { return min_dim >= s.randomized_above && k + s.oversample <= min_dim / 2; };
  auto decompose = [&](const Eigen::MatrixXf& m, int64_t k) {
    return randomized_fits(k) ? randomized_svd(m, k, s.oversample, s.power_iterations) : exact_svd(m);
  };

  // Cheap decisions first: the rank comes from the singular values alone (eigenvalues of the
  // smaller Gram matrix), and a layer whose rank cannot pay is skipped before any factor is formed.
  int64_t r = 0;
  if (s.rank > 0 || s.rank_ratio > 0) {
    const int64_t wanted =
        s.rank > 0 ? s.rank : static_cast<int64_t>(std::ceil(s.rank_ratio * static_cast<double>(min_dim) - 1e-9));
    r = round_up(std::clamp<int64_t>(wanted, 1, min_dim), s.round_to, min_dim);
  } else {
    const Svd values = singular_values_only(target);
    if (values.total_energy <= 0) {
      job.skip_reason = "weight_is_zero";
      return;
    }
    r = round_up(std::clamp<int64_t>(rank_for_energy(values, s.energy), 1, min_dim), s.round_to, min_dim);
  }
  job.rank = r;
  job.would_be_ratio = static_cast<double>(r) * static_cast<double>(rows + cols) / full;
  if (r > rank_cap || job.would_be_ratio > s.max_param_ratio) {
    job.skip_reason = "param_ratio_too_high";
    return;
  }
  const Svd svd = decompose(target, r);
  if (svd.total_energy <= 0) {
    job.skip_reason = "weight_is_zero";
    return;
  }
  job.randomized = svd.randomized;
  const Eigen::VectorXd root = svd.s.head(r).cwiseSqrt();
  job.left = svd.u.leftCols(r) * root.cast<float>().asDiagonal();
  job.right = root.cast<float>().asDiagonal() * svd.v.leftCols(r).transpose();
  job.energy_kept = svd.s.head(r).squaredNorm() / svd.total_energy;
  if (job.gram.size() > 0) {
    // A = S^-T U_r Sigma_r^(1/2) (K x r), B = Sigma_r^(1/2) V_r^T (r x N); X A B is the best rank-r fit of X W.
    const Eigen::MatrixXd a = chol.transpose().triangularView<Eigen::Upper>().solve(job.left.cast<double>());
    const Eigen::MatrixXd b = job.right.cast<double>();
    job.output_error = output_relative_error(job.gram, w, w - a * b);
    // The plain SVD at the same rank, for the report.
    const Svd plain = decompose(job.m, r);
    Eigen::MatrixXd plain_approx = (plain.u.leftCols(r) * plain.s.head(r).cast<float>().asDiagonal() *
                                    plain.v.leftCols(r).transpose()).cast<double>();
    if (job.layout == Layout::kConv) plain_approx.transposeInPlace();
    job.plain_output_error = output_relative_error(job.gram, w, w - plain_approx);
    if (job.layout == Layout::kConv) {
      job.left = b.transpose().cast<float>();
      job.right = a.transpose().cast<float>();
    } else {
      job.left = a.cast<float>();
      job.right = b.cast<float>();
    }
  }
  const Eigen::MatrixXf approx = job.left * job.right;
  job.error = reconstruction_error(std::span<const float>(job.m.data(), static_cast<size_t>(job.m.size())),
                                   std::span<const float>(approx.data(), static_cast<size_t>(approx.size())));
  if (job.alpha != 1) job.left *= job.alpha;
}

std::string label(const NodeProto& node) { return node.name().empty() ? node.op_type() : node.name(); }

TensorProto make_factor(const std::string& name, const Eigen::MatrixXf& factor, std::vector<int64_t> dims) {
  const RowMajorF row_major = factor;
  return make_float_tensor(name, dims,
                           std::span<const float>(row_major.data(), static_cast<size_t>(row_major.size())));
}

NodeProto make_node(const std::string& op, const std::string& name, std::vector<std::string> inputs,
                    const std::string& output) {
  NodeProto node;
  node.set_op_type(op);
  node.set_name(name);
  for (auto& i : inputs) node.add_input(std::move(i));
  node.add_output(output);
  return node;
}

class LowRankPass final : public Pass {
 public:
  PassInfo info() const override {
    using T = OptionSpec::Type;
    const auto option = [](std::string name, T type, std::string value, std::string help, double min, double max) {
      OptionSpec spec;
      spec.name = std::move(name);
      spec.type = type;
      spec.default_value = std::move(value);
      spec.help = std::move(help);
      spec.min = min;
      spec.max = max;
      return spec;
    };
    const double inf = std::numeric_limits<double>::infinity();
    return {"low-rank",
            "factorize large MatMul/Gemm/Conv weights into two thin layers by truncated SVD",
            {option("energy", T::kFloat, "0.95",
                    "keep the smallest rank holding this fraction of the squared singular values; used only when "
                    "rank and rank-ratio are 0",
                    0.0, 1.0),
             option("rank-ratio", T::kFloat, "0",
                    "if > 0 and rank is 0: rank = ceil(ratio x min(K, N)), overriding energy", 0.0, 1.0),
             option("rank", T::kInt, "0",
                    "if > 0: this rank for every layer (at most min(K, N)), overriding rank-ratio and energy", 0, 1e9),
             option("round-to", T::kInt, "8", "round the rank up to a multiple of this, never above min(K, N)", 1,
                    4096),
             option("max-param-ratio", T::kFloat, "0.8",
                    "factorize only if r (K + N) <= this x K N; other layers are listed with their would-be ratio",
                    0.0, 1.0),
             option("min-elements", T::kInt, "4096", "leave weights with fewer elements alone", 0, inf),
             option("randomized-above", T::kInt, "1024",
                    "randomized SVD when min(K, N) >= this and rank + oversample <= min(K, N) / 2, else BDCSVD", 1,
                    inf),
             option("oversample", T::kInt, "16", "extra sketch columns of the randomized SVD", 0, 4096),
             option("power-iterations", T::kInt, "2", "subspace iterations of the randomized SVD", 0, 16),
             option("calibrate", T::kSamples, "",
                    "directory of <input>.npy samples: whiten by the layer-input covariance so the SVD minimizes the "
                    "layer-output error on them (energy then counts output energy); empty: plain weight SVD",
                    -inf, inf),
             option("exclude", T::kList, "[]", "globs of node names or op types to leave alone", -inf, inf)}};
  }

  PassStats run(Model& model, const PassContext& context) const override {
    PassStats stats;
    const PassOptions& o = context.options();
    Settings s;
    s.energy = o.get_float("energy");
    s.rank_ratio = o.get_float("rank-ratio");
    s.rank = o.get_int("rank");
    s.round_to = o.get_int("round-to");
    s.max_param_ratio = o.get_float("max-param-ratio");
    s.randomized_above = o.get_int("randomized-above");
    s.oversample = o.get_int("oversample");
    s.power_iterations = o.get_int("power-iterations");
    if (s.rank == 0 && s.rank_ratio == 0 && s.energy == 0)
      throw Error(ExitCode::kUsage, "low-rank: one of rank, rank-ratio or energy must be > 0");

    std::vector<Job> jobs = select(model, context, o.get_int("min-elements"), stats);
    if (const eval::TensorMap* samples = context.samples("calibrate")) {
      try {
        gather_activations(model, *samples, jobs);
      } catch (const Error& e) {
        throw Error(e.code(), std::string("low-rank: ") + e.what());
      }
    }
    RewriteState state;
    for (size_t begin = 0; begin < jobs.size();) {
      size_t end = begin;
      int64_t elements = 0;
      while (end < jobs.size() && (end == begin || elements + jobs[end].rows * jobs[end].cols <= kBatchElements))
        elements += jobs[end].rows * jobs[end].cols, ++end;
      const std::span<Job> batch(jobs.data() + begin, end - begin);
      for (Job& job : batch) load_matrix(job);
      compute(batch, s);
      for (Job& job : batch) {
        rewrite_job(model, job, stats, state);
        job = Job{};  // release the matrices; the graph holds the factors now
      }
      begin = end;
    }
    finish_rewrite(model, state);
    return stats;
  }

 private:
  // Groups qualifying readers by weight; a weight is factorized only if every reader qualifies alike.
  static std::vector<Job> select(Model& model, const PassContext& context, int64_t min_elements, PassStats& stats) {
    std::vector<WeightRef> refs = collect_weights(model, context, {"MatMul", "Gemm", "Conv"}, min_elements, stats);
    std::vector<Job> jobs;
    std::map<std::pair<Graph*, std::string>, size_t> job_of;
    for (WeightRef& ref : refs) {
      const NodeProto& node = *ref.node;
      const std::string reason = node_skip_reason(ref);
      if (!reason.empty()) {
        stats.skip(label(node), reason);
        continue;
      }
      Graph* owner = ref.graph;
      while (owner->constant(ref.value) == nullptr) owner = owner->parent();  // collect_weights found it in scope
      auto [it, added] = job_of.emplace(std::make_pair(owner, ref.value), jobs.size());
      if (added) {
        jobs.emplace_back();
        jobs.back().graph = owner;
        jobs.back().value = ref.value;
      }
      jobs[it->second].refs.push_back(ref);
    }
    std::vector<Job> kept;
    for (Job& job : jobs) {
      const std::string reason = group_skip_reason(job);
      if (!reason.empty()) {
        for (const auto& ref : job.refs) stats.skip(label(*ref.node), reason);
        continue;
      }
      const WeightRef& ref = job.refs.front();
      int64_t elements = 1;
      for (int64_t d : ref.dims) elements *= d;
      job.rows = ref.dims[0];  // as stored; a transposed Gemm weight [N, K] is used as K x N
      job.cols = elements / ref.dims[0];
      if (job.layout == Layout::kMatMulTransposed) std::swap(job.rows, job.cols);
      kept.push_back(std::move(job));
    }
    return kept;
  }

  // Fills each job's Gram matrix of its readers' inputs on the samples. Jobs whose readers are not all
  // in the main graph (subgraph values cannot be evaluated as outputs) keep the plain SVD.
  static void gather_activations(Model& model, const eval::TensorMap& samples, std::vector<Job>& jobs) {
    Graph* main = &model.graph();
    std::vector<std::string> values;
    std::vector<Job*> calibrated;
    for (Job& job : jobs) {
      const bool in_main = std::all_of(job.refs.begin(), job.refs.end(), [&](const WeightRef& r) { return r.graph == main; });
      if (!in_main) {
        job.calibrate_fallback = "in_subgraph";
        continue;
      }
      for (const auto& ref : job.refs)
        if (std::find(values.begin(), values.end(), ref.node->input(0)) == values.end()) values.push_back(ref.node->input(0));
      calibrated.push_back(&job);
    }
    if (calibrated.empty()) return;
    const int64_t n = ActivationProbe::sample_count(samples);
    std::map<Job*, int64_t> patches_seen;
    const ActivationProbe probe(model, values);
    probe.for_each_batch(samples, kCalibrationBatch, [&](const eval::TensorMap& acts) {
      for (Job* job : calibrated) {
        const int64_t k = job->layout == Layout::kConv ? job->cols : job->rows;
        for (const auto& ref : job->refs) {
          if (!job->calibrate_fallback.empty()) break;
          const eval::Tensor& x = acts.at(ref.node->input(0));
          Eigen::MatrixXf rows;
          ConvPatches p;
          if (!x.is_float()) {
            job->calibrate_fallback = "input_not_float";
          } else if (job->layout != Layout::kConv) {
            rows = as_rows(x);
          } else if (!conv_patches(*ref.node, x.dims, ref.dims, p)) {
            job->calibrate_fallback = "conv_geometry";
          } else {
            if (job->patch_stride == 0) {
              const int64_t total = n * p.positions() * static_cast<int64_t>(job->refs.size());
              job->patch_stride = std::max<int64_t>(1, (total + kMaxPatchRows - 1) / kMaxPatchRows);
            }
            rows = im2col_rows(x, p, patches_seen[job], job->patch_stride);
            patches_seen[job] += x.dims[0] * p.positions();
          }
          if (!job->calibrate_fallback.empty()) break;
          if (rows.cols() != k) {
            job->calibrate_fallback = "input_shape";
            break;
          }
          if (job->gram.size() == 0) job->gram = Eigen::MatrixXd::Zero(k, k);
          const Eigen::MatrixXd rd = rows.cast<double>();
          job->gram.selfadjointView<Eigen::Lower>().rankUpdate(rd.transpose());
          job->gram_rows += rows.rows();
        }
      }
    });
    for (Job* job : calibrated) {
      if (job->calibrate_fallback.empty() && (job->gram_rows == 0 || job->gram.trace() <= 0))
        job->calibrate_fallback = "zero_activations";
      if (!job->calibrate_fallback.empty()) {
        job->gram.resize(0, 0);
        continue;
      }
      job->gram = job->gram.selfadjointView<Eigen::Lower>();
      job->gram /= static_cast<double>(job->gram_rows);
    }
  }

  static Layout layout_of(const NodeProto& node) {
    if (node.op_type() == "Conv") return Layout::kConv;
    if (node.op_type() == "Gemm" && int_attribute(node, "transB", 0) != 0) return Layout::kMatMulTransposed;
    return Layout::kMatMul;
  }

  static std::string node_skip_reason(const WeightRef& ref) {
    const NodeProto& node = *ref.node;
    if (node.op_type() == "Gemm") {
      if (ref.dims.size() != 2) return "weight_not_2d";
      if (int_attribute(node, "transA", 0) != 0) return "gemm_trans_a";
      const bool has_c = node.input_size() > 2 && !node.input(2).empty();
      if (has_c && float_attribute(node, "beta", 1.0f) != 1.0f && ref.graph->constant(node.input(2)) == nullptr)
        return "gemm_dynamic_bias_with_beta";
    }
    if (node.op_type() == "Conv") {
      if (int_attribute(node, "group", 1) != 1) return "grouped_conv";
      if (ref.dims.size() < 3) return "weight_not_conv_shape";
    }
    return "";
  }

  // Explicit reads of `value` (node inputs and graph outputs) in `graph` and every graph nested in it.
  static size_t reads_in_scope(Graph& graph, const std::string& value) {
    size_t reads = graph.is_graph_output(value) ? 1 : 0;
    for (const Graph::Use& use : graph.consumers(value)) reads += use.input_index >= 0 ? 1 : 0;
    for (Graph* child : graph.subgraphs()) reads += reads_in_scope(*child, value);
    return reads;
  }

  static std::string group_skip_reason(Job& job) {
    if (job.refs.size() != reads_in_scope(*job.graph, job.value)) return "shared_with_other_use";
    job.layout = layout_of(*job.refs.front().node);
    job.alpha = job.refs.front().node->op_type() == "Gemm" ? float_attribute(*job.refs.front().node, "alpha", 1.0f) : 1;
    for (const auto& ref : job.refs) {
      const float alpha = ref.node->op_type() == "Gemm" ? float_attribute(*ref.node, "alpha", 1.0f) : 1;
      if (layout_of(*ref.node) != job.layout || alpha != job.alpha) return "shared_weight_mixed_use";
    }
    return "";
  }

  // The weight as the rows x cols matrix factorize works on.
  static void load_matrix(Job& job) {
    const std::vector<float> values = to_floats(*job.refs.front().tensor);
    const int64_t stored_rows = job.refs.front().dims[0];
    const Eigen::Map<const RowMajorF> stored(values.data(), stored_rows, static_cast<int64_t>(values.size()) / stored_rows);
    if (job.layout == Layout::kMatMulTransposed)
      job.m = stored.transpose();
    else
      job.m = stored;
  }

  static void compute(std::span<Job> jobs, const Settings& s) {
    std::vector<size_t> small, large;
    for (size_t i = 0; i < jobs.size(); ++i) (jobs[i].m.size() >= kParallelInsideElements ? large : small).push_back(i);
    const auto n_small = static_cast<int64_t>(small.size());
#ifdef _OPENMP
#pragma omp parallel for schedule(dynamic, 1)
#endif
    for (int64_t i = 0; i < n_small; ++i) factorize(jobs[small[static_cast<size_t>(i)]], s);
    for (size_t i : large) factorize(jobs[i], s);
  }

  // What the per-weight rewrites leave for finish_rewrite, per graph.
  struct RewriteState {
    std::map<Graph*, std::unordered_set<const NodeProto*>> dead_constants;
    std::map<Graph*, std::vector<std::string>> maybe_unused;
    std::vector<Graph*> touched;
  };

  static void rewrite_job(Model& model, Job& job, PassStats& stats, RewriteState& state) {
    auto& dead_constants = state.dead_constants;
    auto& maybe_unused = state.maybe_unused;
    auto& touched = state.touched;
    {
      const int64_t rows = job.rows, cols = job.cols;
      if (!job.skip_reason.empty()) {
        for (const auto& ref : job.refs) {
          stats.skip(label(*ref.node), job.skip_reason);
          if (job.skip_reason != "param_ratio_too_high") continue;
          auto& entry = stats.layers.back();
          entry["shape"] = {rows, cols};
          entry["rank"] = job.rank;
          entry["would_be_param_ratio"] = job.would_be_ratio;
        }
        return;
      }
      Graph& graph = *job.graph;
      const WeightRef& first = job.refs.front();
      const std::vector<int64_t>& dims = first.dims;
      const int64_t r = job.rank;
      std::string in_name = model.unique_name(job.value + "_lowrank_1");
      std::string out_name = model.unique_name(job.value + "_lowrank_2");
      if (job.layout == Layout::kConv) {
        std::vector<int64_t> in_dims = dims, out_dims(dims.size(), 1);
        in_dims[0] = r;
        out_dims[0] = dims[0];
        out_dims[1] = r;
        graph.add_initializer(make_factor(in_name, job.right, in_dims));
        graph.add_initializer(make_factor(out_name, job.left, out_dims));
      } else {
        graph.add_initializer(make_factor(in_name, job.left, {rows, r}));
        graph.add_initializer(make_factor(out_name, job.right, {r, cols}));
      }
      nlohmann::json nodes = nlohmann::json::array();
      for (const auto& ref : job.refs) {
        nodes.push_back(label(*ref.node));
        rewrite_node(model, *ref.graph, *ref.node, in_name, out_name, dims.size(), maybe_unused[ref.graph]);
        if (std::find(touched.begin(), touched.end(), ref.graph) == touched.end()) touched.push_back(ref.graph);
      }
      if (NodeProto* producer = graph.producer(job.value))
        dead_constants[&graph].insert(producer);
      else
        graph.remove_initializer(job.value);
      if (std::find(touched.begin(), touched.end(), &graph) == touched.end()) touched.push_back(&graph);

      const int64_t before = rows * cols, after = r * (rows + cols);
      stats.count("factorized", static_cast<int64_t>(job.refs.size()));
      stats.count("params_before", before);
      stats.count("params_after", after);
      stats.layers.push_back({{"name", label(*first.node)},
                              {"nodes", nodes},
                              {"op_type", first.node->op_type()},
                              {"weight", job.value},
                              {"shape", {rows, cols}},
                              {"rank", r},
                              {"max_rank", std::min(rows, cols)},
                              {"energy_kept", job.energy_kept},
                              {"relative_error", job.error.relative_l2},
                              {"sqnr_db", std::isinf(job.error.sqnr_db) ? nlohmann::json("inf") : nlohmann::json(job.error.sqnr_db)},
                              {"params_before", before},
                              {"params_after", after},
                              {"param_ratio", static_cast<double>(after) / static_cast<double>(before)},
                              {"macs_per_position_before", before},
                              {"macs_per_position_after", after},
                              {"svd", job.randomized ? "randomized" : "bdcsvd"}});
      if (job.gram.size() > 0) {
        stats.count("calibrated", static_cast<int64_t>(job.refs.size()));
        stats.layers.back()["calibrated"] = true;
        stats.layers.back()["calibration_rows"] = job.gram_rows;
        stats.layers.back()["output_relative_error"] = job.output_error;
        stats.layers.back()["plain_output_relative_error"] = job.plain_output_error;
      } else if (!job.calibrate_fallback.empty()) {
        stats.count("calibrate_fallback." + job.calibrate_fallback, static_cast<int64_t>(job.refs.size()));
        stats.layers.back()["calibrate_fallback"] = job.calibrate_fallback;
      }
      logger()->debug("low-rank: {} [{}x{}] rank {} energy {:.4f} error {:.4g}", job.value, rows, cols, r,
                    job.energy_kept, job.error.relative_l2);
    }
  }

  // Removes what the rewrites left dead and restores topological order, once for all weights.
  static void finish_rewrite(Model& model, RewriteState& state) {
    auto& dead_constants = state.dead_constants;
    auto& maybe_unused = state.maybe_unused;
    auto& touched = state.touched;
    // Inner graphs first: reordering an outer graph's nodes moves the subgraphs they hold.
    const auto depth = [](Graph* g) {
      int d = 0;
      for (; g->parent() != nullptr; g = g->parent()) ++d;
      return d;
    };
    std::stable_sort(touched.begin(), touched.end(), [&](Graph* a, Graph* b) { return depth(a) > depth(b); });
    for (Graph* graph : touched) {
      graph->remove_nodes(dead_constants[graph]);
      graph->invalidate();
      for (const auto& name : maybe_unused[graph])
        if (graph->consumers(name).empty() && !graph->is_graph_output(name) && !graph->is_graph_input(name) &&
            graph->initializer(name))
          graph->remove_initializer(name);
      graph->topological_sort();
      graph->invalidate();
    }
    model.invalidate();
  }

  // Turns `node` into the second factor's node and appends the first factor's node (and Gemm's Add).
  static void rewrite_node(Model& model, Graph& graph, NodeProto& node, const std::string& in_name,
                           const std::string& out_name, size_t weight_rank, std::vector<std::string>& maybe_unused) {
    const std::string base = label(node);
    const std::string x = node.input(0), y = node.output(0);
    const std::string mid = model.unique_name(y + "_lowrank");
    if (node.op_type() == "Conv") {
      NodeProto first = node;
      first.set_name(model.unique_name(base + "_lowrank_1"));
      first.set_input(0, x);
      first.set_input(1, in_name);
      if (first.input_size() > 2) first.mutable_input()->RemoveLast();
      first.set_output(0, mid);
      graph.add_node(std::move(first));
      node.clear_attribute();
      auto* kernel = node.add_attribute();
      kernel->set_name("kernel_shape");
      kernel->set_type(onnx::AttributeProto::INTS);
      for (size_t i = 2; i < weight_rank; ++i) kernel->add_ints(1);
      node.set_input(0, mid);
      node.set_input(1, out_name);
      return;
    }
    graph.add_node(make_node("MatMul", model.unique_name(base + "_lowrank_1"), {x, in_name}, mid));
    std::string bias;
    if (node.op_type() == "Gemm" && node.input_size() > 2 && !node.input(2).empty()) {
      bias = node.input(2);
      const float beta = float_attribute(node, "beta", 1.0f);
      if (beta != 1.0f) {
        const TensorProto* c = graph.constant(bias);  // constant: node_skip_reason checked
        std::vector<float> values = to_floats(*c);
        for (float& v : values) v *= beta;
        maybe_unused.push_back(bias);
        bias = model.unique_name(bias + "_beta");
        graph.add_initializer(make_float_tensor(bias, {c->dims().begin(), c->dims().end()}, values));
      }
    }
    node.set_op_type("MatMul");
    node.clear_attribute();
    node.clear_input();
    node.add_input(mid);
    node.add_input(out_name);
    if (!bias.empty()) {
      const std::string product = model.unique_name(y + "_lowrank_matmul");
      node.set_output(0, product);
      graph.add_node(make_node("Add", model.unique_name(base + "_lowrank_bias"), {product, bias}, y));
    }
  }
};

}  // namespace

std::unique_ptr<Pass> make_low_rank_pass() { return std::make_unique<LowRankPass>(); }

}  // namespace compress
