// Request lengths for the fragmentation experiment: a fixed-seed synthetic
// workload, so every run (and every reader) sees the same numbers.
#pragma once

#include <cstdint>
#include <vector>

namespace kvc::ch04 {

// `count` request lengths (prompt + output tokens) in [1, max_context]:
// log-normally distributed around max_context / 16 (many short chats, a tail
// of long documents), from a generator fully determined by `seed`.
std::vector<int> synthetic_request_lengths(int count, int max_context, std::uint64_t seed);

}  // namespace kvc::ch04
