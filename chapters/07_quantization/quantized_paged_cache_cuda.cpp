#include "chapters/07_quantization/quantized_paged_cache_cuda.hpp"

#include <algorithm>

#include "common/check.hpp"
#include "common/cuda/cuda_check.hpp"
#include "kernels/cuda/attention_paged_quant.hpp"
#include "kernels/cuda/kv_quantize.hpp"

namespace kvc::ch07 {
namespace {

// The most score-row bytes one decode launch may use: a long prefill attends in parts.
constexpr std::size_t kMaxWorkspaceBytes = std::size_t(256) << 20;

// Checked before anything is allocated on the device.
const KvDtype& gpu_format(const KvDtype& dtype) {
  KVC_CHECK(dtype.format == NumberFormat::int8 || dtype.format == NumberFormat::fp8_e4m3,
            "--kv-dtype ", dtype.name(), ": the GPU quantized pool stores int8 or fp8");
  return dtype;
}

}  // namespace

QuantizedPagedKVCacheCuda::QuantizedPagedKVCacheCuda(const ModelConfig& config,
                                                     const KvDtype& dtype, int num_blocks,
                                                     int block_size, cuda::CudaContext& context)
    // BlockManager checks the sizes before anything is allocated.
    : PagedKVStrategy(config, dtype, std::make_unique<ch04::BlockManager>(num_blocks, block_size)),
      dtype_(gpu_format(dtype)),
      n_heads_(config.n_heads),
      context_(context),
      k_codes_(codes_per_layer() * layout_.n_layers),
      v_codes_(k_codes_.size()),
      k_scales_(scales_per_layer() * layout_.n_layers),
      v_scales_(k_scales_.size()) {
  // Zeros, as the CPU cache starts: rows nobody wrote compare equal on both devices.
  for (auto* codes : {&k_codes_, &v_codes_}) {
    KVC_CUDA_CHECK(cudaMemsetAsync(codes->data(), 0, codes->bytes(), context_.stream()));
  }
  for (auto* scales : {&k_scales_, &v_scales_}) {
    KVC_CUDA_CHECK(cudaMemsetAsync(scales->data(), 0, scales->bytes(), context_.stream()));
  }
}

QuantizedPagedKVCacheCuda::HostLayer QuantizedPagedKVCacheCuda::download_layer(int layer) const {
  HostLayer host{std::vector<unsigned char>(codes_per_layer()),
                 std::vector<unsigned char>(codes_per_layer()),
                 std::vector<float>(scales_per_layer()), std::vector<float>(scales_per_layer())};
  const cudaStream_t stream = context_.stream();
  cuda::copy_to_host(host.k_codes.data(), k_codes_.data() + layer * codes_per_layer(),
                     codes_per_layer(), stream);
  cuda::copy_to_host(host.v_codes.data(), v_codes_.data() + layer * codes_per_layer(),
                     codes_per_layer(), stream);
  cuda::copy_to_host(host.k_scales.data(), k_scales_.data() + layer * scales_per_layer(),
                     scales_per_layer(), stream);
  cuda::copy_to_host(host.v_scales.data(), v_scales_.data() + layer * scales_per_layer(),
                     scales_per_layer(), stream);
  KVC_CUDA_CHECK(cudaStreamSynchronize(stream));
  return host;
}

void QuantizedPagedKVCacheCuda::copy_block(const ch04::BlockCopy& copy) {
  const std::size_t codes_per_block = layout_.values_per_block();
  const std::size_t scales_per_block = codes_per_block / layout_.head_dim;
  const auto copy_on_device = [&](auto& buffer, std::size_t per_layer, std::size_t per_block) {
    for (int l = 0; l < layout_.n_layers; ++l) {
      auto* layer = buffer.data() + l * per_layer;
      KVC_CUDA_CHECK(cudaMemcpyAsync(layer + copy.to * per_block, layer + copy.from * per_block,
                                     per_block * sizeof(*layer), cudaMemcpyDeviceToDevice,
                                     context_.stream()));
    }
  };
  copy_on_device(k_codes_, codes_per_layer(), codes_per_block);
  copy_on_device(v_codes_, codes_per_layer(), codes_per_block);
  // Copy-on-write copies the scales too: the codes mean nothing without them.
  copy_on_device(k_scales_, scales_per_layer(), scales_per_block);
  copy_on_device(v_scales_, scales_per_layer(), scales_per_block);
}

void QuantizedPagedKVCacheCuda::prepare(const Batch& batch, std::vector<std::int64_t> slots) {
  const cudaStream_t stream = context_.stream();
  slots_ = std::move(slots);
  tables_ = ch04::batch_block_tables(batch, *blocks_);
  context_lengths_.resize(batch.size());
  for (int i = 0; i < batch.size(); ++i) context_lengths_[i] = batch.positions[i] + 1;

  // Asynchronous: the host copies are members, alive until the next prepare.
  cuda::upload(d_slots_, slots_, stream);
  cuda::upload(d_block_tables_, tables_.tables, stream);
  cuda::upload(d_table_rows_, tables_.rows, stream);
  cuda::upload(d_context_lengths_, context_lengths_, stream);

  cuda::PagedDecodeShape one{.n_tokens = 1,
                             .block_size = layout_.block_size,
                             .max_blocks_per_seq = tables_.max_blocks,
                             .n_heads = n_heads_,
                             .n_kv_heads = layout_.n_kv_heads,
                             .head_dim = layout_.head_dim};
  const std::size_t per_token = cuda::attention_decode_paged_quant_workspace_bytes(one);
  tokens_per_launch_ = static_cast<int>(
      std::clamp<std::size_t>(kMaxWorkspaceBytes / per_token, 1, std::max(batch.size(), 1)));
  cuda::grow(workspace_, per_token * tokens_per_launch_);
}

void QuantizedPagedKVCacheCuda::attend(int layer, const Batch& batch, const float* q,
                                       const float* k, const float* v, float* out) {
  const cudaStream_t stream = context_.stream();
  const int n = batch.size();
  unsigned char* k_codes = k_codes_.data() + layer * codes_per_layer();
  unsigned char* v_codes = v_codes_.data() + layer * codes_per_layer();
  float* k_scales = k_scales_.data() + layer * scales_per_layer();
  float* v_scales = v_scales_.data() + layer * scales_per_layer();

  // Write every token's K, V first: a prefill token i attends to tokens < i of its chunk.
  cuda::kv_quantize_store(dtype_, k_codes, k_scales, v_codes, v_scales, k, v, d_slots_.data(), n,
                          layout_.n_kv_heads, layout_.head_dim, stream);

  // Every token, decode or prefill, as one decode query over its positions 0..pos.
  const std::size_t dim = std::size_t(n_heads_) * layout_.head_dim;
  for (int first = 0; first < n; first += tokens_per_launch_) {
    const cuda::PagedDecodeShape shape{.n_tokens = std::min(tokens_per_launch_, n - first),
                                       .block_size = layout_.block_size,
                                       .max_blocks_per_seq = tables_.max_blocks,
                                       .n_heads = n_heads_,
                                       .n_kv_heads = layout_.n_kv_heads,
                                       .head_dim = layout_.head_dim};
    cuda::attention_decode_paged_quant(
        dtype_, out + first * dim, q + first * dim, k_codes, k_scales, v_codes, v_scales,
        d_block_tables_.data(), d_table_rows_.data() + first, d_context_lengths_.data() + first,
        shape, workspace_.data(), stream);
  }
}

}  // namespace kvc::ch07
