// fold: the simplifications that make a graph cheaper and fusable (fold.cpp). quantize-int8
// mode=static runs them first, so BatchNormalization never sits between a Conv and its QDQ pair.
#pragma once

#include <compress/model.h>
#include <compress/pass.h>

namespace compress {

/// Which fold steps run (the fold pass's options; all of them when another pass runs fold first).
struct FoldSteps {
  bool batch_norm = true;
  bool constants = true;
  bool no_ops = true;
};

/// Runs the chosen fold steps on every graph of `model` (BatchNormalization into the Conv,
/// ConvTranspose, Gemm or MatMul before it; constant subgraphs of cheap exact ops; no-op Identity,
/// Dropout and Cast), skipping nodes the context excludes. Counters and skip reasons go into
/// `stats` prefixed with `prefix` ("" for the fold pass itself, "fold." when another pass runs it).
void fold_model(Model& model, const PassContext& context, const FoldSteps& steps, PassStats& stats,
                const std::string& prefix = "");

}  // namespace compress
