#include "chapters/02_contiguous_kv_cache/kv_calculator/kv_presets.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <string>

#include "common/check.hpp"

namespace kvc {
namespace {

// From each model's paper / config.json (num_hidden_layers, num_attention_heads,
// num_key_value_heads, hidden_size / heads, max_position_embeddings).
constexpr std::array kArchitectures = {
    ArchitectureSpec{"llama-2-7b", 32, 32, 32, 128, 7'000'000'000, 4096},
    ArchitectureSpec{"llama-2-13b", 40, 40, 40, 128, 13'000'000'000, 4096},
    ArchitectureSpec{"llama-2-70b", 80, 64, 8, 128, 70'000'000'000, 4096},
    ArchitectureSpec{"llama-3-8b", 32, 32, 8, 128, 8'030'000'000, 8192},
    ArchitectureSpec{"llama-3-70b", 80, 64, 8, 128, 70'600'000'000, 8192},
    ArchitectureSpec{"mistral-7b", 32, 32, 8, 128, 7'240'000'000, 32768},
    // A mixture of experts: all 8 experts' weights sit in memory, but attention
    // (and so the KV cache) is shared, the same shape as Mistral-7B's.
    ArchitectureSpec{"mixtral-8x7b", 32, 32, 8, 128, 46'700'000'000, 32768},
};

constexpr std::array kGpus = {
    GpuSpec{"A100-40G", 40}, GpuSpec{"A100-80G", 80},    GpuSpec{"H100-80G", 80},
    GpuSpec{"L4-24G", 24},   GpuSpec{"RTX4090-24G", 24},
};

bool same_name(std::string_view a, std::string_view b) {
  return std::ranges::equal(a, b, [](char x, char y) {
    return std::tolower(static_cast<unsigned char>(x)) ==
           std::tolower(static_cast<unsigned char>(y));
  });
}

template <typename Spec, std::size_t N>
const Spec& find_by_name(const std::array<Spec, N>& specs, std::string_view name,
                         std::string_view what) {
  std::string known;
  for (const Spec& spec : specs) {
    if (same_name(spec.name, name)) return spec;
    known += known.empty() ? "" : ", ";
    known += spec.name;
  }
  KVC_FAIL("unknown ", what, " '", name, "' (known: ", known, ")");
}

}  // namespace

std::span<const ArchitectureSpec> architecture_presets() {
  return kArchitectures;
}
std::span<const GpuSpec> gpu_presets() {
  return kGpus;
}

const ArchitectureSpec& find_architecture(std::string_view name) {
  return find_by_name(kArchitectures, name, "model");
}
const GpuSpec& find_gpu(std::string_view name) {
  return find_by_name(kGpus, name, "GPU");
}

}  // namespace kvc
