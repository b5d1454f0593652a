// Truncated SVD for the low-rank pass: Eigen's BDCSVD, or a randomized SVD (Halko, Martinsson and
// Tropp 2011, "Finding structure with randomness", Alg. 4.4 subspace iteration + Alg. 5.1) when the
// matrix is large and the wanted rank is well below its size.
#pragma once

#include <Eigen/Dense>

#include <cstdint>

namespace compress {

/// M ~= U diag(s) V^T with s descending. U is rows x k, V is cols x k.
struct Svd {
  Eigen::VectorXd s;
  Eigen::MatrixXf u;
  Eigen::MatrixXf v;
  double total_energy = 0;  // ||M||_F^2 = sum of all squared singular values, also when k < min(rows, cols)
  bool randomized = false;
};

/// Full thin SVD by BDCSVD in double precision. Tall or wide matrices (aspect ratio above 1.5) are
/// QR-reduced first so BDCSVD works on the small square factor.
Svd exact_svd(const Eigen::MatrixXf& m);

/// The leading `rank` singular triplets from a sketch of rank + oversample columns refined by
/// `power_iterations` rounds of subspace iteration, re-orthonormalized each half-step. Gaussian test
/// matrix from a fixed seed, so the result is deterministic. Products in float, the small SVD in double.
Svd randomized_svd(const Eigen::MatrixXf& m, int64_t rank, int64_t oversample, int64_t power_iterations,
                   uint64_t seed = 0x5eed);

/// All singular values (descending) without forming any factor: square roots of the eigenvalues of
/// the smaller Gram matrix (M^T M or M M^T, in double). Cheap enough to decide a layer's rank, and
/// whether factorizing pays at all, before any SVD. total_energy = ||M||_F^2; u and v stay empty.
Svd singular_values_only(const Eigen::MatrixXf& m);

/// Smallest r with s_0^2 + ... + s_{r-1}^2 >= fraction * total_energy; s.size() + 1 when the computed
/// values do not reach it.
int64_t rank_for_energy(const Svd& svd, double fraction);

}  // namespace compress
