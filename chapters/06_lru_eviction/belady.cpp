#include "chapters/06_lru_eviction/belady.hpp"

#include <limits>
#include <map>
#include <set>
#include <utility>

#include "common/check.hpp"

namespace kvc::ch06 {

BlockTrace block_trace(std::span<const std::vector<int>> completions,
                       std::span<const int> prompt_sizes, int block_size, int max_new_tokens) {
  KVC_CHECK(block_size >= 1, "block trace: block size must be positive, got ", block_size);
  KVC_CHECK(completions.size() == prompt_sizes.size(), "block trace: ", completions.size(),
            " completions but ", prompt_sizes.size(), " prompt sizes");
  BlockTrace trace;
  trace.block_size = block_size;
  // (the block before it, its tokens) -> block number: a block is its whole prefix.
  std::map<std::pair<int, std::vector<int>>, int> numbers;
  const auto bs = static_cast<std::size_t>(block_size);
  for (std::size_t i = 0; i < completions.size(); ++i) {
    const std::vector<int>& tokens = completions[i];
    const int prompt = prompt_sizes[i];
    KVC_CHECK(prompt >= 1 && static_cast<std::size_t>(prompt) <= tokens.size(),
              "block trace: ", "completion ", i, " has ", tokens.size(), " tokens but a prompt of ",
              prompt);
    trace.prompt_tokens += prompt;
    const std::size_t looked_up = static_cast<std::size_t>(prompt - 1) / bs;
    const bool at_limit = static_cast<int>(tokens.size()) - prompt == max_new_tokens;
    const std::size_t computed = (tokens.size() - (at_limit ? 1 : 0)) / bs;
    int previous = -1;
    for (std::size_t b = 0; b < computed; ++b) {
      std::vector<int> run(tokens.begin() + static_cast<std::ptrdiff_t>(b * bs),
                           tokens.begin() + static_cast<std::ptrdiff_t>((b + 1) * bs));
      const auto [it, added] =
          numbers.try_emplace({previous, std::move(run)}, static_cast<int>(numbers.size()));
      previous = it->second;
      trace.accesses.push_back({previous, b < looked_up});
    }
  }
  trace.distinct_blocks = static_cast<int>(numbers.size());
  return trace;
}

BlockTrace block_trace(const ch05::WorkloadRun& run, int block_size, int max_new_tokens) {
  return block_trace(run.tokens, run.prompt_sizes, block_size, max_new_tokens);
}

long long belady_hits(const BlockTrace& trace, int capacity) {
  KVC_CHECK(capacity >= 0, "Belady: capacity must not be negative, got ", capacity);
  constexpr std::size_t kNever = std::numeric_limits<std::size_t>::max();
  const std::vector<BlockAccess>& a = trace.accesses;
  // need[i]: when the block accessed at i is next looked up, kNever when it
  // is stored first (the store brings it back for free) or never used again.
  std::vector<std::size_t> need(a.size(), kNever);
  std::vector<std::size_t> next_access(static_cast<std::size_t>(trace.distinct_blocks), kNever);
  for (std::size_t i = a.size(); i-- > 0;) {
    const auto block = static_cast<std::size_t>(a[i].block);
    const std::size_t next = next_access[block];
    need[i] = next != kNever && a[next].lookup ? next : kNever;
    next_access[block] = i;
  }
  std::set<std::pair<std::size_t, int>> cached;  // (when it is needed next, block)
  std::vector<std::size_t> needed_at(static_cast<std::size_t>(trace.distinct_blocks), kNever);
  std::vector<bool> in_cache(static_cast<std::size_t>(trace.distinct_blocks), false);
  long long hits = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    const auto block = static_cast<std::size_t>(a[i].block);
    if (in_cache[block]) {
      hits += a[i].lookup ? 1 : 0;
      cached.erase({needed_at[block], a[i].block});
      in_cache[block] = false;
    }
    // Keep it only if it is needed again, and sooner than the farthest cached block.
    if (need[i] == kNever || capacity == 0) continue;
    if (static_cast<int>(cached.size()) == capacity) {
      const auto farthest = std::prev(cached.end());
      if (farthest->first <= need[i]) continue;
      in_cache[static_cast<std::size_t>(farthest->second)] = false;
      cached.erase(farthest);
    }
    cached.insert({need[i], a[i].block});
    needed_at[block] = need[i];
    in_cache[block] = true;
  }
  return hits;
}

double belady_hit_rate(const BlockTrace& trace, int capacity) {
  return trace.prompt_tokens > 0 ? static_cast<double>(belady_hits(trace, capacity)) *
                                       trace.block_size / static_cast<double>(trace.prompt_tokens)
                                 : 0.0;
}

}  // namespace kvc::ch06
