// The library's logger: named "compress", on stderr (stdout belongs to reports). An application
// may register its own "compress" logger first (tools/compress/main.cpp does) to set the format.
#pragma once

#include <spdlog/spdlog.h>

#include <memory>

namespace compress {

std::shared_ptr<spdlog::logger> logger();

}  // namespace compress
