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

}  // namespace
}  // namespace compress
