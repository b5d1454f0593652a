// A downstream project: load, quantize, save, report through the installed library.
#include <compress/model.h>
#include <compress/pipeline.h>
#include <compress/report.h>

#include <iostream>

int main(int argc, char** argv) {
  if (argc != 3) return 1;
  compress::Model model = compress::Model::load(argv[1]);
  const auto pipeline =
      compress::Pipeline::build(compress::PassRegistry::builtin(), compress::parse_pipeline_text("quantize-int8"));
  pipeline.run(model, {});
  model.save(argv[2], {});
  std::cout << compress::compute_stats(model, {}).weight_bytes << "\n";
  return 0;
}
