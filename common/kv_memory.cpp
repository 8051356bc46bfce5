#include "common/kv_memory.hpp"

#include <unistd.h>

#include <cstdint>
#include <limits>
#include <string>

#include "common/check.hpp"
#include "common/report.hpp"

namespace kvc {

std::uint64_t host_memory_bytes() {
  const long pages = sysconf(_SC_PHYS_PAGES);
  const long page_bytes = sysconf(_SC_PAGESIZE);
  if (pages <= 0 || page_bytes <= 0) return std::numeric_limits<std::uint64_t>::max();
  return static_cast<std::uint64_t>(pages) * static_cast<std::uint64_t>(page_bytes);
}

std::size_t checked_kv_floats(const ModelConfig& c, std::int64_t positions,
                              std::uint64_t memory_bytes, std::string_view what,
                              std::string_view positions_cause) {
  KVC_CHECK(positions >= 0, what, ": negative KV cache size (", positions_cause, ")");
  const std::string product = "2 (K and V) x 4 bytes x " + std::to_string(c.n_layers) +
                              " layers x " + std::to_string(positions) + " positions x " +
                              std::to_string(c.n_kv_heads) + " KV heads x head_dim " +
                              std::to_string(c.head_dim()) +
                              "; positions: " + std::string(positions_cause);
  std::uint64_t floats = 1;
  const std::uint64_t factors[] = {
      static_cast<std::uint64_t>(c.n_layers), static_cast<std::uint64_t>(positions),
      static_cast<std::uint64_t>(c.n_kv_heads), static_cast<std::uint64_t>(c.head_dim())};
  bool overflow = false;
  for (std::uint64_t f : factors) overflow = overflow || __builtin_mul_overflow(floats, f, &floats);
  std::uint64_t bytes = 0;
  overflow = overflow || __builtin_mul_overflow(floats, std::uint64_t{2 * sizeof(float)}, &bytes);
  KVC_CHECK(!overflow, what, ": the KV cache needs more than 2^64 bytes (", product, ")");
  KVC_CHECK(bytes <= memory_bytes, what, ": ", format_bytes(static_cast<double>(bytes)),
            " of K and V, more than this machine's ",
            format_bytes(static_cast<double>(memory_bytes)), " of memory (", product, ")");
  return static_cast<std::size_t>(floats);
}

std::size_t checked_host_kv_floats(const ModelConfig& config, std::int64_t positions,
                                   std::string_view what, std::string_view positions_cause) {
  return checked_kv_floats(config, positions, host_memory_bytes(), what, positions_cause);
}

KvFloats zeroed_kv_floats(std::size_t count) {
  return KvFloats(count, 0.0f);
}

}  // namespace kvc
