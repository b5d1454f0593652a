// How far a rewritten weight is from the original: the numbers every lossy pass reports per layer.
#pragma once

#include <algorithm>
#include <cmath>
#include <limits>
#include <span>

namespace compress {

struct ReconstructionError {
  double relative_l2 = 0;  // ||w - w'|| / ||w||
  double sqnr_db = std::numeric_limits<double>::infinity();  // 10 log10(sum w^2 / sum (w - w')^2)
  double max_abs = 0;
};

// From the sums sum w^2 (signal) and sum (w - w')^2 (noise) and the largest |w - w'|: for passes that
// sum as they rewrite, without a copy of the original.
inline ReconstructionError reconstruction_error_from_sums(double signal, double noise, double max_abs) {
  ReconstructionError e;
  e.relative_l2 = signal > 0 ? std::sqrt(noise / signal) : (noise > 0 ? 1.0 : 0.0);
  e.sqnr_db = noise > 0 ? 10.0 * std::log10(signal / noise) : std::numeric_limits<double>::infinity();
  e.max_abs = max_abs;
  return e;
}

inline ReconstructionError reconstruction_error(std::span<const float> original, std::span<const float> rewritten) {
  double signal = 0, noise = 0, max_abs = 0;
  for (size_t i = 0; i < original.size(); ++i) {
    const double d = static_cast<double>(original[i]) - static_cast<double>(rewritten[i]);
    signal += static_cast<double>(original[i]) * original[i];
    noise += d * d;
    max_abs = std::max(max_abs, std::abs(d));
  }
  return reconstruction_error_from_sums(signal, noise, max_abs);
}

}  // namespace compress
