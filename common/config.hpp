// The model's shape, as read from a llama2.c checkpoint header.
#pragma once

#include <cstdint>
#include <string>

namespace kvc {

struct ModelConfig {
  int dim = 0;         // transformer width (= n_heads * head_dim)
  int hidden_dim = 0;  // SwiGLU inner width
  int n_layers = 0;
  int n_heads = 0;     // query heads
  int n_kv_heads = 0;  // key/value heads (< n_heads: grouped-query attention)
  int vocab_size = 0;
  int seq_len = 0;                // maximum context length
  bool shared_classifier = true;  // logits use the token embedding table

  int head_dim() const { return dim / n_heads; }
  int kv_dim() const { return n_kv_heads * head_dim(); }
  // Query heads served by each KV head (llama2.c's kv_mul).
  int kv_group_size() const { return n_heads / n_kv_heads; }

  // Parameter counts in floats, in llama2.c's layout order.
  std::int64_t num_parameters() const;
};

// "dim 288, hidden 768, 6 layers, 6 heads, 6 kv heads, vocab 32000, seq_len 256"
std::string describe(const ModelConfig& config);

// The largest shape a model may declare. The checkpoint loader, make_model and
// the synthetic generator all check them through validate(), so nothing writes
// a checkpoint that its own loader rejects. Each is far above any real model
// (Llama-3-405B: dim 16384, hidden 53248, 126 layers, 128 heads, vocab 128256,
// context 131072) and small enough that every tensor size fits in 64 bits.
struct ModelLimits {
  static constexpr int kMaxDim = 1 << 16;
  static constexpr int kMaxHiddenDim = 1 << 20;
  static constexpr int kMaxLayers = 1 << 12;
  static constexpr int kMaxHeads = 1 << 12;
  static constexpr int kMaxVocab = 1 << 22;
  static constexpr int kMaxSeqLen = 1 << 22;
};

// Throws kvc::Error naming the first problem: a size outside [1, its limit],
// dim not divisible by n_heads, n_heads not divisible by n_kv_heads, odd head_dim.
void validate(const ModelConfig& config);

}  // namespace kvc
