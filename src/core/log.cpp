#include "core/log.h"

#include <spdlog/sinks/stdout_color_sinks.h>

namespace compress {

std::shared_ptr<spdlog::logger> logger() {
  if (auto existing = spdlog::get("compress")) return existing;
  try {
    return spdlog::stderr_color_mt("compress");
  } catch (const spdlog::spdlog_ex&) {
    return spdlog::get("compress");  // registered by another thread meanwhile
  }
}

}  // namespace compress
