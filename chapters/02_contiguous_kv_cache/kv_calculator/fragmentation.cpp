#include "chapters/02_contiguous_kv_cache/kv_calculator/fragmentation.hpp"

#include <vector>

#include "common/check.hpp"
#include "common/checked_math.hpp"

namespace kvc {
namespace {

// Requests admitted in order, cycling through the list, until the next one's
// reservation exceeds what is left of the budget.
std::int64_t admitted_in_order(const std::vector<std::int64_t>& reservations, std::int64_t budget) {
  std::int64_t round_bytes = 0;
  for (const std::int64_t bytes : reservations) {
    round_bytes = checked_add(round_bytes, bytes, "the workload's reserved bytes");
  }
  // Every reservation is at least one byte, so the admitted count is at most
  // `budget` and cannot overflow.
  const std::int64_t full_rounds = budget / round_bytes;
  std::int64_t left = budget - full_rounds * round_bytes;
  std::int64_t admitted = full_rounds * static_cast<std::int64_t>(reservations.size());
  for (const std::int64_t bytes : reservations) {
    if (bytes > left) break;
    left -= bytes;
    ++admitted;
  }
  return admitted;
}

AllocationOutcome outcome(const std::vector<std::int64_t>& reservations, std::int64_t used_bytes,
                          std::int64_t budget) {
  AllocationOutcome result;
  for (const std::int64_t bytes : reservations) {
    result.reserved_bytes = checked_add(result.reserved_bytes, bytes, "the reserved bytes");
  }
  result.used_bytes = used_bytes;
  result.waste_fraction =
      static_cast<double>(result.reserved_bytes - used_bytes) / result.reserved_bytes;
  result.requests_that_fit = admitted_in_order(reservations, budget);
  return result;
}

}  // namespace

AllocationOutcome allocate_in_units(std::span<const int> request_lengths, int granularity,
                                    std::int64_t bytes_per_token, std::int64_t kv_budget_bytes) {
  KVC_CHECK(!request_lengths.empty(), "no request lengths given");
  KVC_CHECK(granularity > 0, "allocation unit must be a positive number of tokens, got ",
            granularity);
  KVC_CHECK(bytes_per_token > 0, "KV bytes per token must be positive, got ", bytes_per_token);
  KVC_CHECK(kv_budget_bytes >= 0, "the KV budget must be >= 0 bytes, got ", kv_budget_bytes);
  std::vector<std::int64_t> reservations;
  std::int64_t used_bytes = 0;
  for (const int length : request_lengths) {
    KVC_CHECK(length > 0, "request length ", length, " must be positive");
    // In 64 bits: a length near INT_MAX rounded up to whole units overflows an int.
    const std::int64_t units = (std::int64_t{length} + granularity - 1) / granularity;
    reservations.push_back(
        checked_mul(units * granularity, bytes_per_token, "one request's reserved bytes"));
    used_bytes = checked_add(
        used_bytes, checked_mul(std::int64_t{length}, bytes_per_token, "one request's used bytes"),
        "the used bytes");
  }
  return outcome(reservations, used_bytes, kv_budget_bytes);
}

FragmentationReport compare_allocations(std::span<const int> request_lengths, int context,
                                        std::int64_t bytes_per_token,
                                        std::int64_t kv_budget_bytes) {
  KVC_CHECK(context > 0, "context must be a positive number of tokens, got ", context);
  for (const int length : request_lengths) {
    KVC_CHECK(length > 0 && length <= context, "request length ", length,
              " is outside [1, context = ", context, "]");
  }
  return FragmentationReport{
      .max_length = allocate_in_units(request_lengths, context, bytes_per_token, kv_budget_bytes),
      .exact = allocate_in_units(request_lengths, 1, bytes_per_token, kv_budget_bytes),
  };
}

}  // namespace kvc
