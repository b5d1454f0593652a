// fp16: float32 weights and compute to float16.
//
// Before: x:f32 -> Conv(W:f32) -> Relu -> Resize -> y:f32
// After:  x:f32 -> Cast(f16) -> Conv(W:f16) -> Relu -> Cast(f32) -> Resize -> y:f32     (default)
//         weights-only: W:f16 -> Cast(f32) -> Conv -> ...                            (storage only)
//
// Full mode: after ONNX type inference each node is either a float16 node (default domain, float
// tensors in or out, all types known, op not in block-ops, not excluded, not shape arithmetic) or a
// float32 node (everything else, and If/Loop/Scan: their bodies are converted inside, their interface
// stays float32). Every float value gets the type of its producer; a reader wanting the other type gets
// one shared Cast. Constants (initializers, Constant nodes) become float16 when all their readers are
// float16 nodes, else stay float32. The readers of an outer constant read by a body are the nodes inside
// the body (at any depth), not the If/Loop/Scan node: bodies read outer values by name, so the constant
// changes type only when every such reader is a float16 node (silero VAD: Conv weights in If branches). Type-dependent attributes of float16 nodes follow: Cast to=FLOAT ->
// FLOAT16, ConstantOfShape value -> float16. value_info and graph input/output types are updated.
// keep-io-types=true keeps the main graph's float inputs/outputs float32 (Casts at the boundary);
// subgraph interfaces always stay float32. Shape arithmetic: a node whose non-constant inputs all derive
// from Shape/Size stays float32 (float16 cannot hold sizes above 2048 exactly); the outer values an
// If/Loop/Scan body reads by name count as that node's inputs.
// Values beyond float16's range are clamped to +-65504 and counted (stats: clamped_values).
// BatchNormalization mean/variance stay float32 in both modes (tiny variances underflow float16).
// Default block list (kDefaultBlockOps): ops that must stay float32 (Resize/Range, NonMaxSuppression,
// TopK, random generators, quantization ops, RNNs); shape math is detected separately.
// Options: keep-io-types (true), block-ops (list, defaults below), weights-only (false), exclude.
#include <compress/error.h>
#include <compress/tensor.h>
#include <onnx/shape_inference/implementation.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <set>

#if defined(__x86_64__)
#include <cpuid.h>
#include <immintrin.h>
#endif

#include "passes/error_metrics.h"
#include "passes/node_order.h"
#include "passes/passes.h"

