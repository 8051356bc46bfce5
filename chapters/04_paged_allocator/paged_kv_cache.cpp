#include "chapters/04_paged_allocator/paged_kv_cache.hpp"

#include <algorithm>
#include <cstring>

#include "common/thread_pool.hpp"

namespace kvc::ch04 {

PagedKVCache::PagedKVCache(const ModelConfig& config, int num_blocks, int block_size,
                           ThreadPool* pool)
    : config_(config),
      layout_{config.n_layers, num_blocks, block_size, config.n_kv_heads, config.head_dim()},
      pool_(pool),
      allocator_(num_blocks) {
  KVC_CHECK(block_size >= 1 && block_size <= 256,
            "paged KV cache: block size must be in [1, 256], got ", block_size);
  k_pages_.assign(layout_.floats_per_layer() * layout_.n_layers, 0.0f);
  v_pages_.assign(k_pages_.size(), 0.0f);
}

std::int64_t PagedKVCache::place(int seq_id, int pos) {
  BlockTable& table = tables_[seq_id];
  KVC_CHECK(pos <= table.num_tokens, "paged KV cache: sequence ", seq_id, " position ", pos,
            " skips ahead of the ", table.num_tokens, " positions cached");
  const std::size_t logical = pos / layout_.block_size;
  if (logical == table.blocks.size()) {
    const auto block = allocator_.allocate();
    if (!block) {
      throw PoolExhausted("paged KV cache: all " + std::to_string(layout_.num_blocks) +
                          " blocks are in use (sequence " + std::to_string(seq_id) +
                          " needs one more for position " + std::to_string(pos) + ")");
    }
    table.blocks.push_back(*block);
  }
  int& block = table.blocks[logical];
  if (allocator_.ref_count(block) > 1) {
    // Copy-on-write: the block is shared with a fork; give this sequence its own copy.
    const auto copy = allocator_.allocate();
    if (!copy) {
      throw PoolExhausted("paged KV cache: no free block to copy shared block " +
                          std::to_string(block) + " for sequence " + std::to_string(seq_id));
    }
    copy_block(block, *copy);
    allocator_.free(block);
    block = *copy;
  }
  table.num_tokens = std::max(table.num_tokens, pos + 1);
  return slot_for(table, pos, layout_.block_size);
}

void PagedKVCache::copy_block(int from, int to) {
  const std::size_t block_floats = layout_.floats_per_block();
  for (int l = 0; l < layout_.n_layers; ++l) {
    const std::size_t layer_start = l * layout_.floats_per_layer();
    for (auto* pages : {&k_pages_, &v_pages_}) {
      std::memcpy(&(*pages)[layer_start + to * block_floats],
                  &(*pages)[layer_start + from * block_floats], block_floats * sizeof(float));
    }
  }
}

void PagedKVCache::attend(int layer, const Batch& batch, const float* q, const float* k,
                          const float* v, float* out) {
  const int n = batch.size();
  if (layer == 0) {
    slots_.resize(n);
    for (int i = 0; i < n; ++i) slots_[i] = place(batch.seq_ids[i], batch.positions[i]);
  }

  // Write every token's K, V first: a prefill chunk's token i attends to tokens < i of its chunk.
  const std::size_t kv_dim = layout_.kv_dim();
  float* layer_k = &k_pages_[layer * layout_.floats_per_layer()];
  float* layer_v = &v_pages_[layer * layout_.floats_per_layer()];
  for (int i = 0; i < n; ++i) {
    std::memcpy(layer_k + slots_[i] * kv_dim, k + i * kv_dim, kv_dim * sizeof(float));
    std::memcpy(layer_v + slots_[i] * kv_dim, v + i * kv_dim, kv_dim * sizeof(float));
  }

  const std::size_t dim = config_.dim;
  parallel_for(pool_, n, [&](std::int64_t begin, std::int64_t end) {
    std::vector<float> scratch(
        paged_decode_scratch_floats(layout_, config_.seq_len, config_.n_heads));
    for (std::int64_t i = begin; i < end; ++i) {
      paged_decode_attention(out + i * dim, q + i * dim, layout_, layer_k, layer_v,
                             tables_.at(batch.seq_ids[i]), batch.positions[i], config_.n_heads,
                             scratch.data());
    }
  });
}

std::size_t PagedKVCache::kv_bytes_reserved() const {
  return allocator_.num_used() * layout_.floats_per_block() * layout_.n_layers * 2 * sizeof(float);
}

std::size_t PagedKVCache::pool_bytes() const {
  return (k_pages_.size() + v_pages_.size()) * sizeof(float);
}

void PagedKVCache::release(int seq_id) {
  const auto it = tables_.find(seq_id);
  if (it == tables_.end()) return;
  for (int block : it->second.blocks) allocator_.free(block);
  tables_.erase(it);
}

void PagedKVCache::fork(int parent, int child) {
  KVC_CHECK(tables_.count(parent) == 1, "paged KV cache: cannot fork unknown sequence ", parent);
  KVC_CHECK(tables_.count(child) == 0, "paged KV cache: fork target ", child, " already exists");
  const BlockTable& source = tables_.at(parent);
  for (int block : source.blocks) allocator_.share(block);
  tables_[child] = source;
}

int PagedKVCache::blocks_to_append(int seq_id, int n_tokens) const {
  const BlockTable* t = table(seq_id);
  const int held = t ? static_cast<int>(t->blocks.size()) : 0;
  const int tokens = (t ? t->num_tokens : 0) + n_tokens;
  return std::max(0, blocks_needed(tokens, layout_.block_size) - held);
}

const BlockTable* PagedKVCache::table(int seq_id) const {
  const auto it = tables_.find(seq_id);
  return it == tables_.end() ? nullptr : &it->second;
}

void PagedKVCache::check_invariants() const {
  allocator_.check_invariants();
  std::vector<int> owners(layout_.num_blocks, 0);
  for (const auto& [seq, t] : tables_) {
    KVC_CHECK(static_cast<int>(t.blocks.size()) == blocks_needed(t.num_tokens, layout_.block_size),
              "paged KV cache: sequence ", seq, " holds ", t.blocks.size(), " blocks for ",
              t.num_tokens, " tokens");
    for (int block : t.blocks) ++owners.at(block);
  }
  for (int b = 0; b < layout_.num_blocks; ++b) {
    KVC_CHECK(owners[b] == allocator_.ref_count(b), "paged KV cache: block ", b, " is held by ",
              owners[b], " tables but has reference count ", allocator_.ref_count(b));
  }
}

std::unique_ptr<KVStrategy> make_strategy(const ModelConfig& config, const DeviceContext& device,
                                          int block_size, int max_seqs) {
  KVC_CHECK(device.device == Device::kCpu,
            "ch04: the paged cache runs on the CPU so far (its CUDA kernel is a later step)");
  KVC_CHECK(block_size >= 1, "paged KV cache: block size must be positive, got ", block_size);
  const int num_blocks = max_seqs * blocks_needed(config.seq_len, block_size);
  return std::make_unique<PagedKVCache>(config, num_blocks, block_size, device.pool);
}

}  // namespace kvc::ch04
