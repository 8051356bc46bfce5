#include "benchmarks/cpu/decode_inputs.hpp"

#include "common/kv_memory.hpp"

namespace kvc::bench {

DecodeInputs make_decode_inputs(int n_heads, int head_dim, std::size_t cache_floats) {
  // The cache on the pages the engine's caches use (common/kv_memory.hpp).
  DecodeInputs inputs{std::vector<float>(static_cast<std::size_t>(n_heads) * head_dim, 0.01f),
                      zeroed_kv_floats(cache_floats), zeroed_kv_floats(cache_floats)};
  for (std::size_t i = 0; i < cache_floats; ++i) {
    inputs.k_cache[i] = float(i % 97) * 1e-3f;
    inputs.v_cache[i] = float(i % 89) * 1e-3f;
  }
  return inputs;
}

}  // namespace kvc::bench