namespace compress {

namespace {

// Ops kept float32 by default: they must stay float32 for correctness (coordinates, sizes, indices,
// scores, random draws, quantization parameters, recurrent state accumulated over time). Ops merely lacking
// a float16 CPU kernel are not listed: ONNX Runtime's InsertCastTransformer runs those in float32 itself
// (checked with onnxruntime-node 1.30: every model here loads and runs with block-ops=[]).
const char* const kDefaultBlockOps =
    "[Resize,Upsample,Range,NonMaxSuppression,TopK,RoiAlign,CumSum,RandomNormal,RandomNormalLike,RandomUniform,"
    "RandomUniformLike,Multinomial,Bernoulli,EyeLike,QuantizeLinear,DequantizeLinear,DynamicQuantizeLinear,"
    "LSTM,GRU,RNN]";

const std::set<std::string> kSubgraphOps = {"If", "Loop", "Scan"};

bool is_default_domain(const NodeProto& n) { return n.domain().empty() || n.domain() == "ai.onnx"; }

// The error sums of a conversion and the values clamped, added up over a tensor.
struct HalfSums {
  double signal = 0, noise = 0, max_abs = 0;
  int64_t clamped = 0;
};

// One value: clamped to +-65504 when finite and beyond the float16 range (inf/nan kept), stored as
// float16 (round to nearest even) at `out`, little-endian as ONNX stores raw_data. The reference the
// AVX2 loop below must match byte for byte.
void half_one(float v, char* out, HalfSums& s) {
  float x = v;
  if (std::isfinite(x) && std::fabs(x) > 65504.0f) {
    x = std::copysign(65504.0f, x);
    ++s.clamped;
  }
  const uint16_t h = float_to_half(x);
  out[0] = static_cast<char>(h & 0xff);
  out[1] = static_cast<char>(h >> 8);
  const double d = static_cast<double>(v) - static_cast<double>(half_to_float(h));
  s.signal += static_cast<double>(v) * v;
  s.noise += d * d;
  s.max_abs = std::max(s.max_abs, std::abs(d));
}

#if defined(__x86_64__)
bool cpu_has_f16c() {
  static const bool has = [] {
    __builtin_cpu_init();
    unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;  // F16C is CPUID.1:ECX bit 29 (clang-14 has no name for it)
    return __builtin_cpu_supports("avx2") != 0 && __get_cpuid(1, &eax, &ebx, &ecx, &edx) != 0 && (ecx & (1u << 29)) != 0;
  }();
  return has;
}

// half_one over 8 values at a time: the same clamp, the hardware conversion (round to nearest even,
// subnormals exact, as float_to_half), the same error terms summed in another order. A block holding
// an inf or NaN goes through half_one (NaN payloads and the inf error terms stay the reference's).
__attribute__((target("avx2,f16c"))) void to_half_avx2(const float* v, size_t n, char* out, HalfSums& s) {
  const __m256 limit = _mm256_set1_ps(65504.0f), inf = _mm256_set1_ps(INFINITY), sign = _mm256_set1_ps(-0.0f);
  const __m256d abs_mask = _mm256_castsi256_pd(_mm256_set1_epi64x(0x7fffffffffffffffLL));
  __m256d signal = _mm256_setzero_pd(), noise = _mm256_setzero_pd(), max_abs = _mm256_setzero_pd();
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 x = _mm256_loadu_ps(v + i);
    const __m256 ax = _mm256_andnot_ps(sign, x);
    if (_mm256_movemask_ps(_mm256_cmp_ps(ax, inf, _CMP_NLT_UQ)) != 0) {  // inf or NaN in the block
      for (size_t k = i; k < i + 8; ++k) half_one(v[k], out + 2 * k, s);
      continue;
    }
    const __m256 over = _mm256_cmp_ps(ax, limit, _CMP_GT_OQ);
    s.clamped += __builtin_popcount(static_cast<unsigned>(_mm256_movemask_ps(over)));
    const __m256 clamped = _mm256_blendv_ps(x, _mm256_or_ps(limit, _mm256_and_ps(x, sign)), over);
    const __m128i h = _mm256_cvtps_ph(clamped, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out + 2 * i), h);
    const __m256 back = _mm256_cvtph_ps(h);
    for (int part = 0; part < 2; ++part) {
      const __m256d xd = _mm256_cvtps_pd(part ? _mm256_extractf128_ps(x, 1) : _mm256_castps256_ps128(x));
      const __m256d bd = _mm256_cvtps_pd(part ? _mm256_extractf128_ps(back, 1) : _mm256_castps256_ps128(back));
      const __m256d d = _mm256_sub_pd(xd, bd);
      signal = _mm256_add_pd(signal, _mm256_mul_pd(xd, xd));
      noise = _mm256_add_pd(noise, _mm256_mul_pd(d, d));
      max_abs = _mm256_max_pd(max_abs, _mm256_and_pd(d, abs_mask));
    }
  }
  alignas(32) double lanes[3][4];
  _mm256_store_pd(lanes[0], signal);
  _mm256_store_pd(lanes[1], noise);
  _mm256_store_pd(lanes[2], max_abs);
  for (int k = 0; k < 4; ++k) {
    s.signal += lanes[0][k];
    s.noise += lanes[1][k];
    s.max_abs = std::max(s.max_abs, lanes[2][k]);
  }
  for (; i < n; ++i) half_one(v[i], out + 2 * i, s);
}
#endif

