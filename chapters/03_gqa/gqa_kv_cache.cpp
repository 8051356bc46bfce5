#include "chapters/03_gqa/gqa_kv_cache.hpp"

#include <vector>

#include "common/check.hpp"
#include "common/thread_pool.hpp"
#include "kernels/cpu/ops.hpp"

#ifdef KVC_HAVE_CUDA
#include "chapters/02_contiguous_kv_cache/contiguous_kv_cache_cuda.hpp"
#endif

namespace kvc::ch03 {
namespace {

constexpr int kFastVariant = 4;  // cpu::attention_decode_variant's fast exact kernel

// Scratch one decode step of `kernel` needs over n_ctx positions.
std::size_t scratch_floats(DecodeKernel kernel, const ModelConfig& c, int n_ctx) {
  switch (kernel) {
    case DecodeKernel::kReread:
      return n_ctx;
    case DecodeKernel::kRepeatKv:
      return cpu::attention_decode_repeat_kv_scratch_floats(n_ctx, c.n_heads, c.head_dim());
    case DecodeKernel::kGrouped:
      return grouped_decode_scratch_floats(n_ctx, c.n_heads);
    case DecodeKernel::kFast:
      return cpu::attention_decode_scratch_floats(kFastVariant, n_ctx, c.n_heads, c.n_kv_heads,
                                                  c.head_dim());
  }
  KVC_FAIL("unknown decode kernel");
}

}  // namespace

DecodeKernel parse_decode_kernel(const std::string& name) {
  if (name == "reread") return DecodeKernel::kReread;
  if (name == "repeat") return DecodeKernel::kRepeatKv;
  if (name == "grouped") return DecodeKernel::kGrouped;
  if (name == "fast") return DecodeKernel::kFast;
  KVC_FAIL("unknown decode kernel '", name, "' (choose reread, repeat, grouped or fast)");
}

std::string to_string(DecodeKernel kernel) {
  switch (kernel) {
    case DecodeKernel::kReread:
      return "reread";
    case DecodeKernel::kRepeatKv:
      return "repeat";
    case DecodeKernel::kGrouped:
      return "grouped";
    case DecodeKernel::kFast:
      return "fast";
  }
  KVC_FAIL("unknown decode kernel");
}

GqaKVCache::GqaKVCache(const ModelConfig& config, int max_seqs, ThreadPool* pool,
                       DecodeKernel kernel)
    : config_(config), pool_(pool), kernel_(kernel), cache_(config, max_seqs, pool) {}

void GqaKVCache::attend(int layer, const Batch& batch, const float* q, const float* k,
                        const float* v, float* out) {
  cache_.store(layer, batch, k, v);
  const std::size_t dim = config_.dim;
  const ch02::CacheLayout& layout = cache_.layout();
  const std::size_t layer_start = ch02::cache_offset(layout, layer, 0);
  const int n_heads = config_.n_heads, n_kv_heads = config_.n_kv_heads;
  parallel_for(pool_, batch.size(), [&](std::int64_t begin, std::int64_t end) {
    std::vector<float> scratch(scratch_floats(kernel_, config_, config_.seq_len));
    for (std::int64_t i = begin; i < end; ++i) {
      const int seq = batch.seq_ids[i], pos = batch.positions[i];
      // The layer's rows 0..pos of this token's sequence: [pos + 1][n_kv_heads][head_dim].
      const float* keys = cache_.k_slot(seq) + layer_start;
      const float* values = cache_.v_slot(seq) + layer_start;
      switch (kernel_) {
        case DecodeKernel::kReread:
          ch02::decode_attention(out + i * dim, q + i * dim, layout, cache_.k_slot(seq),
                                 cache_.v_slot(seq), layer, pos, n_heads, scratch.data());
          break;
        case DecodeKernel::kRepeatKv:
          cpu::attention_decode_repeat_kv(out + i * dim, q + i * dim, keys, values, pos + 1,
                                          n_heads, n_kv_heads, layout.head_dim, scratch.data());
          break;
        case DecodeKernel::kGrouped:
          grouped_decode_attention(out + i * dim, q + i * dim, keys, values, pos + 1, n_heads,
                                   n_kv_heads, layout.head_dim, scratch.data());
          break;
        case DecodeKernel::kFast:
          // With one token in the batch the loop above runs inline, so the
          // kernel splits its own work across the pool; inside a batch job it
          // runs on this thread.
          cpu::attention_decode_variant(kFastVariant, out + i * dim, q + i * dim, keys, values,
                                        pos + 1, n_heads, n_kv_heads, layout.head_dim,
                                        scratch.data(), pool_);
          break;
      }
    }
  });
}

std::unique_ptr<KVStrategy> make_strategy(const ModelConfig& config, const DeviceContext& device,
                                          DecodeKernel kernel, int max_seqs) {
#ifdef KVC_HAVE_CUDA
  if (device.device == Device::kCuda) {
    KVC_CHECK(kernel != DecodeKernel::kRepeatKv && kernel != DecodeKernel::kFast, "ch03: the ",
              to_string(kernel),
              " kernel runs on the CPU only (on the GPU compare reread and grouped)");
    const int variant = kernel == DecodeKernel::kReread ? 1 : cuda::kBestVariant;
    return std::make_unique<ch02::ContiguousKVCacheCuda>(config, max_seqs, *device.cuda, variant);
  }
#endif
  KVC_CHECK(device.device == Device::kCpu, "ch03: this build has no CUDA support");
  return std::make_unique<GqaKVCache>(config, max_seqs, device.pool, kernel);
}

}  // namespace kvc::ch03
