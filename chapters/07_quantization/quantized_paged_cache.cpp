#include "chapters/07_quantization/quantized_paged_cache.hpp"

#include <algorithm>
#include <cstring>

#include "chapters/07_quantization/quantize_ops.hpp"
#include "common/thread_pool.hpp"
#include "kernels/cpu/kv_quant.hpp"
#include "kernels/cpu/ops.hpp"

#ifdef KVC_HAVE_CUDA
#include "chapters/04_paged_allocator/paged_kv_cache_cuda.hpp"
#include "chapters/07_quantization/quantized_paged_cache_cuda.hpp"
#endif

namespace kvc::ch07 {

namespace {

// One (token, KV head) row of head_dim values, in a layout without per-channel scales.
void quantize_row(unsigned char* codes, float* scales, const float* x, const KvDtype& dtype,
                  int head_dim) {
  switch (dtype.format) {
    case NumberFormat::fp32:
      std::memcpy(codes, x, head_dim * sizeof(float));
      return;
    case NumberFormat::fp16:
    case NumberFormat::bf16:
      for (int d = 0; d < head_dim; ++d) {
        const std::uint16_t bits =
            dtype.format == NumberFormat::fp16 ? fp16_from_float(x[d]) : bf16_from_float(x[d]);
        std::memcpy(codes + 2 * d, &bits, 2);
      }
      return;
    case NumberFormat::int8:
      *scales = quantize_int8_row(reinterpret_cast<std::int8_t*>(codes), x, head_dim);
      return;
    case NumberFormat::fp8_e4m3:
      *scales = cpu::quantize_fp8_row(codes, x, head_dim);
      return;
    case NumberFormat::int4:
      cpu::quantize_int4_groups(codes, scales, x, head_dim, dtype.group_size);
      return;
  }
}

// Scales of row r, KV head h within one block's scales, for a per-token layout.
std::size_t row_scale_offset(ScaleLayout layout, const KvDtype& dtype, int r, int kv_head,
                             int n_kv_heads, int head_dim) {
  const std::size_t row = std::size_t(r) * n_kv_heads + kv_head;
  if (layout == ScaleLayout::per_token_group) return row * (head_dim / dtype.group_size);
  return row;  // per_token_head (and unused for none)
}

}  // namespace

QuantizedPagedKVCache::QuantizedPagedKVCache(const ModelConfig& config, const KvDtype& dtype,
                                             int num_blocks, int block_size, ThreadPool* pool,
                                             const QuantOptions& options)
    : PagedKVStrategy(config, dtype, std::make_unique<ch04::BlockManager>(num_blocks, block_size)),
      config_(config),
      dtype_(dtype),
      pool_(pool),
      row_bytes_(kv_row_bytes(dtype, config.head_dim())),
      k_scales_per_block_(kv_scale_floats_per_block(dtype.key_scales, dtype, shape())),
      v_scales_per_block_(kv_scale_floats_per_block(dtype.value_scales, dtype, shape())),
      sink_tokens_(options.sink_tokens),
      hadamard_(options.hadamard),
      keys_before_rope_(options.keys_before_rope) {
  const int head_dim = layout_.head_dim;
  KVC_CHECK(!(hadamard_ && keys_before_rope_),
            "--kv-hadamard and --kv-keys-before-rope cannot be combined (the Hadamard rotation "
            "does not commute with RoPE's)");
  KVC_CHECK(!hadamard_ || (head_dim & (head_dim - 1)) == 0, "--kv-hadamard needs a power-of-two ",
            "head_dim, got ", head_dim);
  KVC_CHECK(sink_tokens_ >= 0 && sink_tokens_ <= block_size, "--kv-sinks ", sink_tokens_,
            " must be between 0 and the block size ", block_size);
  const std::size_t blocks = std::size_t(layout_.n_layers) * num_blocks;
  k_codes_.assign(blocks * block_size * layout_.n_kv_heads * row_bytes_, 0);
  v_codes_.assign(k_codes_.size(), 0);
  k_scales_.assign(blocks * k_scales_per_block_, 0.0f);
  v_scales_.assign(blocks * v_scales_per_block_, 0.0f);
}

KvPoolShape QuantizedPagedKVCache::shape() const {
  return layout_.shape();
}

std::size_t QuantizedPagedKVCache::kv_bytes_reserved() const {
  std::size_t fp32_floats = 0;
  for (const auto* rows : {&key_staging_, &sink_rows_}) {
    for (const auto& [block, floats] : *rows) fp32_floats += floats.size();
  }
  return blocks_->allocator().num_used() * layout_.kv_bytes_per_block() +
         fp32_floats * sizeof(float);
}

void QuantizedPagedKVCache::forget_free_blocks() {
  for (auto* rows : {&key_staging_, &sink_rows_}) {
    std::erase_if(
        *rows, [&](const auto& kept) { return blocks_->allocator().ref_count(kept.first) == 0; });
  }
}

void QuantizedPagedKVCache::prepare(const Batch& /*batch*/, std::vector<std::int64_t> slots) {
  slots_ = std::move(slots);
}

std::size_t QuantizedPagedKVCache::sink_floats_per_layer() const {
  return 2 * std::size_t(sink_tokens_) * layout_.kv_dim();
}

cpu::FullPrecisionRows QuantizedPagedKVCache::sink_rows(int layer, int first_block) const {
  const auto kept = sink_rows_.find(first_block);
  if (kept == sink_rows_.end()) return {};
  const float* k = kept->second.data() + layer * sink_floats_per_layer();
  return {k, k + std::size_t(sink_tokens_) * layout_.kv_dim(), sink_tokens_};
}

cpu::QuantPagedLayer QuantizedPagedKVCache::layer_view(int layer) const {
  const std::size_t codes_per_layer = k_codes_.size() / layout_.n_layers;
  const auto scales_at = [&](const KvFloats& scales, std::size_t per_block) {
    return scales.data() + std::size_t(layer) * layout_.num_blocks * per_block;
  };
  return {dtype_,
          {k_codes_.data() + layer * codes_per_layer, scales_at(k_scales_, k_scales_per_block_),
           dtype_.key_scales},
          {v_codes_.data() + layer * codes_per_layer, scales_at(v_scales_, v_scales_per_block_),
           dtype_.value_scales},
          layout_.block_size,
          layout_.n_kv_heads,
          layout_.head_dim,
          keys_before_rope_};
}

void QuantizedPagedKVCache::store(int layer, std::int64_t slot, int position, const float* k,
                                  const float* v) {
  const int block = static_cast<int>(slot / layout_.block_size);
  const int r = static_cast<int>(slot % layout_.block_size);
  const int heads = layout_.n_kv_heads;
  const int head_dim = layout_.head_dim;
  const std::size_t kv_dim = layout_.kv_dim();
  if (keys_before_rope_) {  // every key kept below (codes, window, sinks) is unrotated
    unrotated_k_.assign(k, k + kv_dim);
    cpu::rope_heads(unrotated_k_.data(), heads, head_dim, position, /*inverse=*/true);
    k = unrotated_k_.data();
  }
  if (position < sink_tokens_) {  // position < block_size: this is the sequence's first block
    std::vector<float>& sinks = sink_rows_[block];
    if ((position == 0 && layer == 0) || sinks.empty()) {
      sinks.assign(layout_.n_layers * sink_floats_per_layer(), 0.0f);
    }
    float* layer_sinks = sinks.data() + layer * sink_floats_per_layer();
    std::memcpy(layer_sinks + position * kv_dim, k, kv_dim * sizeof(float));
    std::memcpy(layer_sinks + (sink_tokens_ + position) * kv_dim, v, kv_dim * sizeof(float));
  }
  const std::size_t layer_block = std::size_t(layer) * layout_.num_blocks + block;
  unsigned char* k_block = &k_codes_[layer_block * layout_.block_size * heads * row_bytes_];
  unsigned char* v_block = &v_codes_[layer_block * layout_.block_size * heads * row_bytes_];
  float* k_scales = k_scales_.data() + layer_block * k_scales_per_block_;
  float* v_scales = v_scales_.data() + layer_block * v_scales_per_block_;

  for (int h = 0; h < heads; ++h) {
    const std::size_t row = std::size_t(r) * heads + h;
    quantize_row(v_block + row * row_bytes_,
                 v_scales + row_scale_offset(dtype_.value_scales, dtype_, r, h, heads, head_dim),
                 v + h * head_dim, dtype_, head_dim);
    if (dtype_.key_scales != ScaleLayout::per_channel) {
      quantize_row(k_block + row * row_bytes_,
                   k_scales + row_scale_offset(dtype_.key_scales, dtype_, r, h, heads, head_dim),
                   k + h * head_dim, dtype_, head_dim);
    }
  }
  if (dtype_.key_scales != ScaleLayout::per_channel) return;

  // KIVI keys: the block's rows 0..r share per-channel scales, so requantize them all.
  std::vector<float>& staging = key_staging_[block];
  if ((r == 0 && layer == 0) || staging.empty()) {
    staging.assign(layout_.n_layers * layout_.values_per_block(), 0.0f);
  }
  float* layer_keys = staging.data() + layer * layout_.values_per_block();
  std::memcpy(layer_keys + r * kv_dim, k, kv_dim * sizeof(float));
  for (int h = 0; h < heads; ++h) {
    quantize_int4_per_channel(k_block + h * row_bytes_, heads * row_bytes_,
                              k_scales + std::size_t(h) * head_dim, layer_keys + h * head_dim,
                              kv_dim, r + 1, head_dim);
  }
  // A full block's scales are final: the fp32 window moves on.
  if (r == layout_.block_size - 1 && layer == layout_.n_layers - 1) key_staging_.erase(block);
}

void QuantizedPagedKVCache::copy_block(const ch04::BlockCopy& copy) {
  const std::size_t codes_per_block =
      std::size_t(layout_.block_size) * layout_.n_kv_heads * row_bytes_;
  for (int l = 0; l < layout_.n_layers; ++l) {
    const std::size_t from = std::size_t(l) * layout_.num_blocks + copy.from;
    const std::size_t to = std::size_t(l) * layout_.num_blocks + copy.to;
    for (auto* codes : {&k_codes_, &v_codes_}) {
      std::memcpy(&(*codes)[to * codes_per_block], &(*codes)[from * codes_per_block],
                  codes_per_block);
    }
    // Copy-on-write copies the scales too: the codes mean nothing without them.
    // (fp32/fp16/bf16 have no scales: data() of an empty vector may be null.)
    std::copy_n(k_scales_.begin() + std::ptrdiff_t(from * k_scales_per_block_), k_scales_per_block_,
                k_scales_.begin() + std::ptrdiff_t(to * k_scales_per_block_));
    std::copy_n(v_scales_.begin() + std::ptrdiff_t(from * v_scales_per_block_), v_scales_per_block_,
                v_scales_.begin() + std::ptrdiff_t(to * v_scales_per_block_));
  }
  // ... and the block's fp32 rows: the KIVI window and the sinks.
  for (auto* rows : {&key_staging_, &sink_rows_}) {
    const auto kept = rows->find(copy.from);
    if (kept != rows->end()) {
      (*rows)[copy.to] = kept->second;
    } else {
      rows->erase(copy.to);
    }
  }
}

void QuantizedPagedKVCache::attend(int layer, const Batch& batch, const float* q, const float* k,
                                   const float* v, float* out) {
  const int n = batch.size();

  const std::size_t kv_dim = layout_.kv_dim();
  const std::size_t dim = config_.dim;
  const int head_dim = layout_.head_dim;
  if (hadamard_) {
    // q.k and p.v keep their values when q, k and v turn by the same orthogonal
    // H; the rotation spreads each outlier channel over the whole head first.
    //   rotated_: q [n][dim], then k, v [n][kv_dim]
    rotated_.assign(q, q + n * dim);
    rotated_.insert(rotated_.end(), k, k + n * kv_dim);
    rotated_.insert(rotated_.end(), v, v + n * kv_dim);
    for (std::size_t i = 0; i < rotated_.size(); i += head_dim) {
      cpu::hadamard_rotate(&rotated_[i], head_dim);
    }
    q = rotated_.data();
    k = q + n * dim;
    v = k + n * kv_dim;
  }

  // Write every token's K, V first: a prefill chunk's token i attends to tokens < i of its chunk.
  for (int i = 0; i < n; ++i) {
    store(layer, slots_[i], batch.positions[i], k + i * kv_dim, v + i * kv_dim);
  }

  const cpu::QuantPagedLayer pages = layer_view(layer);
  // fp32 keeps chapter 04's exact kernel (same tokens); the other formats run
  // the fast one, where fewer bytes become less time.
  const int variant = dtype_.format == NumberFormat::fp32 ? 0 : cpu::kFastPagedQuantDecode;
  parallel_for(pool_, n, [&](std::int64_t begin, std::int64_t end) {
    std::vector<float> scratch(cpu::attention_decode_paged_quant_scratch_floats(
        variant, config_.seq_len, config_.n_heads, pages));
    for (std::int64_t i = begin; i < end; ++i) {
      const std::vector<int>& table = blocks_->table(batch.seq_ids[i])->blocks;
      // With one token in the batch the loop runs inline, so the fast kernel
      // splits its context across the pool; inside a batch job it runs on this thread.
      cpu::attention_decode_paged_quant(variant, out + i * dim, q + i * dim, pages, table.data(),
                                        batch.positions[i] + 1, config_.n_heads, scratch.data(),
                                        sink_rows(layer, table[0]), pool_);
      // The output is a mix of rotated values: H is its own inverse.
      for (std::size_t h = 0; hadamard_ && h < dim; h += head_dim) {
        cpu::hadamard_rotate(out + i * dim + h, head_dim);
      }
    }
  });
}

void check_device_runs(Device device, const KvDtype& kv_dtype, const QuantOptions& options) {
  if (device != Device::kCuda) return;
  const NumberFormat format = kv_dtype.format;
  KVC_CHECK(format != NumberFormat::int4, "--kv-dtype ", kv_dtype.name(),
            " runs on the CPU only: on --device cuda the KV pool is fp32, fp16, bf16, int8 or fp8");
  KVC_CHECK(options.sink_tokens == 0 && !options.hadamard && !options.keys_before_rope,
            "--kv-sinks, --kv-hadamard and --kv-keys-before-rope run on the CPU only (use "
            "--device cpu)");
}

namespace {

// The float formats go to chapter 04's GPU pool, which stores its pages in
// fp32, fp16 or bf16; int8 and fp8 to the quantized one. The rest is refused
// before the device is touched, so every build says the same.
// (Without CUDA the pool's shape goes unused: the call is refused.)
std::unique_ptr<ch04::PagedKVStrategy> make_cuda_pool([[maybe_unused]] const ModelConfig& config,
                                                      const DeviceContext& device,
                                                      const KvDtype& kv_dtype,
                                                      [[maybe_unused]] int num_blocks,
                                                      [[maybe_unused]] int block_size,
                                                      const QuantOptions& options) {
  check_device_runs(device.device, kv_dtype, options);
#ifdef KVC_HAVE_CUDA
  KVC_CHECK(device.cuda != nullptr, "--device cuda: no CUDA context");
  if (kv_dtype.is_float()) {
    return std::make_unique<ch04::PagedKVCacheCuda>(config, num_blocks, block_size, *device.cuda,
                                                    kv_dtype.format);
  }
  return std::make_unique<QuantizedPagedKVCacheCuda>(config, kv_dtype, num_blocks, block_size,
                                                     *device.cuda);
#else
  throw Error("--kv-dtype " + kv_dtype.name() +
              " on --device cuda: this build has no CUDA support");
#endif
}

}  // namespace

std::unique_ptr<KVStrategy> make_strategy(const ModelConfig& config, const DeviceContext& device,
                                          const KvDtype& kv_dtype, int block_size, int max_seqs,
                                          const QuantOptions& options) {
  KVC_CHECK(block_size >= 1, "quantized KV cache: block size must be positive, got ", block_size);
  return make_paged_pool(config, device, kv_dtype,
                         max_seqs * ch04::blocks_needed(config.seq_len, block_size), block_size,
                         options);
}

std::unique_ptr<ch04::PagedKVStrategy> make_paged_pool(const ModelConfig& config,
                                                       const DeviceContext& device,
                                                       const KvDtype& kv_dtype, int num_blocks,
                                                       int block_size,
                                                       const QuantOptions& options) {
  if (device.device == Device::kCuda)
    return make_cuda_pool(config, device, kv_dtype, num_blocks, block_size, options);
  return std::make_unique<QuantizedPagedKVCache>(config, kv_dtype, num_blocks, block_size,
                                                 device.pool, options);
}

}  // namespace kvc::ch07