// float -> float16 with values beyond the float16 range clamped to +-65504 (inf/nan kept). Reads the
// float values where they lie and writes only the half bytes: no float copy of the weight.
TensorProto to_half_tensor(const TensorProto& t, const std::string& name, int64_t& clamped, ReconstructionError& err) {
  std::vector<float> scratch;
  const std::span<const float> v = float_view(t, scratch);
  std::string raw(v.size() * 2, '\0');
  HalfSums sums;
#if defined(__x86_64__)
  if (cpu_has_f16c()) {
    to_half_avx2(v.data(), v.size(), raw.data(), sums);
  } else
#endif
  {
    for (size_t i = 0; i < v.size(); ++i) half_one(v[i], raw.data() + 2 * i, sums);
  }
  clamped += sums.clamped;
  err = reconstruction_error_from_sums(sums.signal, sums.noise, sums.max_abs);
  return make_raw_tensor(name, TensorProto::FLOAT16, {t.dims().begin(), t.dims().end()}, std::move(raw));
}

onnx::AttributeProto cast_to(int32_t type) {
  onnx::AttributeProto a;
  a.set_name("to");
  a.set_type(onnx::AttributeProto::INT);
  a.set_i(type);
  return a;
}

NodeProto make_cast(const std::string& name, const std::string& in, const std::string& out, int32_t type) {
  NodeProto n;
  n.set_op_type("Cast");
  n.set_name(name);
  n.add_input(in);
  n.add_output(out);
  *n.add_attribute() = cast_to(type);
  return n;
}

void collect_types(const onnx::GraphProto& g, std::map<std::string, int32_t>& types) {
  auto add = [&](const onnx::ValueInfoProto& v) {
    if (v.type().has_tensor_type() && v.type().tensor_type().elem_type() != 0)
      types[v.name()] = v.type().tensor_type().elem_type();
  };
  for (const auto& v : g.input()) add(v);
  for (const auto& v : g.output()) add(v);
  for (const auto& v : g.value_info()) add(v);
  for (const auto& t : g.initializer()) types[t.name()] = t.data_type();
  for (const auto& n : g.node()) {
    if (n.op_type() == "Constant" && is_default_domain(n))
      for (const auto& a : n.attribute())
        if (a.name() == "value" && n.output_size() == 1) types[n.output(0)] = a.t().data_type();
    for (const auto& a : n.attribute()) {
      if (a.has_g()) collect_types(a.g(), types);
      for (const auto& sg : a.graphs()) collect_types(sg, types);
    }
  }
}

void rename_inputs_in_tree(onnx::GraphProto& g, const std::string& from, const std::string& to, const NodeProto* except) {
  for (auto& n : *g.mutable_node()) {
    if (&n == except) continue;
    for (auto& in : *n.mutable_input())
      if (in == from) in = to;
    for (auto& a : *n.mutable_attribute()) {
      if (a.has_g()) rename_inputs_in_tree(*a.mutable_g(), from, to, except);
      for (auto& sg : *a.mutable_graphs()) rename_inputs_in_tree(sg, from, to, except);
    }
  }
}

void set_elem_type(google::protobuf::RepeatedPtrField<onnx::ValueInfoProto>& infos, const std::set<std::string>& names,
                   int32_t type) {
  for (auto& v : infos)
    if (names.count(v.name()) && v.type().has_tensor_type()) v.mutable_type()->mutable_tensor_type()->set_elem_type(type);
}

class Fp16Pass final : public Pass {
 public:
  PassInfo info() const override {
    return {"fp16",
            "float32 weights and compute to float16 (Casts around blocked ops), or weights-only storage",
            {{"keep-io-types", OptionSpec::Type::kBool, "true", "model float inputs/outputs stay float32 via Cast"},
             {"block-ops", OptionSpec::Type::kList, kDefaultBlockOps,
              "op types that stay float32 (default: ops that must stay float32: coordinates, indices, random, RNN state)"},
             {"weights-only", OptionSpec::Type::kBool, "false",
              "store weights as float16 with a Cast back to float32 after each; compute stays float32"},
             {"exclude", OptionSpec::Type::kList, "[]", "node names or op types (globs) to keep float32"}}};
  }

