// Decode-attention inputs for the CPU benchmarks: one query token and a
// cache filled with small deterministic values, so every run reads the same
// numbers (the timings do not depend on them).
#pragma once

#include <cstddef>
#include <vector>

#include "common/kv_memory.hpp"

namespace kvc::bench {

struct DecodeInputs {
  std::vector<float> q;       // [n_heads][head_dim]
  KvFloats k_cache, v_cache;  // cache_floats each; callers choose the layout
};

DecodeInputs make_decode_inputs(int n_heads, int head_dim, std::size_t cache_floats);

}  // namespace kvc::bench
