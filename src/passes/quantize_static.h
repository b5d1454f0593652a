// quantize-int8 mode=static: calibrated activation ranges and the QDQ rewrite (quantize_static.cpp).
#pragma once

#include <compress/model.h>
#include <compress/pass.h>

namespace compress {

/// Runs mode=static of quantize-int8 with the pass's validated options (calibration, method,
/// percentile, per-channel, exclude). Throws Error(kUsage) when no calibration samples were given.
PassStats quantize_int8_static(Model& model, const PassContext& context);

}  // namespace compress