  PassStats run(Model& model, const PassContext& context) const override {
    PassStats stats;
    if (context.options().get_bool("weights-only")) {
      weights_only(model, context, stats);
    } else {
      full(model, context, stats);
    }
    model.invalidate();
    return stats;
  }

 private:
  static void record(PassStats& stats, const std::string& name, const TensorProto& t, const ReconstructionError& err,
                     int64_t clamped) {
    stats.count("converted_tensors");
    stats.count("converted_elements", element_count(t));
    if (clamped) stats.count("clamped_values", clamped);
    stats.layers.push_back({{"name", name},
                            {"elements", element_count(t)},
                            {"relative_l2", err.relative_l2},
                            {"sqnr_db", std::isfinite(err.sqnr_db) ? nlohmann::json(err.sqnr_db) : nlohmann::json(nullptr)},
                            {"max_abs_error", err.max_abs},
                            {"clamped", clamped}});
  }

  // Any reader of `value` (in `graph` or, for outer values, inside subgraphs) excluded by the context.
  static bool excluded_reader(Graph& graph, const std::string& value, const PassContext& context) {
    for (const auto& use : graph.consumers(value))
      if (context.is_excluded(*use.node)) return true;
    return false;
  }

  // BatchNormalization mean/variance: variances below float16's smallest subnormal (6e-8) would become
  // 0 and blow up x / sqrt(var + eps); they stay float32 (PP-OCRv4 det: cosine 0.02 otherwise).
  static bool batchnorm_statistics(Graph& graph, const std::string& value) {
    for (const auto& use : graph.consumers(value))
      if (use.node->op_type() == "BatchNormalization" && use.input_index >= 3) return true;
    return false;
  }

  static void weights_only(Model& model, const PassContext& context, PassStats& stats) {
    for (Graph* graph : model.all_graphs()) {
      std::vector<std::pair<const NodeProto*, NodeProto>> casts;
      std::vector<std::string> done;
      auto& g = graph->proto();
      for (auto& t : *g.mutable_initializer()) {
        if (t.data_type() != TensorProto::FLOAT) continue;
        if (graph->is_graph_input(t.name())) {
          stats.skip(t.name(), "weight_is_graph_input");
          continue;
        }
        if (excluded_reader(*graph, t.name(), context)) {
          stats.skip(t.name(), "excluded");
          continue;
        }
        if (batchnorm_statistics(*graph, t.name())) {
          stats.skip(t.name(), "batchnorm_statistics");
          continue;
        }
        const std::string original = t.name(), stored = model.unique_name(original + "_fp16");
        int64_t clamped = 0;
        ReconstructionError err;
        TensorProto half = to_half_tensor(t, stored, clamped, err);
        record(stats, original, t, err, clamped);
        t = std::move(half);
        casts.emplace_back(nullptr, make_cast(model.unique_name(original + "_to_fp32"), stored, original, TensorProto::FLOAT));
        done.push_back(original);
      }
      // Value info of the old initializers describes the Cast outputs now: still float32, unchanged.
      std::vector<std::pair<const NodeProto*, NodeProto>> after_constant;
      for (int i = 0; i < g.node_size(); ++i) {
        NodeProto& n = *g.mutable_node(i);
        if (n.op_type() != "Constant" || !is_default_domain(n) || n.output_size() != 1) continue;
        for (auto& a : *n.mutable_attribute()) {
          if (a.name() != "value" || a.t().data_type() != TensorProto::FLOAT) continue;
          if (excluded_reader(*graph, n.output(0), context) || context.is_excluded(n)) {
            stats.skip(n.output(0), "excluded");
            continue;
          }
          if (batchnorm_statistics(*graph, n.output(0))) {
            stats.skip(n.output(0), "batchnorm_statistics");
            continue;
          }
          const std::string original = n.output(0), stored = model.unique_name(original + "_fp16");
          int64_t clamped = 0;
          ReconstructionError err;
          TensorProto half = to_half_tensor(a.t(), "", clamped, err);
          record(stats, original, a.t(), err, clamped);
          *a.mutable_t() = std::move(half);
          n.set_output(0, stored);
          after_constant.emplace_back(&n, make_cast(model.unique_name(original + "_to_fp32"), stored, original,
                                                   TensorProto::FLOAT));
        }
      }
      stats.count("casts_added", static_cast<int64_t>(done.size() + after_constant.size()));
      insert_nodes(g, std::move(after_constant), /*after=*/true);
      insert_nodes(g, std::move(casts), /*after=*/false);
      graph->invalidate();
    }
  }

