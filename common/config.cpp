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

void validate(const ModelConfig& c) {
  KVC_CHECK(c.dim > 0 && c.hidden_dim > 0 && c.n_layers > 0 && c.n_heads > 0 && c.n_kv_heads > 0 &&
                c.vocab_size > 0 && c.seq_len > 0,
            "model config has a non-positive size: dim=", c.dim, " hidden_dim=", c.hidden_dim,
            " n_layers=", c.n_layers, " n_heads=", c.n_heads, " n_kv_heads=", c.n_kv_heads,
            " vocab_size=", c.vocab_size, " seq_len=", c.seq_len);
  KVC_CHECK(c.dim % c.n_heads == 0, "model config: dim ", c.dim, " is not divisible by n_heads ",
            c.n_heads);
  KVC_CHECK(c.n_heads % c.n_kv_heads == 0, "model config: n_heads ", c.n_heads,
            " is not a multiple of n_kv_heads ", c.n_kv_heads);
  KVC_CHECK(c.head_dim() % 2 == 0, "model config: head_dim ", c.head_dim(),
            " must be even for rotary embeddings");
}

}  // namespace kvc
