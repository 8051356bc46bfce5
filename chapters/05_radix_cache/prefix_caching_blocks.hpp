// Chapter 05: chapter 04's block manager with a prefix cache plugged in.
//
// The three levels of SGLang's RadixAttention map onto this engine:
//   RadixCache      (token runs -> KV blocks)       PrefixCache: RadixCache or HashBlockCache
//   ReqToTokenPool  (request x position -> slot)    ch04::BlockTable, one per sequence
//   TokenToKVPool   (slot -> K, V)                  the paged pool (PagedKVCache, CPU or CUDA)
//
// The scheduler and the forward pass do not change: they drive the sequence
// lifecycle of kv_strategy.hpp, and this class answers it.
//   begin_sequence   match the prompt (all but its last token) and start the
//                    sequence on the matched blocks, locking that prefix
//   publish          after the prompt is computed: cache its full blocks, so
//                    requests admitted from the next step on can share them
//   finish_sequence  cache the full blocks of everything it computed, unlock, release
//   fork             the child holds the parent's lock too
//   reclaim          when the free list is empty, the cache evicts its least
//                    recently used unlocked blocks and the pool takes them back
//
// Reference counts keep it safe, locks keep it useful: a block is reused only
// when its count drops to 0, whoever forgot it; a lock keeps the cache from
// forgetting blocks a running sequence will want again.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <span>
#include <string_view>
#include <vector>

#include "chapters/04_paged_allocator/block_manager.hpp"
#include "chapters/04_paged_allocator/paged_kv_cache.hpp"
#include "chapters/05_radix_cache/prefix_cache.hpp"

namespace kvc::ch05 {

// What the cache did, for traces and the demo's table.
struct PrefixCacheStats {
  long long lookups = 0;          // begin_sequence calls
  long long hits = 0;             // lookups that matched at least one block
  long long matched_tokens = 0;   // tokens those lookups found cached
  long long inserted_blocks = 0;  // blocks the cache took from finished or published sequences
  long long evicted_blocks = 0;   // blocks the pool took back from the cache
  long long dropped_blocks = 0;   // blocks invalidate() made the cache forget
};

class PrefixCachingBlockManager final : public ch04::BlockManager {
 public:
  // Throws kvc::Error when the cache's block size is not the pool's.
  PrefixCachingBlockManager(int num_blocks, int block_size, std::unique_ptr<PrefixCache> cache);

  int begin_sequence(int seq_id, std::span<const int> tokens) override;
  int cached_prefix_tokens(std::span<const int> tokens) const override;
  // Caches the full blocks of the positions the sequence holds and moves its
  // lock to that (longer) prefix.
  void publish(int seq_id, std::span<const int> tokens) override;
  void finish_sequence(int seq_id, std::span<const int> tokens) override;
  void release(int seq_id) override;
  void fork(int parent, int child) override;
  bool shares_prefixes() const override { return true; }
  // Chapter 04's invariants (reference counts include the cache's), the
  // cache's own, and: the cache holds exactly the blocks the pool marks cached.
  void check_invariants() const override;

  const PrefixCache& cache() const { return *cache_; }
  const PrefixCacheStats& stats() const { return stats_; }

  // Invalidation (chapter 06): `forget` runs on the cache and returns the
  // blocks it stopped holding (an expiry, a session's end, a namespace
  // cleared, everything unlocked); the pool drops the cache's reference on
  // each, so a block no sequence holds becomes free. Returns their ids.
  std::vector<int> invalidate(const std::function<std::vector<int>(PrefixCache&)>& forget);

  // Keeps the cached full blocks of `tokens` from ever being evicted or
  // invalidated, as a running request would, until unpin(pin_id): a pinned
  // system prompt. Returns the tokens pinned (0 when nothing is cached yet).
  // Throws kvc::Error for a pin_id < 0 or one already pinned.
  int pin(int pin_id, std::span<const int> tokens);
  void unpin(int pin_id);

 protected:
  std::vector<int> reclaim(int num_blocks) override;

 private:
  std::unique_ptr<PrefixCache> cache_;
  std::map<int, PrefixHandle> locks_;  // sequence -> the cached prefix it keeps locked
  PrefixCacheStats stats_;
};

// Chapter 04's paged pool of num_blocks blocks on the device, with a prefix
// cache of `kind` ("radix" or "hash") plugged into its block manager.
std::unique_ptr<ch04::PagedKVStrategy> make_prefix_cached_pool(const ModelConfig& config,
                                                               const DeviceContext& device,
                                                               std::string_view kind,
                                                               int num_blocks, int block_size);

// The chapter's strategy with a pool big enough for `max_seqs` sequences of
// the model's full context (what the tour and the end-to-end tests use).
std::unique_ptr<KVStrategy> make_strategy(const ModelConfig& config, const DeviceContext& device,
                                          std::string_view kind = "radix", int block_size = 16,
                                          int max_seqs = 1);

}  // namespace kvc::ch05
