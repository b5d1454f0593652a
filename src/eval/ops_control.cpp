// Control flow with a body graph: Loop (opsets 11-16 semantics; tensors only, no sequences) and Scan
// (opset 9+ with axes and directions; opset 8's batched form with all sequence_lens equal). The body
// runs through OpCall::run_subgraph, so it sees the enclosing scope's values.
#include <algorithm>

#include "eval/ops.h"

namespace compress::eval {

namespace {

/// The slice of `x` at index `idx` of `axis`, that axis removed.
Tensor take_slice(const Tensor& x, int64_t axis, int64_t idx) {
  Tensor out;
  out.dtype = x.dtype;
  out.dims = x.dims;
  out.dims.erase(out.dims.begin() + axis);
  const int64_t len = x.dims[static_cast<size_t>(axis)];
  int64_t outer = 1, inner = 1;
  for (int64_t d = 0; d < axis; ++d) outer *= x.dims[static_cast<size_t>(d)];
  for (size_t d = static_cast<size_t>(axis) + 1; d < x.dims.size(); ++d) inner *= x.dims[d];
  auto copy = [&](const auto& src, auto& dst) {
    dst.resize(static_cast<size_t>(outer * inner));
    for (int64_t o = 0; o < outer; ++o)
      std::copy_n(src.begin() + (o * len + idx) * inner, inner, dst.begin() + o * inner);
  };
  if (x.is_float()) copy(x.f, out.f); else copy(x.i, out.i);
  return out;
}

/// Stacks equally shaped tensors along a new `axis` (0..rank). `parts` must not be empty.
Tensor stack(const OpCall& c, const std::vector<Tensor>& parts, int64_t axis, const std::string& what) {
  const Tensor& first = parts.front();
  for (const auto& p : parts)
    if (p.dims != first.dims || p.dtype != first.dtype)
      c.bad(what + ": the body produced differently shaped or typed values in different iterations");
  Tensor out;
  out.dtype = first.dtype;
  out.dims = first.dims;
  out.dims.insert(out.dims.begin() + axis, static_cast<int64_t>(parts.size()));
  int64_t outer = 1, inner = 1;
  for (int64_t d = 0; d < axis; ++d) outer *= first.dims[static_cast<size_t>(d)];
  for (size_t d = static_cast<size_t>(axis); d < first.dims.size(); ++d) inner *= first.dims[d];
  const auto n = static_cast<int64_t>(parts.size());
  auto copy = [&](auto member) {
    auto& dst = out.*member;
    dst.resize(static_cast<size_t>(outer * n * inner));
    for (int64_t t = 0; t < n; ++t)
      for (int64_t o = 0; o < outer; ++o)
        std::copy_n((parts[static_cast<size_t>(t)].*member).begin() + o * inner, inner,
                    dst.begin() + (o * n + t) * inner);
  };
  if (first.is_float()) copy(&Tensor::f); else copy(&Tensor::i);
  return out;
}

/// An empty [0] tensor typed like the body's declared output `k` (a loop that ran zero times).
Tensor empty_like_output(const onnx::GraphProto& body, int k) {
  Tensor t;
  t.dtype = body.output(k).type().tensor_type().elem_type();
  if (t.dtype == TP::UNDEFINED) t.dtype = TP::FLOAT;
  t.dims = {0};
  return t;
}

/// Opset 9+ Scan over already unbatched tensors: body(states..., slices...) -> (states..., scan outs...).
std::vector<Tensor> scan_core(const OpCall& c, const onnx::GraphProto& body, std::vector<Tensor> states,
                              const std::vector<const Tensor*>& scans, const std::vector<int64_t>& in_axes,
                              const std::vector<int64_t>& in_dirs, const std::vector<int64_t>& out_axes,
                              const std::vector<int64_t>& out_dirs) {
  const size_t n_state = states.size(), n_scan = scans.size();
  if (body.input_size() != static_cast<int>(n_state + n_scan))
    c.bad("body takes " + std::to_string(body.input_size()) + " inputs, expected " +
          std::to_string(n_state + n_scan) + " (states + scan inputs)");
  if (body.output_size() < static_cast<int>(n_state)) c.bad("body returns fewer values than there are states");
  const size_t n_out = static_cast<size_t>(body.output_size()) - n_state;
  std::vector<int64_t> axes(n_scan), dirs(n_scan);
  int64_t len = -1;
  for (size_t j = 0; j < n_scan; ++j) {
    const int64_t rank = static_cast<int64_t>(scans[j]->dims.size());
    if (rank == 0) c.bad("scan input " + std::to_string(j) + " is a scalar");
    axes[j] = norm_axis(c, j < in_axes.size() ? in_axes[j] : 0, rank);
    dirs[j] = j < in_dirs.size() ? in_dirs[j] : 0;
    const int64_t l = scans[j]->dims[static_cast<size_t>(axes[j])];
    if (len >= 0 && l != len) c.bad("scan inputs have different sequence lengths");
    len = l;
  }
  if (len < 0) c.bad("Scan needs at least one scan input");
  std::vector<std::vector<Tensor>> per_iter(n_out);
  for (int64_t t = 0; t < len; ++t) {
    std::vector<Tensor> feeds = std::move(states);
    for (size_t j = 0; j < n_scan; ++j) feeds.push_back(take_slice(*scans[j], axes[j], dirs[j] ? len - 1 - t : t));
    auto outs = c.run_subgraph(body, std::move(feeds));
    states.assign(std::make_move_iterator(outs.begin()), std::make_move_iterator(outs.begin() + n_state));
    for (size_t k = 0; k < n_out; ++k) per_iter[k].push_back(std::move(outs[n_state + k]));
  }
  std::vector<Tensor> result = std::move(states);
  for (size_t k = 0; k < n_out; ++k) {
    auto& parts = per_iter[k];
    if (parts.empty()) {
      result.push_back(empty_like_output(body, static_cast<int>(n_state + k)));
      continue;
    }
    if (k < out_dirs.size() && out_dirs[k]) std::reverse(parts.begin(), parts.end());
    const int64_t rank = static_cast<int64_t>(parts.front().dims.size()) + 1;
    const int64_t axis = norm_axis(c, k < out_axes.size() ? out_axes[k] : 0, rank);
    result.push_back(stack(c, parts, axis, "scan output " + std::to_string(k)));
  }
  return result;
}

}  // namespace

void op_Loop(OpCall& c) {
  const auto* body_attr = c.attr("body");
  if (!body_attr || !body_attr->has_g()) c.bad("missing body");
  const auto& body = body_attr->g();
  const size_t n_carried = static_cast<size_t>(std::max<int>(c.node.input_size() - 2, 0));
  if (body.input_size() != static_cast<int>(n_carried) + 2)
    c.bad("body takes " + std::to_string(body.input_size()) + " inputs, expected " + std::to_string(n_carried + 2));
  if (body.output_size() < static_cast<int>(n_carried) + 1) c.bad("body returns too few values");
  const size_t n_scan = static_cast<size_t>(body.output_size()) - 1 - n_carried;
  if (c.out.size() > n_carried + n_scan) c.bad("more outputs than carried values and scan outputs");

  const bool has_max = c.has(0);
  if ((has_max && c.input(0).numel() != 1) || (c.has(1) && c.input(1).numel() != 1))
    c.bad("trip count and condition must be single values");
  const int64_t max_trip = has_max ? to_int64_saturated(c.input(0).at(0)) : 0;
  bool cond = c.has(1) ? c.input(1).at(0) != 0 : true;
  std::vector<Tensor> carried;
  for (size_t k = 0; k < n_carried; ++k) carried.push_back(c.input(2 + k));

  std::vector<std::vector<Tensor>> scans(n_scan);
  for (int64_t it = 0; (!has_max || it < max_trip) && cond; ++it) {
    std::vector<Tensor> feeds;
    feeds.push_back(Tensor::ints({}, {it}));
    feeds.push_back(Tensor::ints({}, {1}, TP::BOOL));
    for (auto& v : carried) feeds.push_back(std::move(v));
    auto outs = c.run_subgraph(body, std::move(feeds));
    if (outs[0].numel() != 1) c.bad("body condition output is not a single value");
    cond = outs[0].at(0) != 0;
    carried.assign(std::make_move_iterator(outs.begin() + 1), std::make_move_iterator(outs.begin() + 1 + n_carried));
    for (size_t k = 0; k < n_scan; ++k) scans[k].push_back(std::move(outs[1 + n_carried + k]));
  }
  for (size_t k = 0; k < c.out.size(); ++k) {
    if (k < n_carried) {
      c.out[k] = std::move(carried[k]);
      continue;
    }
    auto& parts = scans[k - n_carried];
    c.out[k] = parts.empty() ? empty_like_output(body, static_cast<int>(1 + k))
                             : stack(c, parts, 0, "scan output " + std::to_string(k - n_carried));
  }
}

void op_Scan(OpCall& c) {
  const auto* body_attr = c.attr("body");
  if (!body_attr || !body_attr->has_g()) c.bad("missing body");
  const auto& body = body_attr->g();
  const int64_t n_scan = c.attr_i("num_scan_inputs", -1);
  if (n_scan < 1) c.bad("num_scan_inputs must be >= 1");

  if (c.opset >= 9) {
    const int64_t n_state = c.node.input_size() - n_scan;
    if (n_state < 0) c.bad("fewer inputs than num_scan_inputs");
    std::vector<Tensor> states;
    for (int64_t k = 0; k < n_state; ++k) states.push_back(c.input(static_cast<size_t>(k)));
    std::vector<const Tensor*> scans;
    for (int64_t k = 0; k < n_scan; ++k) scans.push_back(&c.input(static_cast<size_t>(n_state + k)));
    auto outs = scan_core(c, body, std::move(states), scans, c.attr_ints("scan_input_axes"),
                          c.attr_ints("scan_input_directions"), c.attr_ints("scan_output_axes"),
                          c.attr_ints("scan_output_directions"));
    for (size_t k = 0; k < c.out.size() && k < outs.size(); ++k) c.out[k] = std::move(outs[k]);
    return;
  }

  // Opset 8: inputs (sequence_lens?, states..., scans...), every tensor batched on axis 0, the scan
  // axis is 1; runs each batch entry on its own and stacks the results on axis 0.
  const int64_t n_state = c.node.input_size() - 1 - n_scan;
  if (n_state < 0) c.bad("fewer inputs than num_scan_inputs");
  const auto dirs = c.attr_ints("directions");
  const Tensor& first_scan = c.input(static_cast<size_t>(1 + n_state));
  if (first_scan.dims.size() < 2) c.bad("opset-8 scan inputs need [batch, sequence, ...] shapes");
  const int64_t batch = first_scan.dims[0], len = first_scan.dims[1];
  if (batch == 0) c.unsupported("an empty batch");
  if (c.has(0))
    for (auto l : as_ints(c.input(0)))
      if (l != len) c.unsupported("sequence_lens shorter than the scan inputs (padding) is not supported");
  std::vector<std::vector<Tensor>> per_batch(c.out.size());
  for (int64_t b = 0; b < batch; ++b) {
    std::vector<Tensor> states;
    for (int64_t k = 0; k < n_state; ++k) states.push_back(take_slice(c.input(static_cast<size_t>(1 + k)), 0, b));
    std::vector<Tensor> slices;
    for (int64_t k = 0; k < n_scan; ++k) {
      const Tensor& x = c.input(static_cast<size_t>(1 + n_state + k));
      if (x.dims.empty() || x.dims[0] != batch) c.bad("scan inputs disagree on the batch size");
      slices.push_back(take_slice(x, 0, b));
    }
    std::vector<const Tensor*> scans;
    for (const auto& s : slices) scans.push_back(&s);
    auto outs = scan_core(c, body, std::move(states), scans, {}, dirs, {}, {});
    for (size_t k = 0; k < c.out.size() && k < outs.size(); ++k) per_batch[k].push_back(std::move(outs[k]));
  }
  for (size_t k = 0; k < c.out.size(); ++k)
    if (!per_batch[k].empty()) c.out[k] = stack(c, per_batch[k], 0, "output " + std::to_string(k));
}

}  // namespace compress::eval
