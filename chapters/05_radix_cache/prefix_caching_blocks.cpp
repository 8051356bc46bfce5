#include "chapters/05_radix_cache/prefix_caching_blocks.hpp"

#include <algorithm>
#include <utility>

#include "common/check.hpp"
#include "common/checked_math.hpp"

namespace kvc::ch05 {

PrefixCachingBlockManager::PrefixCachingBlockManager(int num_blocks, int block_size,
                                                     std::unique_ptr<PrefixCache> cache)
    : BlockManager(num_blocks, block_size), cache_(std::move(cache)) {
  KVC_CHECK(cache_ != nullptr, "prefix caching: no cache given");
  KVC_CHECK(cache_->block_size() == block_size, "prefix caching: the ", cache_->name(),
            " cache keys blocks of ", cache_->block_size(), " tokens but the pool's blocks hold ",
            block_size);
}

int PrefixCachingBlockManager::begin_sequence(int seq_id, std::span<const int> tokens) {
  KVC_CHECK(!tokens.empty(), "prefix caching: sequence ", seq_id, " has no tokens");
  KVC_CHECK(table(seq_id) == nullptr, "prefix caching: sequence ", seq_id, " is already running");
  // All but the last token: that one must be computed to give the logits of the next.
  const PrefixMatch match = cache_->match_prefix(tokens.first(tokens.size() - 1));
  ++stats_.lookups;
  if (match.matched_tokens == 0) return 0;
  ++stats_.hits;
  stats_.matched_tokens += match.matched_tokens;
  cache_->lock(match.handle);
  locks_[seq_id] = match.handle;
  adopt(seq_id, match.blocks, match.matched_tokens);
  return match.matched_tokens;
}

int PrefixCachingBlockManager::cached_prefix_tokens(std::span<const int> tokens) const {
  return tokens.empty() ? 0 : cache_->peek_prefix(tokens.first(tokens.size() - 1));
}

void PrefixCachingBlockManager::publish(int seq_id, std::span<const int> tokens) {
  const ch04::BlockTable* t = table(seq_id);
  if (t == nullptr) return;
  const std::size_t held = std::min(tokens.size(), static_cast<std::size_t>(t->num_tokens));
  const std::size_t full_blocks = held / static_cast<std::size_t>(block_size());
  if (full_blocks == 0) return;
  const std::vector<int> blocks(t->blocks.begin(),
                                t->blocks.begin() + static_cast<std::ptrdiff_t>(full_blocks));
  const InsertResult inserted = cache_->insert(tokens.first(full_blocks * block_size()), blocks);
  // Where the cache already had these tokens in other blocks (computed by
  // another sequence meanwhile), the sequence switches to the cache's and
  // frees its duplicates (SGLang does the same): then every block a lock
  // protects is one a running sequence holds.
  for (std::size_t i = 0; i < inserted.cached_blocks.size(); ++i) {
    if (blocks[i] != inserted.cached_blocks[i]) {
      share_instead(seq_id, static_cast<int>(i), inserted.cached_blocks[i]);
    }
  }
  // The cache now also holds the blocks it did not have.
  for (std::size_t i = inserted.cached_blocks.size(); i < full_blocks; ++i) {
    cache_holds(blocks[i]);
    ++stats_.inserted_blocks;
  }
  cache_->lock(inserted.handle);
  const auto old = locks_.find(seq_id);
  if (old != locks_.end()) cache_->unlock(old->second);
  locks_[seq_id] = inserted.handle;
}

void PrefixCachingBlockManager::finish_sequence(int seq_id, std::span<const int> tokens) {
  publish(seq_id, tokens);
  release(seq_id);
}

void PrefixCachingBlockManager::release(int seq_id) {
  const auto lock = locks_.find(seq_id);
  if (lock != locks_.end()) {
    cache_->unlock(lock->second);
    locks_.erase(lock);
  }
  BlockManager::release(seq_id);
}

void PrefixCachingBlockManager::fork(int parent, int child) {
  BlockManager::fork(parent, child);
  const auto lock = locks_.find(parent);
  if (lock != locks_.end()) {
    cache_->lock(lock->second);
    locks_[child] = lock->second;
  }
}

std::vector<int> PrefixCachingBlockManager::invalidate(
    const std::function<std::vector<int>(PrefixCache&)>& forget) {
  std::vector<int> dropped = forget(*cache_);
  for (int block : dropped) cache_drops(block);
  stats_.dropped_blocks += static_cast<long long>(dropped.size());
  return dropped;
}

namespace {
// A pin is held like a sequence that never runs, under a negative id no
// scheduler uses: its table references the blocks and its lock protects them.
int pin_sequence(int pin_id) {
  return -1 - pin_id;
}
}  // namespace

int PrefixCachingBlockManager::pin(int pin_id, std::span<const int> tokens) {
  KVC_CHECK(pin_id >= 0, "prefix caching: pin id must be >= 0, got ", pin_id);
  const int seq = pin_sequence(pin_id);
  KVC_CHECK(table(seq) == nullptr, "prefix caching: pin ", pin_id, " is already held");
  const PrefixMatch match = cache_->match_prefix(tokens);
  if (match.matched_tokens == 0) return 0;
  cache_->lock(match.handle);
  locks_[seq] = match.handle;
  adopt(seq, match.blocks, match.matched_tokens);
  return match.matched_tokens;
}

void PrefixCachingBlockManager::unpin(int pin_id) {
  release(pin_sequence(pin_id));
}

std::vector<int> PrefixCachingBlockManager::reclaim(int num_blocks) {
  std::vector<int> evicted = cache_->evict(num_blocks);
  stats_.evicted_blocks += static_cast<long long>(evicted.size());
  return evicted;
}

void PrefixCachingBlockManager::check_invariants() const {
  BlockManager::check_invariants();
  cache_->check_invariants();
  std::vector<int> cached = cache_->held_blocks();
  std::sort(cached.begin(), cached.end());
  KVC_CHECK(std::adjacent_find(cached.begin(), cached.end()) == cached.end(),
            "prefix caching: the cache holds a block twice");
  int marked = 0;
  for (int b = 0; b < allocator().num_blocks(); ++b) {
    const bool in_cache = std::binary_search(cached.begin(), cached.end(), b);
    KVC_CHECK(in_cache == held_by_cache(b), "prefix caching: block ", b,
              in_cache ? " is in the cache but the pool does not count the cache's reference"
                       : " is counted as cached but the cache does not hold it");
    marked += in_cache ? 1 : 0;
  }
  KVC_CHECK(marked == static_cast<int>(cached.size()), "prefix caching: the cache holds block ids ",
            "outside the pool");
}

std::unique_ptr<ch04::PagedKVStrategy> make_prefix_cached_pool(const ModelConfig& config,
                                                               const DeviceContext& device,
                                                               std::string_view kind,
                                                               int num_blocks, int block_size) {
  return ch04::make_paged_cache(config, device,
                                std::make_unique<PrefixCachingBlockManager>(
                                    num_blocks, block_size, make_prefix_cache(kind, block_size)));
}

std::unique_ptr<KVStrategy> make_strategy(const ModelConfig& config, const DeviceContext& device,
                                          std::string_view kind, int block_size, int max_seqs) {
  KVC_CHECK(block_size >= 1, "prefix caching: block size must be positive, got ", block_size);
  const int num_blocks = checked_mul(max_seqs, ch04::blocks_needed(config.seq_len, block_size),
                                     "paged KV pool blocks");
  return make_prefix_cached_pool(config, device, kind, num_blocks, block_size);
}

}  // namespace kvc::ch05
