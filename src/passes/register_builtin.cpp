// The one list of built-in passes: adding a pass is one file plus one line here.
#include <compress/pass.h>

#include "passes/passes.h"

namespace compress {

void register_builtin_passes(PassRegistry& registry) {
  registry.add([] { return make_cleanup_pass(); });
  registry.add([] { return make_quantize_int8_pass(); });
  registry.add([] { return make_prune_magnitude_pass(); });
  registry.add([] { return make_prune_channels_pass(); });
  registry.add([] { return make_fp16_pass(); });
  registry.add([] { return make_quantize_int4_pass(); });
  registry.add([] { return make_low_rank_pass(); });
  registry.add([] { return make_fold_pass(); });
}

}  // namespace compress
