// One dtype description for the whole course: chapter 02's calculator and
// chapter 07's running pool count the same bytes per cached token, for every
// format, on the real model's shape and on Llama-3-8B's heads.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "chapters/02_contiguous_kv_cache/kv_calculator/kv_capacity.hpp"
#include "chapters/07_quantization/quantized_paged_cache.hpp"
#include "common/kv_dtype.hpp"
#include "engine/batch.hpp"
#include "tests/support/test_support.hpp"

namespace kvc::ch07 {
namespace {

// The calculator's view of a model the engine runs.
ArchitectureSpec architecture_of(const ModelConfig& c) {
  return ArchitectureSpec{"model", c.n_layers, c.n_heads, c.n_kv_heads, c.head_dim(), 0, c.seq_len};
}

// A pool of `config`'s shape that has cached two full blocks of one sequence
// in every layer: what its kv_bytes_reserved() says.
std::size_t pool_bytes_for_two_blocks(const ModelConfig& config, const KvDtype& dtype,
                                      int block_size) {
  QuantizedPagedKVCache kv(config, dtype, /*num_blocks=*/3, block_size, nullptr);
  const int n = 2 * block_size;
  Batch batch;
  for (int p = 0; p < n; ++p) batch.add(0, 0, p, false);
  const std::vector<float> q(std::size_t(n) * config.dim, 0.5f);
  const std::vector<float> kv_rows(std::size_t(n) * config.kv_dim(), 0.25f);
  std::vector<float> out(q.size());
  kv.reserve(batch);
  for (int layer = 0; layer < config.n_layers; ++layer) {
    kv.attend(layer, batch, q.data(), kv_rows.data(), kv_rows.data(), out.data());
  }
  return kv.kv_bytes_reserved();
}

// Llama-3-8B's attention shape (32 query heads, 8 KV heads of 128), its layer
// stack cut to 2 so the prefill that fills the pool stays quick.
ModelConfig llama3_8b_config() {
  const ArchitectureSpec& a = find_architecture("llama-3-8b");
  ModelConfig c;
  c.n_layers = 2;
  c.n_heads = a.n_heads;
  c.n_kv_heads = a.n_kv_heads;
  c.dim = a.n_heads * a.head_dim;
  c.hidden_dim = 4;
  c.vocab_size = 4;
  c.seq_len = 256;
  return c;
}

TEST(Ch07Calculator, BytesPerTokenAreWhatThePoolHolds) {
  const std::vector<ModelConfig> shapes = {testing::load_real_model().model.config,
                                           llama3_8b_config()};
  for (const ModelConfig& config : shapes) {
    const ArchitectureSpec model = architecture_of(config);
    for (const char* name : kv_dtype_names()) {
      for (int block_size : {16, 64}) {
        const KvDtype dtype = kv_dtype_for(model, name);
        const std::size_t held = pool_bytes_for_two_blocks(config, dtype, block_size);
        const std::string what = std::string(name) + ", " + std::to_string(config.n_layers) +
                                 " layers, block " + std::to_string(block_size);
        EXPECT_EQ(held, std::size_t(kv_bytes_for_tokens(model, dtype, 2 * block_size, block_size)))
            << what;
        EXPECT_DOUBLE_EQ(double(held),
                         2 * block_size * kv_bytes_per_token(model, dtype, block_size))
            << what;
      }
    }
  }
}

}  // namespace
}  // namespace kvc::ch07
