// Chapter 06: the best any eviction policy could do — Belady's MIN on a block trace.
//
// A policy decides online, knowing only the past. Belady's MIN (1966) decides
// offline, knowing every future request: when it must make room it drops the
// block whose next use is farthest away (or never), and it does not keep a
// block at all when every cached block is needed sooner. For blocks of one
// size no policy has more hits. The memory-pressure experiment shows every
// policy's hit rate beside MIN's at the same capacity.
//
// The model (what MIN is told, precisely):
//   - a workload becomes a trace of block accesses, request after request:
//     first a lookup of each full block of the prompt but its last token
//     (what a prefix cache matches), then a store of each further full block
//     it computed (its answer, which a chat's next turn will reuse);
//   - a block is named by its whole prefix (the tokens up to its end), as
//     the radix tree and the hash chain name it;
//   - a hit is a looked-up block found cached; a store costs nothing (the
//     block was just computed), so only lookups count;
//   - capacity is the whole pool, in blocks.
// It ignores what makes the engine's job harder: the blocks running
// sequences hold (they share the pool with the cache), requests that overlap
// in time, and the prefix rule (a block is useful only when every block
// before it hits too; the engine evicts leaves first). So MIN's hit rate is a
// ceiling the engine's policies stay under, not one they can reach.
#pragma once

#include <span>
#include <vector>

#include "chapters/05_radix_cache/workloads.hpp"

namespace kvc::ch06 {

struct BlockAccess {
  int block = 0;        // the block's prefix, numbered in order of first appearance
  bool lookup = false;  // true: a prompt block looked up (a hit skips its prefill);
                        // false: a block just computed, stored for later requests
  friend bool operator==(const BlockAccess&, const BlockAccess&) = default;
};

struct BlockTrace {
  int block_size = 0;
  std::vector<BlockAccess> accesses;  // in request order
  long long prompt_tokens = 0;        // every prompt token: the hit rate's denominator
  int distinct_blocks = 0;
};

// The trace of completions run one after another. completions[i] holds the
// prompt (its first prompt_sizes[i] tokens), then the sampled tokens; the
// full blocks of the positions the engine computed are stored: every token,
// but for a completion that reached max_new_tokens its last one, which is
// returned and never fed (one that sampled BOS fed all it holds). Throws
// kvc::Error for block_size < 1, mismatched sizes or a prompt size outside
// [1, completion size].
BlockTrace block_trace(std::span<const std::vector<int>> completions,
                       std::span<const int> prompt_sizes, int block_size, int max_new_tokens);
BlockTrace block_trace(const ch05::WorkloadRun& run, int block_size, int max_new_tokens);

// Lookups that hit under Belady's MIN with room for `capacity` blocks (>= 0).
long long belady_hits(const BlockTrace& trace, int capacity);

// Prompt tokens those hits skip, of all prompt tokens (as WorkloadRun::hit_rate).
double belady_hit_rate(const BlockTrace& trace, int capacity);

}  // namespace kvc::ch06
