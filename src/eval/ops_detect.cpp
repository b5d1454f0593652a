// Detection post-processing: NonMaxSuppression (the last node of many exported detectors).
#include <algorithm>
#include <cmath>
#include <numeric>
#include <string>

#include "eval/ops.h"

namespace compress::eval {

namespace {

struct Box {
  float y1, x1, y2, x2;  // normalized so that y1 <= y2 and x1 <= x2
};

Box box_at(const std::vector<float>& b, int64_t at, bool center) {
  const float* p = b.data() + at * 4;
  if (center) {  // [x_center, y_center, width, height]
    return {p[1] - p[3] / 2, p[0] - p[2] / 2, p[1] + p[3] / 2, p[0] + p[2] / 2};
  }
  return {std::min(p[0], p[2]), std::min(p[1], p[3]), std::max(p[0], p[2]), std::max(p[1], p[3])};
}

float iou(const Box& a, const Box& b) {
  const float ih = std::max(0.0f, std::min(a.y2, b.y2) - std::max(a.y1, b.y1));
  const float iw = std::max(0.0f, std::min(a.x2, b.x2) - std::max(a.x1, b.x1));
  const float inter = ih * iw;
  const float uni = (a.y2 - a.y1) * (a.x2 - a.x1) + (b.y2 - b.y1) * (b.x2 - b.x1) - inter;
  return uni > 0 ? inter / uni : 0.0f;
}

}  // namespace

// Per batch and class: boxes by descending score (ties keep the lower index), each kept unless its
// IoU with a box already kept exceeds iou_threshold; scores must exceed score_threshold.
void op_NonMaxSuppression(OpCall& c) {
  const Tensor& boxes = c.input(0);
  const Tensor& scores = c.input(1);
  if (!boxes.is_float() || !scores.is_float()) c.bad("boxes and scores must be float tensors");
  if (boxes.dims.size() != 3 || boxes.dims[2] != 4) c.bad("boxes must have shape [batches, boxes, 4]");
  if (scores.dims.size() != 3 || scores.dims[0] != boxes.dims[0] || scores.dims[2] != boxes.dims[1])
    c.bad("scores must have shape [batches, classes, boxes] matching boxes");
  const auto single = [&](size_t k, const char* what) {
    if (c.input(k).numel() != 1) c.bad(std::string(what) + " must hold one value");
    return c.input(k).at(0);
  };
  const int64_t max_out = c.has(2) ? static_cast<int64_t>(single(2, "max_output_boxes_per_class")) : 0;
  const float iou_threshold = c.has(3) ? static_cast<float>(single(3, "iou_threshold")) : 0.0f;
  const bool has_score_threshold = c.has(4);
  const float score_threshold = has_score_threshold ? static_cast<float>(single(4, "score_threshold")) : 0.0f;
  const bool center = c.attr_i("center_point_box", 0) != 0;
  const int64_t batches = boxes.dims[0], classes = scores.dims[1], n = boxes.dims[1];
  std::vector<int64_t> selected;
  std::vector<int64_t> order(static_cast<size_t>(n));
  std::vector<Box> kept;
  for (int64_t b = 0; b < batches; ++b)
    for (int64_t k = 0; k < classes; ++k) {
      if (max_out <= 0) continue;
      const float* s = scores.f.data() + (b * classes + k) * n;
      std::iota(order.begin(), order.end(), int64_t{0});
      std::stable_sort(order.begin(), order.end(), [&](int64_t i, int64_t j) { return s[i] > s[j]; });
      kept.clear();
      for (int64_t i : order) {
        if (static_cast<int64_t>(kept.size()) >= max_out) break;
        if (has_score_threshold && !(s[i] > score_threshold)) break;  // sorted: the rest score lower
        const Box box = box_at(boxes.f, b * n + i, center);
        if (std::any_of(kept.begin(), kept.end(), [&](const Box& q) { return iou(q, box) > iou_threshold; })) continue;
        kept.push_back(box);
        selected.insert(selected.end(), {b, k, i});
      }
    }
  const auto count = static_cast<int64_t>(selected.size() / 3);
  c.out[0] = Tensor::ints({count, 3}, std::move(selected));
}

}  // namespace compress::eval
