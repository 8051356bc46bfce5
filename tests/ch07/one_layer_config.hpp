// The shape chapter 07's kernel tests use: one layer, 8 query heads of 64
// channels, 2 KV heads (GQA groups of 4), a 256-position context.
#pragma once

#include "common/config.hpp"

namespace kvc::testing {

inline ModelConfig one_layer_config() {
  ModelConfig c;
  c.dim = 8 * 64;
  c.hidden_dim = 4;
  c.n_layers = 1;
  c.n_heads = 8;
  c.n_kv_heads = 2;
  c.vocab_size = 4;
  c.seq_len = 256;
  return c;
}

}  // namespace kvc::testing
