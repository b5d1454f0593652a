// Time of the SVDs behind the low-rank pass on a 4096 x 4096 weight with a decaying spectrum
// (s_i = exp(-i / 256)), the size of a large transformer projection. Also reports the relative
// Frobenius error of the rank-r approximation next to the optimal one from the exact spectrum.
#include <benchmark/benchmark.h>

#include <cmath>
#include <random>

#include "passes/low_rank_svd.h"

namespace {

using compress::Svd;

const Eigen::MatrixXf& weight(int64_t n) {
  static Eigen::MatrixXf m;
  if (m.rows() == n) return m;
  std::mt19937 rng(1);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  auto orthonormal = [&] {
    Eigen::MatrixXf g(n, n);
    for (int64_t i = 0; i < g.size(); ++i) g.data()[i] = normal(rng);
    Eigen::HouseholderQR<Eigen::MatrixXf> qr(g);
    return Eigen::MatrixXf(qr.householderQ());
  };
  Eigen::VectorXf s(n);
  for (int64_t i = 0; i < n; ++i) s[i] = std::exp(-static_cast<float>(i) / 256.0f);
  m = orthonormal() * s.asDiagonal() * orthonormal().transpose();
  return m;
}

// Optimal rank-r error from the known spectrum.
double optimal_error(int64_t n, int64_t r) {
  double total = 0, tail = 0;
  for (int64_t i = 0; i < n; ++i) {
    const double s2 = std::exp(-2.0 * static_cast<double>(i) / 256.0);
    total += s2;
    if (i >= r) tail += s2;
  }
  return std::sqrt(tail / total);
}

double error_of(const Eigen::MatrixXf& m, const Svd& svd, int64_t r) {
  const Eigen::MatrixXf approx = svd.u.leftCols(r) * svd.s.head(r).cast<float>().asDiagonal() * svd.v.leftCols(r).transpose();
  return (m - approx).norm() / m.norm();
}

void BM_RandomizedSvd(benchmark::State& state) {
  const int64_t n = state.range(0), r = state.range(1), power = state.range(2);
  const Eigen::MatrixXf& m = weight(n);
  Svd svd;
  for (auto _ : state) svd = compress::randomized_svd(m, r, 16, power);
  state.counters["rel_error"] = error_of(m, svd, r);
  state.counters["optimal_error"] = optimal_error(n, r);
}
BENCHMARK(BM_RandomizedSvd)
    ->Args({4096, 256, 2})
    ->Args({4096, 512, 2})
    ->Args({4096, 1024, 2})
    ->Args({4096, 1024, 1})
    ->Unit(benchmark::kSecond)
    ->Iterations(1);

void BM_ExactSvd(benchmark::State& state) {
  const int64_t n = state.range(0);
  const Eigen::MatrixXf& m = weight(n);
  Svd svd;
  for (auto _ : state) svd = compress::exact_svd(m);
  state.counters["rel_error_r256"] = error_of(m, svd, 256);
  state.counters["optimal_error_r256"] = optimal_error(n, 256);
}
BENCHMARK(BM_ExactSvd)->Arg(1024)->Arg(2048)->Unit(benchmark::kSecond)->Iterations(1);

}  // namespace

BENCHMARK_MAIN();
