// Wall-clock time for the course's throughput numbers.
#pragma once

#include <chrono>

namespace kvc {

// Milliseconds from `start` to now, on the monotonic clock.
inline double ms_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start)
      .count();
}

}  // namespace kvc
