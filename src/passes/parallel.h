// parallel_for: independent items on every core (OpenMP, when the build has it), with exceptions
// carried out of the parallel region.
#pragma once

#include <cstdint>
#include <exception>
#include <vector>

namespace compress {

/// Calls fn(state, i) for i in [0, n) across threads, each thread with its own default-made State
/// (scratch buffers it reuses). Every item runs; the first exception in item order is rethrown.
template <class State, class Fn>
void parallel_for(int64_t n, Fn&& fn) {
  std::vector<std::exception_ptr> failures(static_cast<size_t>(n > 0 ? n : 0));
#ifdef _OPENMP
#pragma omp parallel
#endif
  {
    State state{};
#ifdef _OPENMP
#pragma omp for schedule(dynamic, 1)
#endif
    for (int64_t i = 0; i < n; ++i) {
      try {
        fn(state, i);
      } catch (...) {
        failures[static_cast<size_t>(i)] = std::current_exception();
      }
    }
  }
  for (const auto& failure : failures)
    if (failure) std::rethrow_exception(failure);
}

}  // namespace compress
