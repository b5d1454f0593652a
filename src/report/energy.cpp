// Energy per inference, an estimate. The one table of constants: 45 nm per-operation energies
// from M. Horowitz, "Computing's energy problem (and what we can do about it)", ISSCC 2014.
// A MAC costs one multiply plus one add of its compute dtype; each weight byte is read once from
// DRAM (640 pJ per 32-bit word). With a target profile, a weight the target dequantizes every run
// costs a float32 write and read per element more. Activations, caches and other data movement are
// not modelled.
#include <compress/report.h>

#include <map>

namespace compress {

namespace {

struct MacEnergy {
  double mult_pj;
  double add_pj;
};

const std::map<std::string, MacEnergy> kMacEnergy = {
    {"float32", {3.7, 0.9}},
    {"float64", {3.7 * 4, 0.9 * 2}},  // not in the paper's table: scaled from fp32 (an assumption)
    {"float16", {1.1, 0.4}},
    {"bfloat16", {1.1, 0.4}},  // assumed equal to fp16
    {"int8", {0.2, 0.03}},
    {"uint8", {0.2, 0.03}},
    {"int32", {3.1, 0.1}},
};
constexpr double kDramPjPer32BitWord = 640.0;

}  // namespace

EnergyEstimate estimate_energy(const ModelStats& stats) {
  EnergyEstimate e;
  for (const auto& [dtype, macs] : stats.macs_by_dtype) {
    auto it = kMacEnergy.find(dtype);
    const MacEnergy mac = it != kMacEnergy.end() ? it->second : kMacEnergy.at("float32");
    e.compute_uj += static_cast<double>(macs) * (mac.mult_pj + mac.add_pj) * 1e-6;
  }
  e.dram_uj = static_cast<double>(stats.weight_bytes) / 4.0 * kDramPjPer32BitWord * 1e-6;
  // A weight the target dequantizes every run (ORT CPU: DequantizeLinear is not fused) is float
  // compute (counted above, by the MAC's dtype) plus one float32 write and one read per element.
  e.dequantize_uj = static_cast<double>(stats.dequantized_weight_elements) * 2.0 * kDramPjPer32BitWord * 1e-6;
  return e;
}

}  // namespace compress
