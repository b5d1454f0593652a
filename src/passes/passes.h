// Factories of the built-in passes (one per file in src/passes/).
#pragma once

#include <compress/pass.h>

#include <memory>

namespace compress {

std::unique_ptr<Pass> make_cleanup_pass();
std::unique_ptr<Pass> make_quantize_int8_pass();
std::unique_ptr<Pass> make_prune_magnitude_pass();
std::unique_ptr<Pass> make_prune_channels_pass();
std::unique_ptr<Pass> make_fp16_pass();
std::unique_ptr<Pass> make_quantize_int4_pass();
std::unique_ptr<Pass> make_low_rank_pass();
std::unique_ptr<Pass> make_fold_pass();

}  // namespace compress
