#include "chapters/04_paged_allocator/paged_kv_cache_cuda.hpp"

#include <algorithm>

#include "common/check.hpp"
#include "common/cuda/cuda_check.hpp"

namespace kvc::ch04 {
namespace {

// Bytes of one value of the pages: a float format's (chapter 07's pool keeps scaled codes).
std::size_t page_value_bytes(NumberFormat format) {
  KVC_CHECK(is_float_format(format), "the GPU paged pool stores fp32, fp16 or bf16, not ",
            format_name(format), " (chapter 07's quantized pool keeps codes with scales)");
  return float_format_bytes(format);
}

}  // namespace

PagedKVCacheCuda::PagedKVCacheCuda(const ModelConfig& config, int num_blocks, int block_size,
                                   cuda::CudaContext& context, NumberFormat format)
    // BlockManager checks the sizes before anything is allocated.
    : PagedKVCacheCuda(config, std::make_unique<BlockManager>(num_blocks, block_size), context,
                       format) {}

PagedKVCacheCuda::PagedKVCacheCuda(const ModelConfig& config, std::unique_ptr<BlockManager> blocks,
                                   cuda::CudaContext& context, NumberFormat format)
    : PagedKVStrategy(config, parse_kv_dtype(format_name(format), config.head_dim()),
                      std::move(blocks)),
      config_(config),
      context_(context),
      value_bytes_(page_value_bytes(format)),  // checked before any allocation
      k_pages_(layout_.values_per_layer() * layout_.n_layers * value_bytes_),
      v_pages_(k_pages_.size()) {}

std::byte* PagedKVCacheCuda::layer_pages(cuda::DeviceBuffer<std::byte>& pages, int layer) const {
  return pages.data() + layout_.block_offset(layer, 0) * value_bytes_;
}

void PagedKVCacheCuda::copy_block(const BlockCopy& copy) {
  for (int l = 0; l < layout_.n_layers; ++l) {
    for (cuda::DeviceBuffer<std::byte>* pages : {&k_pages_, &v_pages_}) {
      KVC_CUDA_CHECK(cudaMemcpyAsync(
          pages->data() + layout_.block_offset(l, copy.to) * value_bytes_,
          pages->data() + layout_.block_offset(l, copy.from) * value_bytes_,
          layout_.values_per_block() * value_bytes_, cudaMemcpyDeviceToDevice, context_.stream()));
    }
  }
}

void PagedKVCacheCuda::prepare(const Batch& batch, std::vector<std::int64_t> slots) {
  const int n = batch.size();
  const cudaStream_t stream = context_.stream();
  slots_ = std::move(slots);

  // reserve() checked that every sequence's positions continue what it holds,
  // so a span starting at 0 is a whole prompt in order, and any span is consecutive.
  prefill_spans_.clear();
  std::vector<SequenceSpan> later_chunks;  // NEW (ch05): 2+ tokens from a position past 0
  for (const SequenceSpan& span : sequence_spans(batch)) {
    if (batch.positions[span.begin] == 0)
      prefill_spans_.push_back(span);
    else if (span.end - span.begin >= 2)
      later_chunks.push_back(span);
  }

  tables_ = batch_block_tables(batch, *blocks_);
  const int max_blocks = tables_.max_blocks;

  // NEW (ch05): a later chunk (the suffix after a prefix-cache hit, or the next chunk of a
  // long prompt) runs the paged prefill kernel over its own table row, so the cached
  // context is read once per tile of queries instead of once per token.
  chunks_.clear();
  for (const SequenceSpan& span : later_chunks) {
    const std::size_t row = tables_.rows[span.begin];
    chunks_.push_back({.first_token = span.begin,
                       .table_offset = row * max_blocks,
                       .shape = {.n_tokens = span.end - span.begin,
                                 .start = batch.positions[span.begin],
                                 .block_size = layout_.block_size,
                                 .n_heads = config_.n_heads,
                                 .n_kv_heads = config_.n_kv_heads,
                                 .head_dim = config_.head_dim(),
                                 .cache_dtype = layout_.dtype.format}});
  }

  // Context lengths for paged decode: 0 skips the tokens the prefill kernels serve.
  context_lengths_.resize(n);
  for (int i = 0; i < n; ++i) context_lengths_[i] = batch.positions[i] + 1;
  for (const SequenceSpan& span : prefill_spans_) {
    std::fill(context_lengths_.begin() + span.begin, context_lengths_.begin() + span.end, 0);
  }
  for (const SequenceSpan& span : later_chunks) {
    std::fill(context_lengths_.begin() + span.begin, context_lengths_.begin() + span.end, 0);
  }
  const int decode_tokens = static_cast<int>(
      std::count_if(context_lengths_.begin(), context_lengths_.end(), [](int l) { return l > 0; }));
  has_decode_tokens_ = decode_tokens > 0;

  cuda::upload(d_slots_, slots_, stream);
  if (!has_decode_tokens_ && chunks_.empty()) return;
  cuda::upload(d_block_tables_, tables_.tables, stream);
  if (!has_decode_tokens_) return;
  cuda::upload(d_table_rows_, tables_.rows, stream);
  cuda::upload(d_context_lengths_, context_lengths_, stream);
  decode_shape_ = {.n_tokens = n,
                   .block_size = layout_.block_size,
                   .max_blocks_per_seq = max_blocks,
                   .n_heads = config_.n_heads,
                   .n_kv_heads = config_.n_kv_heads,
                   .head_dim = config_.head_dim(),
                   .cache_dtype = layout_.dtype.format,
                   // NEW (ch05): v1's score rows for the decode tokens only, not the chunks'.
                   .attending_tokens = decode_tokens};
  cuda::grow(decode_workspace_,
             cuda::attention_decode_paged_workspace_bytes(cuda::kBestVariant, decode_shape_));
}

void PagedKVCacheCuda::attend(int layer, const Batch& batch, const float* q, const float* k,
                              const float* v, float* out) {
  const cudaStream_t stream = context_.stream();
  const int head_dim = config_.head_dim();

  // Write every token's K, V first: a later chunk's token i attends to tokens < i of its chunk.
  std::byte* layer_k = layer_pages(k_pages_, layer);
  std::byte* layer_v = layer_pages(v_pages_, layer);
  cuda::paged_kv_store(layer_k, layer_v, layout_.dtype.format, k, v, d_slots_.data(), batch.size(),
                       config_.n_kv_heads, head_dim, stream);

  // Prefill from the start: the batch itself holds the whole history, so the causal
  // kernel runs on it directly (compute-bound, like any GEMM-shaped work).
  const std::size_t dim = config_.dim, kv_dim = config_.kv_dim();
  for (const SequenceSpan& span : prefill_spans_) {
    const std::size_t first = span.begin;
    cuda::attention_prefill_causal(cuda::kBestVariant, out + first * dim, q + first * dim,
                                   k + first * kv_dim, v + first * kv_dim, span.end - span.begin,
                                   config_.n_heads, config_.n_kv_heads, head_dim, stream);
  }
  // NEW (ch05): later chunks, through their tables (their own k, v were stored above).
  for (const Chunk& chunk : chunks_) {
    const std::size_t first = chunk.first_token;
    cuda::attention_prefill_paged(cuda::kBestVariant, out + first * dim, q + first * dim, layer_k,
                                  layer_v, d_block_tables_.data() + chunk.table_offset, chunk.shape,
                                  stream);
  }
  // Every other token (decode steps), in one launch, through the block tables.
  if (has_decode_tokens_) {
    cuda::attention_decode_paged(
        cuda::kBestVariant, out, q, layer_k, layer_v, d_block_tables_.data(), d_table_rows_.data(),
        d_context_lengths_.data(), decode_shape_, decode_workspace_.data(), stream);
  }
}

}  // namespace kvc::ch04
