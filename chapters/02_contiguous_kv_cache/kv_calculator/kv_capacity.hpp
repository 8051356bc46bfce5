// How many tokens and requests a KV cache can hold on one GPU.
//
// Every token a model has seen leaves one K and one V vector per layer and KV
// head in the cache, so
//   kv_bytes_per_token = 2 (K and V) x n_layers x n_kv_heads x head_dim x bytes_per_element
// plus, for a quantized format (chapter 07), its fp32 scales; a request of T
// tokens holds T times that. The formats and their scales are
// common/kv_dtype.hpp's, so these counts are what chapter 07's pool holds. What the GPU can give
// the cache is its memory minus the weights (n_parameters x bytes per weight) minus a reserve for
// activations and workspace.
#pragma once

#include <cstdint>
#include <vector>

#include <string>

#include "chapters/02_contiguous_kv_cache/kv_calculator/kv_presets.hpp"
#include "common/kv_dtype.hpp"

namespace kvc {

inline constexpr std::int64_t kBytesPerGiB = std::int64_t{1} << 30;
// 1 PiB: far beyond any one GPU, and small enough that every byte count fits in 64 bits.
inline constexpr double kMaxGpuGiB = 1 << 20;

// Tokens per block of a paged pool: int4's per-channel key scales cover one
// block, so its bytes per token depend on it (chapter 07's default).
inline constexpr int kDefaultKvBlockSize = 16;

// The format called `name` for this model's heads (parse_kv_dtype with its
// head_dim); throws kvc::Error for an unknown name.
KvDtype kv_dtype_for(const ArchitectureSpec& model, const std::string& name);

// kv_bytes_per_token of common/kv_dtype.hpp for the model's shape: K and V,
// codes and scales, every layer, on average over a block of block_size tokens.
double kv_bytes_per_token(const ArchitectureSpec& model, const KvDtype& kv_dtype,
                          int block_size = kDefaultKvBlockSize);

// Bytes of `tokens` tokens' K and V (rounded up to a whole byte).
// Throws kvc::Error when the count does not fit in 64 bits (as weight_bytes does).
std::int64_t kv_bytes_for_tokens(const ArchitectureSpec& model, const KvDtype& kv_dtype,
                                 std::int64_t tokens, int block_size = kDefaultKvBlockSize);

// n_parameters x bits() of the format (weights carry no scales here).
std::int64_t weight_bytes(const ArchitectureSpec& model, const KvDtype& weight_dtype);

// NEW (ch03): the same model with `n_kv_heads` K/V heads — MHA (n_heads), GQA
// (a divisor of n_heads) or MQA (1). The K and V projections shrink or grow
// with the head count, so the parameter count follows (Llama layout: each of
// wk, wv is [n_kv_heads * head_dim][n_heads * head_dim] per layer).
// Throws kvc::Error unless n_kv_heads divides n_heads.
ArchitectureSpec with_kv_heads(const ArchitectureSpec& model, int n_kv_heads);

// MHA, the model's own grouping, and MQA, without repeats, most KV heads first.
std::vector<int> attention_variants(const ArchitectureSpec& model);

struct CapacityQuery {
  ArchitectureSpec model;
  KvDtype kv_dtype;
  KvDtype weight_dtype;
  int block_size = kDefaultKvBlockSize;  // of the paged pool the KV bytes are counted for
  double gpu_memory_gib = 0;
  int context = 0;              // tokens reserved per request
  double reserve_fraction = 0;  // of GPU memory, kept for activations and workspace
};

struct CapacityPlan {
  std::int64_t gpu_bytes = 0;
  std::int64_t weight_bytes = 0;
  std::int64_t reserve_bytes = 0;
  std::int64_t kv_budget_bytes = 0;       // left for the cache; 0 when the weights do not fit
  std::int64_t kv_bytes_per_token = 0;    // rounded up to a whole byte
  std::int64_t kv_bytes_per_request = 0;  // one request of `context` tokens
  std::int64_t max_cached_tokens = 0;
  std::int64_t max_requests = 0;  // concurrent requests of `context` tokens
};

// Throws kvc::Error on memory outside (0, kMaxGpuGiB], a non-positive context,
// or a reserve outside [0, 1).
CapacityPlan plan_capacity(const CapacityQuery& query);

}  // namespace kvc
