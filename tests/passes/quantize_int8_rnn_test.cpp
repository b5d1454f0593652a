// quantize-int8 on recurrent layers: LSTM W and R become int8 + DequantizeLinear along axis 1.
#include <compress/evaluator.h>
#include <compress/pipeline.h>
#include <compress/tensor.h>
#include <gtest/gtest.h>

#include <cmath>

#include "testing/builders.h"

namespace compress {
namespace {

const char* kLstm = R"(
<ir_version: 8, opset_import: ["" : 14]>
g (float[5, 1, 16] x) => (float[5, 1, 1, 32] y) {
  y = LSTM <hidden_size = 32> (x, w, r)
}
)";

TEST(QuantizeInt8Rnn, LstmWeightsAreQuantizedPerGateRowAndOutputsStayClose) {
  Model original = testing::model_with_weights(
      kLstm, {testing::random_tensor("w", {1, 128, 16}, 1, 0.25f), testing::random_tensor("r", {1, 128, 32}, 2, 0.18f)});
  Model m = Model::from_proto(original.proto());
  const auto runs = Pipeline::build(PassRegistry::builtin(), parse_pipeline_text("quantize-int8:mode=dynamic")).run(m, {});
  EXPECT_EQ(runs.at(0).stats.counters.at("quantized"), 2);
  int dq = 0;
  for (const auto& n : m.proto().graph().node()) {
    if (n.op_type() != "DequantizeLinear") continue;
    ++dq;
    ASSERT_EQ(n.attribute_size(), 1);
    EXPECT_EQ(n.attribute(0).i(), 1);  // one scale per gate row
  }
  EXPECT_EQ(dq, 2);
  for (const auto& t : m.proto().graph().initializer()) {
    EXPECT_NE(t.name(), "w");  // the float originals are gone
    EXPECT_NE(t.name(), "r");
  }
  m.check();

  // Same inputs through the evaluator: the int8 LSTM tracks the float one.
  eval::TensorMap feeds;
  std::vector<float> x(5 * 16);
  for (size_t i = 0; i < x.size(); ++i) x[i] = std::sin(0.37f * static_cast<float>(i));
  feeds["x"] = eval::Tensor::floats({5, 1, 16}, x);
  const auto a = eval::Evaluator(original).run(feeds).at("y").f;
  const auto b = eval::Evaluator(m).run(feeds).at("y").f;
  double dot = 0, na = 0, nb = 0;
  for (size_t i = 0; i < a.size(); ++i) dot += a[i] * b[i], na += a[i] * a[i], nb += b[i] * b[i];
  EXPECT_GT(dot / std::sqrt(na * nb), 0.999);
}

}  // namespace
}  // namespace compress