  // ---- full conversion ----
  struct Plan {
    std::map<std::string, int32_t> types;        // inferred elem types, whole model
    std::map<std::string, bool> half;            // natural type of float values: true = float16
    std::set<const NodeProto*> half_nodes;       // nodes computing in float16
  };

  static bool is_float(const Plan& p, const std::string& v) {
    auto it = p.types.find(v);
    return it != p.types.end() && it->second == TensorProto::FLOAT;
  }

  static void full(Model& model, const PassContext& context, PassStats& stats) {
    const bool keep_io = context.options().get_bool("keep-io-types");
    const auto block_list = context.options().get_list("block-ops");
    const std::set<std::string> blocked(block_list.begin(), block_list.end());
    Plan p;
    {
      onnx::ModelProto copy = model.copy_without_large_data();  // types only: no weight bytes
      try {
        onnx::shape_inference::InferShapes(copy, onnx::OpSchemaRegistry::Instance(),
                                           onnx::ShapeInferenceOptions(false, 0, false));
      } catch (const std::exception& e) {
        stats.warnings.push_back(std::string("type inference incomplete: ") + e.what());
      }
      collect_types(copy.graph(), p.types);
    }

    for (Graph* graph : model.all_graphs()) {
      auto& g = graph->proto();
      const bool main = graph->parent() == nullptr;
      // Shape arithmetic: values derived only from Shape/Size (and constants).
      std::set<std::string> shape_derived;
      for (const auto& n : g.node()) {
        bool any = false, all = true;
        auto visit = [&](const std::string& in) {
          if (in.empty() || graph->constant_in_scope(in)) return;
          if (shape_derived.count(in)) any = true; else all = false;
        };
        for (const auto& in : n.input()) visit(in);
        // Values a body reads by name are inputs too: an If on a shape-derived condition whose branches
        // read audio samples computes data, not sizes (silero VAD legacy).
        for (const auto& a : n.attribute()) {
          std::vector<const onnx::GraphProto*> bodies;
          if (a.has_g()) bodies.push_back(&a.g());
          for (const auto& sg : a.graphs()) bodies.push_back(&sg);
          for (const auto* body : bodies) {
            const auto names = outer_scope_names(*body);
            std::vector<std::string> sorted(names.begin(), names.end());
            std::sort(sorted.begin(), sorted.end());
            for (const auto& in : sorted) visit(in);
          }
        }
        if (n.op_type() == "Shape" || n.op_type() == "Size" || (any && all))
          for (const auto& o : n.output()) shape_derived.insert(o);
      }
      // Classify.
      std::set<std::string> graph_outputs;
      for (const auto& o : g.output()) graph_outputs.insert(o.name());
      for (const auto& n : g.node()) {
        if (n.op_type() == "Constant") continue;
        bool has_float = false, known = true;
        for (const auto& v : n.input()) {
          if (v.empty()) continue;
          if (!p.types.count(v)) known = false;
          has_float = has_float || is_float(p, v);
        }
        for (const auto& v : n.output()) {
          if (v.empty()) continue;
          if (!p.types.count(v)) known = false;
          has_float = has_float || is_float(p, v);
        }
        if (!has_float) continue;
        const std::string label = n.name().empty() ? n.op_type() : n.name();
        std::string reason;
        if (!is_default_domain(n)) reason = "custom_domain";
        else if (kSubgraphOps.count(n.op_type())) reason = "";  // body converted inside; not a skip
        else if (!known) reason = "type_unknown";
        else if (blocked.count(n.op_type())) reason = "blocked_op";
        else if (n.op_type() == "BatchNormalization") reason = "batchnorm_statistics";
        else if (context.is_excluded(n)) reason = "excluded";
        else if (n.op_type() != "Shape" && n.op_type() != "Size" && n.output_size() > 0 && shape_derived.count(n.output(0)))
          reason = "shape_arithmetic";
        else {
          bool feeds_output = false;
          for (const auto& o : n.output()) feeds_output = feeds_output || graph_outputs.count(o);
          // Subgraph interfaces stay float32; with keep-io-types so do the main graph's.
          if (feeds_output && (!main || keep_io)) reason = "feeds_graph_output";
        }
        if (kSubgraphOps.count(n.op_type())) continue;
        if (!reason.empty()) {
          stats.count("float32_nodes." + reason);
          if (reason != "feeds_graph_output") stats.skip(label, reason);
          continue;
        }
        p.half_nodes.insert(&n);
      }
    }
    // Main graph interface without keep-io-types.
    Graph& main_graph = model.graph();
    if (!keep_io) {
      std::set<std::string> changed;
      for (const auto& in : main_graph.proto().input())
        if (is_float(p, in.name()) && !main_graph.initializer(in.name())) changed.insert(in.name());
      set_elem_type(*main_graph.proto().mutable_input(), changed, TensorProto::FLOAT16);
      for (const auto& v : changed) p.half[v] = true;
      stats.count("float16_inputs", static_cast<int64_t>(changed.size()));
    }

    // Natural types and Casts, outer graphs first so outer values are known inside bodies.
    for (Graph* graph : model.all_graphs()) convert_graph(model, *graph, p, stats);

    if (!keep_io) {
      // Outputs produced in float32 get a Cast to float16 under their interface name.
      auto& g = main_graph.proto();
      std::set<std::string> outs;
      for (const auto& o : g.output())
        if (is_float(p, o.name())) outs.insert(o.name());
      for (const auto& name : outs) {
        if (!p.half[name]) {
          const std::string inner = model.unique_name(name + "_fp32");
          for (auto& n : *g.mutable_node())
            for (auto& o : *n.mutable_output())
              if (o == name) o = inner;
          rename_inputs_in_tree(g, name, inner, nullptr);
          for (auto& t : *g.mutable_initializer())
            if (t.name() == name) t.set_name(inner);
          *g.add_node() = make_cast(model.unique_name(name + "_to_fp16"), inner, name, TensorProto::FLOAT16);
        }
      }
      set_elem_type(*g.mutable_output(), outs, TensorProto::FLOAT16);
      stats.count("float16_outputs", static_cast<int64_t>(outs.size()));
      main_graph.invalidate();
    }
  }

