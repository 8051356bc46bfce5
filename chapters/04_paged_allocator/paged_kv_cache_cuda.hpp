// Chapter 04 on the GPU: the same paged cache with its pages in device memory.
//
// The bookkeeping is the CPU cache's: a BlockManager on the host decides every
// token's slot and which shared block to copy. Once per forward (in reserve(),
// before it) the batch's slots, block tables and per-token context lengths go to
// the device, and every layer reuses them: one store kernel writes the layer's
// k, v through the slots, one paged decode kernel (kernels/cuda/attention_paged.cu)
// attends for the decode tokens of the whole batch through the tables, and a
// chunk past position 0 (chapter 05: the suffix after a prefix-cache hit) runs
// the paged prefill kernel (kernels/cuda/attention_paged_prefill.cu).
#pragma once

#include <cstdint>
#include <vector>

#include "chapters/04_paged_allocator/paged_kv_cache.hpp"
#include "common/cuda/device_buffer.hpp"
#include "engine/cuda/cuda_context.hpp"
#include "kernels/cuda/attention.hpp"

namespace kvc::ch04 {

class PagedKVCacheCuda final : public PagedKVStrategy {
 public:
  // A pool of num_blocks blocks of block_size tokens, its pages stored in `format` (fp32,
  // fp16 or bf16; the kernels read it and compute in fp32). Throws kvc::Error for a block
  // size outside [1, 256], fewer than one block, or a format that is not a float format.
  PagedKVCacheCuda(const ModelConfig& config, int num_blocks, int block_size,
                   cuda::CudaContext& context, NumberFormat format = NumberFormat::fp32);
  // The pool `blocks` describes, bookkept by it.
  PagedKVCacheCuda(const ModelConfig& config, std::unique_ptr<BlockManager> blocks,
                   cuda::CudaContext& context, NumberFormat format = NumberFormat::fp32);

  std::string name() const override {
    return blocks_->shares_prefixes() ? "05 paged cache + prefix cache, cuda"
                                      : "04 paged cache, cuda";
  }
  void attend(int layer, const Batch& batch, const float* q, const float* k, const float* v,
              float* out) override;

 private:
  // After reserve() placed the batch: upload the metadata every layer reads.
  void prepare(const Batch& batch, std::vector<std::int64_t> slots) override;
  void copy_block(const BlockCopy& copy) override;
  // Where `layer` starts in `pages`.
  std::byte* layer_pages(cuda::DeviceBuffer<std::byte>& pages, int layer) const;

  ModelConfig config_;
  cuda::CudaContext& context_;
  std::size_t value_bytes_;  // of layout_.dtype: 4 or 2
  // [n_layers][num_blocks][block_size][n_kv_heads][head_dim] in layout_.dtype
  cuda::DeviceBuffer<std::byte> k_pages_;
  cuda::DeviceBuffer<std::byte> v_pages_;  // same

  // The batch, as reserve() placed it. Spans of sequences starting at position 0 run the
  // causal prefill kernel on the batch's own k, v; later chunks of 2+ tokens the paged
  // prefill kernel; every other token (decode steps) runs paged decode.
  std::vector<SequenceSpan> prefill_spans_;
  struct Chunk {               // NEW (ch05)
    int first_token;           // its first row of q and out
    std::size_t table_offset;  // where its sequence's row starts in d_block_tables_
    cuda::PagedPrefillShape shape;
  };
  std::vector<Chunk> chunks_;
  bool has_decode_tokens_ = false;
  cuda::PagedDecodeShape decode_shape_;
  // Host copies of the metadata, then the device copies every layer reads.
  std::vector<std::int64_t> slots_;   // [n] pool row of each token
  BatchBlockTables tables_;           // the batch's block tables, one row per sequence
  std::vector<int> context_lengths_;  // [n] pos + 1, or 0 for a token of a prefill or chunk
  cuda::DeviceBuffer<std::int64_t> d_slots_;
  cuda::DeviceBuffer<int> d_block_tables_, d_table_rows_, d_context_lengths_;
  cuda::DeviceBuffer<std::byte> decode_workspace_;
};

}  // namespace kvc::ch04
