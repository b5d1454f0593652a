// Activation range calibration for static quantization: min/max, and a fixed-range histogram from
// which a percentile range or a KL-divergence (entropy) range is read. The algorithms follow ONNX
// Runtime's onnxruntime/python/tools/quantization/calibrate.py (HistogramCalibrater, methods
// Percentile and Entropy), which follows TensorRT's entropy calibration.
#pragma once

#include <cstdint>
#include <span>
#include <utility>
#include <vector>

namespace compress {

/// Bins of the activation histograms (ONNX Runtime's percentile default; TensorRT's for entropy).
inline constexpr int kCalibrationBins = 2048;
/// Bins of the 8-bit grid the entropy search compares against (ONNX Runtime's num_quantized_bins).
inline constexpr int kEntropyQuantizedBins = 128;

/// A histogram of `bins` equal bins over [-limit, limit]; values outside land in the end bins
/// (never happens when limit is the absolute max of the same data). Edge k is -limit + k * width.
struct Histogram {
  double limit = 0.0;
  std::vector<double> counts;

  Histogram() = default;
  Histogram(double limit_value, int bins) : limit(limit_value), counts(static_cast<size_t>(bins), 0.0) {}
  double width() const { return 2.0 * limit / static_cast<double>(counts.size()); }
  double edge(size_t k) const { return -limit + static_cast<double>(k) * width(); }
  void add(std::span<const float> values);
};

/// Range keeping the central `percentile` percent of the mass, (100 - percentile) / 2 cut on each side
/// (ONNX Runtime's asymmetric percentile): the lower bound is the left edge of the bin where the CDF
/// reaches the lower cut, the upper bound the right edge of the bin where it reaches the upper cut
/// (ONNX Runtime takes that bin's left edge, one bin short). Clamped to [min_value, max_value].
std::pair<double, double> percentile_range(const Histogram& h, double percentile, double min_value, double max_value);

/// KL-divergence calibration: for each symmetric window of 2i+1 bins around the zero bin (i from
/// quantized_bins / 2 to bins / 2), the reference distribution p is the window with the outside mass
/// added to its end bins; q merges the window into `quantized_bins` bins (the remainder into the last)
/// and spreads each merged count evenly (truncated to an integer, as ONNX Runtime does) over the
/// non-empty bins of p. Both are smoothed (empty bins get 1e-4, taken evenly from the others) and the
/// window with the smallest KL(p || q) gives the range, clamped to [min_value, max_value].
std::pair<double, double> entropy_range(const Histogram& h, double min_value, double max_value,
                                        int quantized_bins = kEntropyQuantizedBins);

/// KL(p || q) of two non-negative vectors after normalising each to sum 1 (scipy.stats.entropy).
double kl_divergence(std::span<const double> p, std::span<const double> q);

}  // namespace compress
