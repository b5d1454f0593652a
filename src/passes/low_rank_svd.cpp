#include "passes/low_rank_svd.h"

#include <algorithm>
#include <random>

namespace compress {

namespace {

using MatrixD = Eigen::MatrixXd;
using MatrixF = Eigen::MatrixXf;

// Orthonormal basis of the columns of `y` (thin Q of a Householder QR).
MatrixF orthonormalize(const MatrixF& y) {
  Eigen::HouseholderQR<MatrixF> qr(y);
  return qr.householderQ() * MatrixF::Identity(y.rows(), y.cols());
}

double frobenius_squared(const MatrixF& m) { return m.cast<double>().squaredNorm(); }

// SVD of a square-ish double matrix.
void bdcsvd(const MatrixD& m, MatrixD& u, Eigen::VectorXd& s, MatrixD& v) {
  Eigen::BDCSVD<MatrixD> svd(m, Eigen::ComputeThinU | Eigen::ComputeThinV);
  u = svd.matrixU();
  s = svd.singularValues();
  v = svd.matrixV();
}

// Thin SVD of a double matrix; when one side is much longer, M = Q R first and the SVD of R is used.
void thin_svd(const MatrixD& m, MatrixD& u, Eigen::VectorXd& s, MatrixD& v) {
  const auto rows = m.rows(), cols = m.cols();
  if (rows * 2 > cols * 3) {
    Eigen::HouseholderQR<MatrixD> qr(m);
    const MatrixD r = qr.matrixQR().topRows(cols).triangularView<Eigen::Upper>();
    MatrixD ur;
    bdcsvd(r, ur, s, v);
    MatrixD padded = MatrixD::Zero(rows, cols);
    padded.topRows(cols) = ur;
    u = qr.householderQ() * padded;
    return;
  }
  if (cols * 2 > rows * 3) {
    thin_svd(m.transpose(), v, s, u);
    return;
  }
  bdcsvd(m, u, s, v);
}

}  // namespace

Svd exact_svd(const MatrixF& m) {
  MatrixD u, v;
  Svd result;
  thin_svd(m.cast<double>(), u, result.s, v);
  result.u = u.cast<float>();
  result.v = v.cast<float>();
  result.total_energy = frobenius_squared(m);
  return result;
}

Svd randomized_svd(const MatrixF& m, int64_t rank, int64_t oversample, int64_t power_iterations, uint64_t seed) {
  const int64_t rows = m.rows(), cols = m.cols();
  const int64_t l = std::min<int64_t>(rank + oversample, std::min(rows, cols));
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  MatrixF omega(cols, l);
  for (int64_t j = 0; j < l; ++j)
    for (int64_t i = 0; i < cols; ++i) omega(i, j) = normal(rng);

  // Range finder with subspace iteration: Q spans the dominant left singular subspace of M.
  MatrixF q = orthonormalize(m * omega);
  for (int64_t it = 0; it < power_iterations; ++it) {
    const MatrixF z = orthonormalize(m.transpose() * q);
    q = orthonormalize(m * z);
  }
  // B = Q^T M (l x cols). Its SVD through the QR of B^T: B^T = Qb Rb, B = Rb^T Qb^T.
  const MatrixF bt = m.transpose() * q;  // cols x l
  Eigen::HouseholderQR<MatrixF> qr(bt);
  const MatrixD r = MatrixF(qr.matrixQR().topRows(l).triangularView<Eigen::Upper>()).cast<double>();
  MatrixD ub, vb;
  Eigen::VectorXd s;
  bdcsvd(r.transpose(), ub, s, vb);  // Rb^T = Ub S Vb^T, so B = Ub S (Qb Vb)^T

  const int64_t k = std::min<int64_t>(rank, l);
  Svd result;
  result.s = s.head(k);
  result.u = q * ub.leftCols(k).cast<float>();
  MatrixF vb_full = MatrixF::Zero(cols, k);
  vb_full.topRows(l) = vb.leftCols(k).cast<float>();
  result.v = qr.householderQ() * vb_full;
  result.total_energy = frobenius_squared(m);
  result.randomized = true;
  return result;
}

Svd singular_values_only(const Eigen::MatrixXf& m) {
  // In double: the Gram matrix squares the condition number, and float would move the small
  // singular values that decide ranks at high energy fractions.
  const Eigen::MatrixXd md = m.cast<double>();
  const Eigen::MatrixXd gram = m.rows() >= m.cols() ? Eigen::MatrixXd(md.transpose() * md) : Eigen::MatrixXd(md * md.transpose());
  Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> eigen(gram, Eigen::EigenvaluesOnly);
  Svd result;
  const Eigen::VectorXd ascending = eigen.eigenvalues().cwiseMax(0.0);
  result.s = ascending.reverse().cwiseSqrt();
  result.total_energy = md.squaredNorm();
  return result;
}

int64_t rank_for_energy(const Svd& svd, double fraction) {
  if (svd.total_energy <= 0) return 0;
  // Singular values and ||M||_F^2 are computed separately; allow for their rounding at fraction = 1.
  const double target = fraction * svd.total_energy * (1.0 - 1e-9);
  double kept = 0;
  for (int64_t i = 0; i < svd.s.size(); ++i) {
    kept += svd.s[i] * svd.s[i];
    if (kept >= target) return i + 1;
  }
  return svd.s.size() + 1;
}

}  // namespace compress
