#include "passes/calibration.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

namespace compress {

void Histogram::add(std::span<const float> values) {
  if (counts.empty()) return;
  const int64_t last = static_cast<int64_t>(counts.size()) - 1;
  if (!(limit > 0.0)) {
    counts[counts.size() / 2] += static_cast<double>(values.size());  // all zeros: the zero bin
    return;
  }
  const double inv = 1.0 / width();
  for (float v : values) {
    if (!std::isfinite(v)) continue;
    const auto k = static_cast<int64_t>(std::floor((static_cast<double>(v) + limit) * inv));
    counts[static_cast<size_t>(std::clamp<int64_t>(k, 0, last))] += 1.0;
  }
}

namespace {

// First index whose cumulative fraction reaches `target` (numpy.searchsorted, side left).
size_t search_cdf(const std::vector<double>& cdf, double target) {
  return static_cast<size_t>(std::lower_bound(cdf.begin(), cdf.end(), target) - cdf.begin());
}

// calibrate.py's smooth_distribution: empty bins get eps, taken evenly from the non-empty ones.
// False when it cannot (no mass, or a bin would become non-positive).
bool smooth(std::vector<double>& p, double eps = 1e-4) {
  const auto zeros = static_cast<double>(std::count(p.begin(), p.end(), 0.0));
  const double nonzeros = static_cast<double>(p.size()) - zeros;
  if (nonzeros == 0.0) return false;
  const double eps1 = eps * zeros / nonzeros;
  if (eps1 >= 1.0) return false;
  for (double& v : p) {
    v += v == 0.0 ? eps : -eps1;
    if (v <= 0.0) return false;
  }
  return true;
}

}  // namespace

std::pair<double, double> percentile_range(const Histogram& h, double percentile, double min_value, double max_value) {
  const double total = std::accumulate(h.counts.begin(), h.counts.end(), 0.0);
  if (!(total > 0.0) || !(h.limit > 0.0)) return {min_value, max_value};
  std::vector<double> cdf(h.counts.size());
  double running = 0.0;
  for (size_t k = 0; k < cdf.size(); ++k) cdf[k] = (running += h.counts[k]) / total;
  const double cut = (100.0 - percentile) / 200.0;
  const size_t left = std::min(search_cdf(cdf, cut), cdf.size() - 1);
  const size_t right = std::min(search_cdf(cdf, 1.0 - cut), cdf.size() - 1);
  return {std::max(h.edge(left), min_value), std::min(h.edge(right + 1), max_value)};
}

double kl_divergence(std::span<const double> p, std::span<const double> q) {
  const double sp = std::accumulate(p.begin(), p.end(), 0.0);
  const double sq = std::accumulate(q.begin(), q.end(), 0.0);
  double kl = 0.0;
  for (size_t k = 0; k < p.size(); ++k) {
    const double pk = p[k] / sp, qk = q[k] / sq;
    if (pk <= 0.0) continue;
    if (qk <= 0.0) return std::numeric_limits<double>::infinity();
    kl += pk * std::log(pk / qk);
  }
  return kl;
}

std::pair<double, double> entropy_range(const Histogram& h, double min_value, double max_value, int quantized_bins) {
  const auto bins = static_cast<int64_t>(h.counts.size());
  const int64_t zero_bin = bins / 2, half = quantized_bins / 2;
  if (!(h.limit > 0.0) || zero_bin < half) return {min_value, max_value};
  double best = std::numeric_limits<double>::infinity();
  std::pair<double, double> range{min_value, max_value};
  std::vector<double> p, q, merged(static_cast<size_t>(quantized_bins));
  for (int64_t i = half; i <= zero_bin; ++i) {
    const int64_t start = zero_bin - i, end = std::min(zero_bin + i + 1, bins);
    const auto size = static_cast<size_t>(end - start);
    const double* window = h.counts.data() + start;
    p.assign(window, window + size);
    p.front() += std::accumulate(h.counts.data(), window, 0.0);
    p.back() += std::accumulate(h.counts.data() + end, h.counts.data() + bins, 0.0);

    const size_t per = size / static_cast<size_t>(quantized_bins);
    std::fill(merged.begin(), merged.end(), 0.0);
    for (size_t b = 0; b < merged.size(); ++b)
      for (size_t k = b * per; k < (b + 1) * per; ++k) merged[b] += window[k];
    for (size_t k = merged.size() * per; k < size; ++k) merged.back() += window[k];
    q.assign(size, 0.0);
    for (size_t b = 0; b < merged.size(); ++b) {
      const size_t lo = b * per, hi = lo + per;
      double nonempty = 0.0;
      for (size_t k = lo; k < hi; ++k) nonempty += p[k] != 0.0;
      if (nonempty == 0.0) continue;
      // calibrate.py stores q in an int64 array: the spread count is truncated.
      const double spread = std::trunc(merged[b] / nonempty);
      for (size_t k = lo; k < hi; ++k)
        if (p[k] != 0.0) q[k] = spread;
    }
    double kl = std::numeric_limits<double>::infinity();
    if (smooth(p) && smooth(q)) kl = kl_divergence(p, q);
    if (kl < best) {
      best = kl;
      range = {h.edge(static_cast<size_t>(start)), h.edge(static_cast<size_t>(end))};
    }
  }
  return {std::max(range.first, min_value), std::min(range.second, max_value)};
}

}  // namespace compress
