// What max-length pre-allocation wastes, compared with exact allocation.
//
// A contiguous KV cache must reserve a request's whole buffer up front, and it
// cannot know how long the request will run, so it reserves the full context
// for every request. A request that stops at 300 of 8,192 tokens leaves 96% of
// its reservation empty, and that memory cannot serve anyone else. Exact
// allocation (what paging approaches, chapter 04) reserves only the tokens used.
#pragma once

#include <cstdint>
#include <span>

namespace kvc {

// How one allocation policy fares on a list of requests.
struct AllocationOutcome {
  std::int64_t reserved_bytes = 0;     // set aside for the listed requests
  std::int64_t used_bytes = 0;         // filled by their tokens
  double waste_fraction = 0;           // (reserved - used) / reserved
  std::int64_t requests_that_fit = 0;  // admitted into the KV budget at once (see below)
};

struct FragmentationReport {
  AllocationOutcome max_length;  // every request reserves `context` tokens
  AllocationOutcome exact;       // every request reserves its own length
};

// NEW (ch04): every request reserves its length rounded up to whole units of
// `granularity` tokens: `context` is max-length pre-allocation, 1 is exact
// allocation, a block size is paging. Same conventions as compare_allocations.
AllocationOutcome allocate_in_units(std::span<const int> request_lengths, int granularity,
                                    std::int64_t bytes_per_token, std::int64_t kv_budget_bytes);

// `request_lengths` are the tokens each request ends up holding (prompt plus
// output), each in [1, context]. requests_that_fit treats the list as a
// repeating workload: requests arrive in list order, round after round, and are
// admitted until the next one no longer fits in `kv_budget_bytes`.
// Throws kvc::Error on an empty list, a length outside [1, context] or a
// non-positive context or bytes_per_token.
FragmentationReport compare_allocations(std::span<const int> request_lengths, int context,
                                        std::int64_t bytes_per_token, std::int64_t kv_budget_bytes);

}  // namespace kvc
