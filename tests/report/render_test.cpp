#include <compress/report.h>
#include <gtest/gtest.h>

namespace compress {
namespace {

Report predicted(double before_ms, double after_ms) {
  Report r;
  r.input = "in.onnx";
  r.output = "out.onnx";
  r.target = "ort-cpu";
  r.before.predicted_latency_ms = before_ms;
  r.after.predicted_latency_ms = after_ms;
  return r;
}

std::string first_lines(const std::string& text) { return text.substr(0, text.find("\n\n")); }

// A predicted gain smaller than the predictor's error is never shown as a gain.
TEST(Render, LatencyHeadlineClaimsNoGainWithinThePredictorsError) {
  const Report small_gain = predicted(10.0, 9.5);
  EXPECT_NE(first_lines(render_report_text(small_gain)).find("NOTE: predicted 0.950x the input's latency on ort-cpu: "
                                                             "within the predictor's error"),
            std::string::npos)
      << render_report_text(small_gain);
  EXPECT_EQ(report_to_json(small_gain).at("predicted_latency_verdict"), "within_error");

  const Report gain = predicted(10.0, 8.0);
  EXPECT_EQ(first_lines(render_report_text(gain)).find("NOTE:"), std::string::npos);
  EXPECT_EQ(report_to_json(gain).at("predicted_latency_verdict"), "faster");

  const Report loss = predicted(10.0, 10.5);
  EXPECT_NE(first_lines(render_report_text(loss)).find("WARNING: predicted SLOWER on ort-cpu: 1.050x"), std::string::npos);
  EXPECT_EQ(report_to_json(loss).at("predicted_latency_verdict"), "slower");
  EXPECT_EQ(report_to_json(predicted(10.0, 10.0)).at("predicted_latency_verdict"), "same");
}

// float16 MACs count less energy at 45 nm, but a CPU target that runs the output slower spends more:
// the count is shown, marked, and not claimed.
TEST(Render, EnergyCountIsNotClaimedAsAGainWhereTheTargetIsNotFaster) {
  Report r = predicted(10.0, 11.0);
  r.before.macs_by_dtype["float32"] = 1000000;
  r.after.macs_by_dtype["float16"] = 1000000;
  const std::string text = render_report_text(r);
  EXPECT_NE(text.find("0.326x*"), std::string::npos) << text;
  EXPECT_NE(text.find("* energy: a per-op count, not a gain on ort-cpu, where the output is predicted 1.100x"),
            std::string::npos)
      << text;
  EXPECT_EQ(report_to_json(r).at("energy_gain_claimed"), false);
  r.after.predicted_latency_ms = 5.0;  // predicted faster: the count stands
  EXPECT_EQ(render_report_text(r).find("0.326x*"), std::string::npos);
  EXPECT_EQ(report_to_json(r).at("energy_gain_claimed"), true);
}

}  // namespace
}  // namespace compress
