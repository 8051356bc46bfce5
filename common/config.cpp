#include "common/config.hpp"

#include <sstream>

#include "common/check.hpp"

namespace kvc {

std::int64_t ModelConfig::num_parameters() const {
  const std::int64_t d = dim, h = hidden_dim, L = n_layers, kv = kv_dim();
  const std::int64_t per_layer = 2 * d         // rms_att, rms_ffn
                                 + 2 * d * d   // wq, wo
                                 + 2 * d * kv  // wk, wv
                                 + 3 * d * h;  // w1, w2, w3
  const std::int64_t embedding = static_cast<std::int64_t>(vocab_size) * d;
  return embedding + L * per_layer + d + (shared_classifier ? 0 : embedding);
}

std::string describe(const ModelConfig& c) {
  std::ostringstream s;
  s << "dim " << c.dim << ", hidden " << c.hidden_dim << ", " << c.n_layers << " layers, "
    << c.n_heads << " heads, " << c.n_kv_heads << " kv heads, vocab " << c.vocab_size
    << ", seq_len " << c.seq_len;
  return s.str();
}

namespace {

void check_range(const char* name, int value, int limit) {
  KVC_CHECK(value >= 1 && value <= limit, "model config: ", name, " ", value, " is outside [1, ",
            limit, "]");
}

}  // namespace

void validate(const ModelConfig& c) {
  check_range("dim", c.dim, ModelLimits::kMaxDim);
  check_range("hidden_dim", c.hidden_dim, ModelLimits::kMaxHiddenDim);
  check_range("n_layers", c.n_layers, ModelLimits::kMaxLayers);
  check_range("n_heads", c.n_heads, ModelLimits::kMaxHeads);
  check_range("n_kv_heads", c.n_kv_heads, ModelLimits::kMaxHeads);
  check_range("vocab_size", c.vocab_size, ModelLimits::kMaxVocab);
  check_range("seq_len", c.seq_len, ModelLimits::kMaxSeqLen);
  KVC_CHECK(c.dim % c.n_heads == 0, "model config: dim ", c.dim, " is not divisible by n_heads ",
            c.n_heads);
  KVC_CHECK(c.n_heads % c.n_kv_heads == 0, "model config: n_heads ", c.n_heads,
            " is not a multiple of n_kv_heads ", c.n_kv_heads);
  KVC_CHECK(c.head_dim() % 2 == 0, "model config: head_dim ", c.head_dim(),
            " must be even for rotary embeddings");
}

}  // namespace kvc