  // Every actual reader of `value` in `graph` computes in float16. An implicit use (a subgraph of an
  // If/Loop/Scan reading the outer value by name) is followed into each body that reads it, at any depth:
  // the If/Loop/Scan node itself is not the reader. The name is read as-is inside the body, so its type
  // must suit every reader there. A graph output (of the main graph or of a body) is a float32 reader.
  static bool all_readers_half(Graph& graph, const std::string& value, const Plan& p) {
    const auto& uses = graph.consumers(value);
    if (uses.empty() || graph.is_graph_output(value)) return false;
    for (const auto& u : uses) {
      if (u.input_index >= 0) {
        if (!p.half_nodes.count(u.node)) return false;
        continue;
      }
      bool read = false;
      for (Graph* body : graph.subgraphs()) {
        bool of_node = false;
        for (const auto& a : u.node->attribute()) {
          if (a.has_g() && &a.g() == &body->proto()) of_node = true;
          for (const auto& sg : a.graphs()) of_node = of_node || &sg == &body->proto();
        }
        if (!of_node || !outer_scope_names(body->proto()).count(value)) continue;
        if (!all_readers_half(*body, value, p)) return false;
        read = true;
      }
      if (!read) return false;  // no body found reading it: be safe
    }
    return true;
  }

  static void convert_graph(Model& model, Graph& graph, Plan& p, PassStats& stats) {
    auto& g = graph.proto();
    std::set<std::string> half_values;
    // Constants: float16 when every reader (here or in bodies) computes in float16.
    auto readers_all_half = [&](const std::string& v) { return all_readers_half(graph, v, p); };
    for (auto& t : *g.mutable_initializer()) {
      if (t.data_type() != TensorProto::FLOAT || graph.is_graph_input(t.name())) continue;
      p.half[t.name()] = false;
      if (!readers_all_half(t.name())) continue;
      int64_t clamped = 0;
      ReconstructionError err;
      TensorProto half = to_half_tensor(t, t.name(), clamped, err);
      record(stats, t.name(), t, err, clamped);
      t = std::move(half);
      p.half[t.name()] = true;
      half_values.insert(t.name());
    }
    for (auto& n : *g.mutable_node()) {
      if (n.op_type() == "Constant" && is_default_domain(n) && n.output_size() == 1) {
        for (auto& a : *n.mutable_attribute()) {
          if (a.name() != "value" || a.t().data_type() != TensorProto::FLOAT) continue;
          p.half[n.output(0)] = false;
          if (!readers_all_half(n.output(0))) continue;
          int64_t clamped = 0;
          ReconstructionError err;
          TensorProto half = to_half_tensor(a.t(), a.t().name(), clamped, err);
          record(stats, n.output(0), a.t(), err, clamped);
          *a.mutable_t() = std::move(half);
          p.half[n.output(0)] = true;
          half_values.insert(n.output(0));
        }
        continue;
      }
      const bool half_node = p.half_nodes.count(&n) != 0;
      for (const auto& o : n.output())
        if (is_float(p, o)) {
          p.half[o] = half_node;
          if (half_node) half_values.insert(o);
        }
      if (!half_node) continue;
      stats.count("float16_nodes");
      for (auto& a : *n.mutable_attribute()) {
        if (n.op_type() == "Cast" && a.name() == "to" && a.i() == TensorProto::FLOAT) a.set_i(TensorProto::FLOAT16);
        if (n.op_type() == "ConstantOfShape" && a.name() == "value" && a.t().data_type() == TensorProto::FLOAT) {
          int64_t clamped = 0;
          ReconstructionError err;
          *a.mutable_t() = to_half_tensor(a.t(), a.t().name(), clamped, err);
        }
      }
    }
    for (const auto& in : g.input())
      if (is_float(p, in.name()) && !p.half.count(in.name())) p.half[in.name()] = false;

    // Casts where a reader wants the other type. One Cast per (value, target type).
    std::map<std::pair<std::string, bool>, std::string> cast_of;
    std::vector<std::pair<const NodeProto*, NodeProto>> new_casts;  // (first reader, Cast placed before it)
    int64_t added = 0;
    for (auto& n : *g.mutable_node()) {
      if (n.op_type() == "Constant") continue;
      const bool want_half = p.half_nodes.count(&n) != 0;
      for (auto& in : *n.mutable_input()) {
        if (in.empty() || !is_float(p, in)) continue;
        auto it = p.half.find(in);
        const bool is_half = it != p.half.end() && it->second;
        if (is_half == want_half) continue;
        const auto key = std::make_pair(in, want_half);
        auto c = cast_of.find(key);
        if (c == cast_of.end()) {
          const std::string out = model.unique_name(in + (want_half ? "_fp16" : "_fp32"));
          new_casts.emplace_back(&n, make_cast(model.unique_name(in + (want_half ? "_to_fp16" : "_to_fp32")), in, out,
                                               want_half ? TensorProto::FLOAT16 : TensorProto::FLOAT));
          c = cast_of.emplace(key, out).first;
          ++added;
        }
        in = c->second;
      }
    }
    insert_nodes(g, std::move(new_casts), /*after=*/false);
    stats.count("casts_added", added);
    set_elem_type(*g.mutable_value_info(), half_values, TensorProto::FLOAT16);
    graph.invalidate();
  }
};

}  // namespace

std::unique_ptr<Pass> make_fp16_pass() { return std::make_unique<Fp16Pass>(); }

}  // namespace compress
