// The published shapes the KV calculator knows: model architectures and GPUs
// (number formats are common/kv_dtype.hpp's, the same ones the chapter 07
// pool stores). Plain data; lookups are case-insensitive and throw kvc::Error
// listing the known names on a miss.
#pragma once

#include <cstdint>
#include <span>
#include <string_view>

namespace kvc {

// Enough of a published model to size its KV cache and its weights.
struct ArchitectureSpec {
  std::string_view name;  // "llama-3-8b"
  int n_layers;
  int n_heads;     // query heads
  int n_kv_heads;  // key/value heads (< n_heads: grouped-query attention)
  int head_dim;
  std::int64_t n_parameters;  // all weights, for the weight-memory bill
  int max_context;            // tokens the model was trained for (the default context)
};

struct GpuSpec {
  std::string_view name;  // "H100-80G"
  double memory_gib;      // nominal capacity; the driver and CUDA context take some
};

std::span<const ArchitectureSpec> architecture_presets();
std::span<const GpuSpec> gpu_presets();

const ArchitectureSpec& find_architecture(std::string_view name);
const GpuSpec& find_gpu(std::string_view name);

}  // namespace kvc
