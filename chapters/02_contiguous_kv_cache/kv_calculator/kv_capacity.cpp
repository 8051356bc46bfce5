#include "chapters/02_contiguous_kv_cache/kv_calculator/kv_capacity.hpp"

#include <algorithm>

#include "common/check.hpp"
#include "common/checked_math.hpp"

namespace kvc {

namespace {

KvPoolShape pool_shape(const ArchitectureSpec& model, int block_size) {
  return KvPoolShape{model.n_layers, model.n_kv_heads, model.head_dim, block_size};
}

}  // namespace

KvDtype kv_dtype_for(const ArchitectureSpec& model, const std::string& name) {
  return parse_kv_dtype(name, model.head_dim);
}

double kv_bytes_per_token(const ArchitectureSpec& model, const KvDtype& kv_dtype, int block_size) {
  return kvc::kv_bytes_per_token(kv_dtype, pool_shape(model, block_size));
}

std::int64_t kv_bytes_for_tokens(const ArchitectureSpec& model, const KvDtype& kv_dtype,
                                 std::int64_t tokens, int block_size) {
  // tokens x (bytes per block / block_size), rounded up, in integers.
  const std::int64_t bytes_per_block = kv_bytes_per_block(kv_dtype, pool_shape(model, block_size));
  const std::int64_t scaled =
      checked_mul(tokens, bytes_per_block, "the KV cache's size in bytes x block size");
  return scaled / block_size + (scaled % block_size != 0);
}

std::int64_t weight_bytes(const ArchitectureSpec& model, const KvDtype& weight_dtype) {
  const std::int64_t bits =
      checked_mul(model.n_parameters, weight_dtype.bits(), "the weights' size in bits");
  return bits / 8 + (bits % 8 != 0);
}

ArchitectureSpec with_kv_heads(const ArchitectureSpec& model, int n_kv_heads) {
  KVC_CHECK(n_kv_heads > 0 && model.n_heads % n_kv_heads == 0, "--kv-heads ", n_kv_heads,
            " must divide the ", model.n_heads, " query heads of ", model.name);
  ArchitectureSpec variant = model;
  const std::int64_t dim = std::int64_t{model.n_heads} * model.head_dim;
  const std::int64_t kv_rows_added = std::int64_t{n_kv_heads - model.n_kv_heads} * model.head_dim;
  variant.n_parameters += 2 * model.n_layers * kv_rows_added * dim;  // wk and wv
  variant.n_kv_heads = n_kv_heads;
  return variant;
}

std::vector<int> attention_variants(const ArchitectureSpec& model) {
  std::vector<int> kv_heads = {model.n_heads, model.n_kv_heads, 1};
  kv_heads.erase(std::unique(kv_heads.begin(), kv_heads.end()), kv_heads.end());
  return kv_heads;
}

CapacityPlan plan_capacity(const CapacityQuery& query) {
  // Written so that NaN fails too; the bound keeps every byte count below 2^63.
  KVC_CHECK(query.gpu_memory_gib > 0 && query.gpu_memory_gib <= kMaxGpuGiB,
            "GPU memory must be more than 0 and at most ", kMaxGpuGiB, " GiB, got ",
            query.gpu_memory_gib);
  KVC_CHECK(query.context > 0, "context must be a positive number of tokens, got ", query.context);
  KVC_CHECK(query.reserve_fraction >= 0 && query.reserve_fraction < 1,
            "reserve must be a fraction in [0, 1), got ", query.reserve_fraction);

  CapacityPlan plan;
  plan.gpu_bytes =
      static_cast<std::int64_t>(query.gpu_memory_gib * static_cast<double>(kBytesPerGiB));
  plan.weight_bytes = weight_bytes(query.model, query.weight_dtype);
  plan.reserve_bytes = static_cast<std::int64_t>(query.reserve_fraction * plan.gpu_bytes);
  plan.kv_budget_bytes =
      std::max<std::int64_t>(0, plan.gpu_bytes - plan.weight_bytes - plan.reserve_bytes);
  plan.kv_bytes_per_token = kv_bytes_for_tokens(query.model, query.kv_dtype, 1, query.block_size);
  plan.kv_bytes_per_request =
      kv_bytes_for_tokens(query.model, query.kv_dtype, query.context, query.block_size);
  plan.max_cached_tokens = plan.kv_budget_bytes / plan.kv_bytes_per_token;
  plan.max_requests = plan.kv_budget_bytes / plan.kv_bytes_per_request;
  return plan;
}

}  // namespace kvc
