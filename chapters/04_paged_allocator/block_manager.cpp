#include "chapters/04_paged_allocator/block_manager.hpp"

#include <algorithm>
#include <string>
#include <unordered_map>
#include <vector>

namespace kvc::ch04 {

BlockManager::BlockManager(int num_blocks, int block_size)
    : block_size_(block_size), allocator_(num_blocks) {
  KVC_CHECK(block_size >= 1 && block_size <= 256,
            "paged KV cache: block size must be in [1, 256], got ", block_size);
  held_by_cache_.assign(static_cast<std::size_t>(num_blocks), false);
}

const BlockTable* BlockManager::table(int seq_id) const {
  const auto it = tables_.find(seq_id);
  return it == tables_.end() ? nullptr : &it->second;
}

void BlockManager::add_ref(int block) {
  if (held_by_cache(block) && allocator_.ref_count(block) == 1) --num_reclaimable_;
  allocator_.share(block);
}

void BlockManager::drop_ref(int block) {
  allocator_.free(block);
  if (held_by_cache(block) && allocator_.ref_count(block) == 1) ++num_reclaimable_;
}

void BlockManager::cache_holds(int block) {
  KVC_CHECK(!held_by_cache(block), "paged KV cache: block ", block, " is already cached");
  held_by_cache_[static_cast<std::size_t>(block)] = true;
  allocator_.share(block);  // the caller holds it too, so it is not reclaimable yet
}

void BlockManager::cache_drops(int block) {
  KVC_CHECK(held_by_cache(block), "paged KV cache: block ", block, " is not cached");
  if (allocator_.ref_count(block) == 1) --num_reclaimable_;
  held_by_cache_[static_cast<std::size_t>(block)] = false;
  allocator_.free(block);
}

std::optional<int> BlockManager::take_block() {
  // Never-cached (or long-evicted) blocks first; a cached block only when none is left.
  while (allocator_.num_free() == 0 && num_reclaimable_ > 0) {
    const std::vector<int> reclaimed = reclaim(1);
    KVC_CHECK(!reclaimed.empty(), "paged KV cache: ", num_reclaimable_,
              " blocks are reclaimable but the cache gave none back");
    for (int block : reclaimed) cache_drops(block);
  }
  return allocator_.allocate();
}

std::vector<int> BlockManager::reclaim(int /*num_blocks*/) {
  return {};
}

void BlockManager::adopt(int seq_id, std::span<const int> blocks, int num_tokens) {
  KVC_CHECK(tables_.count(seq_id) == 0, "paged KV cache: sequence ", seq_id, " already exists");
  KVC_CHECK(static_cast<std::size_t>(blocks_needed(num_tokens, block_size_)) == blocks.size(),
            "paged KV cache: ", blocks.size(), " blocks cannot hold exactly ", num_tokens,
            " tokens");
  for (int block : blocks) add_ref(block);
  tables_[seq_id] = BlockTable{{blocks.begin(), blocks.end()}, num_tokens};
}

void BlockManager::share_instead(int seq_id, int logical, int block) {
  int& held = tables_.at(seq_id).blocks.at(static_cast<std::size_t>(logical));
  add_ref(block);
  drop_ref(held);
  held = block;
}

Placement BlockManager::place(int seq_id, int pos) {
  const BlockTable* existing = table(seq_id);
  const int held = existing ? existing->num_tokens : 0;
  KVC_CHECK(pos == held, "paged KV cache: sequence ", seq_id, " position ", pos,
            " does not continue the ", held, " positions cached");
  Placement placement{};
  const std::size_t logical = pos / block_size_;
  const bool needs_block = !existing || logical == existing->blocks.size();
  if (needs_block) {
    const auto block = take_block();
    if (!block) {
      throw PoolExhausted("paged KV cache: all " + std::to_string(allocator_.num_blocks()) +
                          " blocks are in use (sequence " + std::to_string(seq_id) +
                          " needs one more for position " + std::to_string(pos) + ")");
    }
    tables_[seq_id].blocks.push_back(*block);
  }
  BlockTable& t = tables_.at(seq_id);
  int& block = t.blocks[logical];
  if (allocator_.ref_count(block) > 1) {
    // Copy-on-write: the block is shared with a fork; give this sequence its own copy.
    const auto copy = take_block();
    if (!copy) {
      throw PoolExhausted("paged KV cache: no free block to copy shared block " +
                          std::to_string(block) + " for sequence " + std::to_string(seq_id));
    }
    placement.copy = BlockCopy{block, *copy};
    drop_ref(block);
    block = *copy;
  }
  t.num_tokens = pos + 1;
  placement.slot = slot_for(t, pos, block_size_);
  return placement;
}

int BlockManager::blocks_to_append(std::span<const SequenceAppend> appends) const {
  int blocks = 0;
  std::unordered_map<int, int> writers;  // shared partial block -> sequences writing to it
  for (const SequenceAppend& a : appends) {
    blocks += blocks_to_append(a.seq_id, a.n_tokens);
    const BlockTable* t = table(a.seq_id);
    if (a.n_tokens > 0 && t && t->num_tokens % block_size_ != 0) {
      const int last = t->blocks.back();
      if (allocator_.ref_count(last) > 1) ++writers[last];
    }
  }
  for (const auto& [block, count] : writers) {
    if (count >= allocator_.ref_count(block)) --blocks;  // the last writer keeps the block
  }
  return blocks;
}

std::optional<Reservation> BlockManager::try_reserve(const Batch& batch) {
  // Check every position first, so that a bad batch changes nothing.
  std::map<int, int> held;  // sequence id -> positions after the batch's tokens so far
  for (int i = 0; i < batch.size(); ++i) {
    const int seq = batch.seq_ids[i];
    auto [it, fresh] = held.try_emplace(seq, 0);
    if (fresh && table(seq)) it->second = table(seq)->num_tokens;
    KVC_CHECK(batch.positions[i] == it->second, "paged KV cache: sequence ", seq, " position ",
              batch.positions[i], " does not continue the ", it->second, " positions cached");
    ++it->second;
  }
  std::vector<SequenceAppend> appends;
  for (const auto& [seq, end] : held) {
    appends.push_back({seq, end - (table(seq) ? table(seq)->num_tokens : 0)});
  }
  if (blocks_to_append(appends) > num_available()) return std::nullopt;

  Reservation reservation;
  reservation.slots.reserve(batch.size());
  for (int i = 0; i < batch.size(); ++i) {
    const Placement placement = place(batch.seq_ids[i], batch.positions[i]);
    if (placement.copy) reservation.copies.push_back(*placement.copy);
    reservation.slots.push_back(placement.slot);
  }
  return reservation;
}

void BlockManager::release(int seq_id) {
  const auto it = tables_.find(seq_id);
  if (it == tables_.end()) return;
  for (int block : it->second.blocks) drop_ref(block);
  tables_.erase(it);
}

int BlockManager::begin_sequence(int /*seq_id*/, std::span<const int> /*tokens*/) {
  return 0;
}

int BlockManager::cached_prefix_tokens(std::span<const int> /*tokens*/) const {
  return 0;
}

void BlockManager::publish(int /*seq_id*/, std::span<const int> /*tokens*/) {}

void BlockManager::finish_sequence(int seq_id, std::span<const int> /*tokens*/) {
  release(seq_id);
}

void BlockManager::fork(int parent, int child) {
  KVC_CHECK(tables_.count(parent) == 1, "paged KV cache: cannot fork unknown sequence ", parent);
  KVC_CHECK(tables_.count(child) == 0, "paged KV cache: fork target ", child, " already exists");
  const BlockTable& source = tables_.at(parent);
  for (int block : source.blocks) add_ref(block);
  tables_[child] = source;
}

void BlockManager::check_invariants() const {
  allocator_.check_invariants();
  std::vector<int> owners(allocator_.num_blocks(), 0);
  for (const auto& [seq, t] : tables_) {
    KVC_CHECK(static_cast<int>(t.blocks.size()) == blocks_needed(t.num_tokens, block_size_),
              "paged KV cache: sequence ", seq, " holds ", t.blocks.size(), " blocks for ",
              t.num_tokens, " tokens");
    for (int block : t.blocks) ++owners.at(block);
  }
  int reclaimable = 0;
  for (int b = 0; b < allocator_.num_blocks(); ++b) {
    const int cache_refs = held_by_cache(b) ? 1 : 0;
    KVC_CHECK(owners[b] + cache_refs == allocator_.ref_count(b), "paged KV cache: block ", b,
              " is held by ", owners[b], " tables and ", cache_refs,
              " cache but has reference count ", allocator_.ref_count(b));
    if (cache_refs == 1 && owners[b] == 0) ++reclaimable;
  }
  KVC_CHECK(reclaimable == num_reclaimable_, "paged KV cache: ", reclaimable,
            " blocks are held by the cache alone but ", num_reclaimable_, " are counted");
}

}  // namespace kvc::ch04
