#include "chapters/04_paged_allocator/workload.hpp"

#include <algorithm>
#include <cmath>
#include <numbers>
#include <random>

#include "common/check.hpp"

namespace kvc::ch04 {

std::vector<int> synthetic_request_lengths(int count, int max_context, std::uint64_t seed) {
  KVC_CHECK(count > 0, "the workload needs at least one request, got ", count);
  KVC_CHECK(max_context > 0, "max context must be positive, got ", max_context);
  // mt19937_64's sequence is fixed by the standard; the distributions' are
  // not, so the normal deviates are drawn by hand (Box-Muller).
  std::mt19937_64 rng(seed);
  auto uniform = [&] { return (static_cast<double>(rng() >> 11) + 0.5) / 9007199254740992.0; };
  const double median = max_context / 16.0, sigma = 1.0;
  std::vector<int> lengths;
  lengths.reserve(count);
  for (int i = 0; i < count; ++i) {
    const double normal =
        std::sqrt(-2.0 * std::log(uniform())) * std::cos(2.0 * std::numbers::pi * uniform());
    // Clamped while still a double: a long tail past INT_MAX must not wrap.
    const double tokens =
        std::clamp(median * std::exp(sigma * normal), 1.0, static_cast<double>(max_context));
    lengths.push_back(static_cast<int>(std::lround(tokens)));
  }
  return lengths;
}

}  // namespace kvc::ch04
