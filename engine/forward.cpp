#include "engine/forward.hpp"

#include <cstring>

#include "common/check.hpp"
#include "kernels/cpu/ops.hpp"

namespace kvc {

void Activations::reserve(const ModelConfig& c, int n_tokens, int n_logit_rows) {
  if (n_tokens > capacity) {
    const std::size_t n = n_tokens;
    x.resize(n * c.dim);
    xb.resize(n * c.dim);
    xb2.resize(n * c.dim);
    q.resize(n * c.dim);
    k.resize(n * c.kv_dim());
    v.resize(n * c.kv_dim());
    attn.resize(n * c.dim);
    hb.resize(n * c.hidden_dim);
    hb2.resize(n * c.hidden_dim);
    capacity = n_tokens;
  }
  logits.resize(static_cast<std::size_t>(n_logit_rows) * c.vocab_size);
}

void forward(const Model& model, const Batch& batch, KVStrategy& kv, Activations& acts,
             ThreadPool* pool) {
  const ModelConfig& c = model.config;
  const int n = batch.size();
  KVC_CHECK(n > 0, "forward: empty batch");
  for (int i = 0; i < n; ++i) {
    KVC_CHECK(batch.tokens[i] >= 0 && batch.tokens[i] < c.vocab_size, "forward: token id ",
              batch.tokens[i], " outside the vocabulary of ", c.vocab_size);
    KVC_CHECK(batch.positions[i] >= 0 && batch.positions[i] < c.seq_len, "forward: position ",
              batch.positions[i], " outside the context of ", c.seq_len);
  }
  acts.reserve(c, n, static_cast<int>(batch.logit_rows.size()));
  const int dim = c.dim, kv_dim = c.kv_dim(), hidden = c.hidden_dim;

  // x[i] = token_embedding[tokens[i]]
  for (int i = 0; i < n; ++i) {
    std::memcpy(&acts.x[static_cast<std::size_t>(i) * dim],
                model.token_embedding + static_cast<std::size_t>(batch.tokens[i]) * dim,
                dim * sizeof(float));
  }

  for (int l = 0; l < c.n_layers; ++l) {
    const LayerWeights& w = model.layers[l];

    // Attention block: x += wo @ attention(rope(wq @ xb), rope(wk @ xb), wv @ xb).
    cpu::rmsnorm(acts.xb.data(), acts.x.data(), w.rms_att, n, dim);
    cpu::matmul(acts.q.data(), acts.xb.data(), w.wq, n, dim, dim, pool);
    cpu::matmul(acts.k.data(), acts.xb.data(), w.wk, n, dim, kv_dim, pool);
    cpu::matmul(acts.v.data(), acts.xb.data(), w.wv, n, dim, kv_dim, pool);
    cpu::rope(acts.q.data(), acts.k.data(), batch.positions.data(), n, c.n_heads, c.n_kv_heads,
              c.head_dim());
    kv.attend(l, batch, acts.q.data(), acts.k.data(), acts.v.data(), acts.attn.data());
    cpu::matmul(acts.xb2.data(), acts.attn.data(), w.wo, n, dim, dim, pool);
    cpu::add_inplace(acts.x.data(), acts.xb2.data(), static_cast<std::size_t>(n) * dim);

    // Feed-forward block: x += w2 @ (silu(w1 @ xb) * (w3 @ xb)).
    cpu::rmsnorm(acts.xb.data(), acts.x.data(), w.rms_ffn, n, dim);
    cpu::matmul(acts.hb.data(), acts.xb.data(), w.w1, n, dim, hidden, pool);
    cpu::matmul(acts.hb2.data(), acts.xb.data(), w.w3, n, dim, hidden, pool);
    cpu::swiglu(acts.hb.data(), acts.hb2.data(), static_cast<std::size_t>(n) * hidden);
    cpu::matmul(acts.xb2.data(), acts.hb.data(), w.w2, n, hidden, dim, pool);
    cpu::add_inplace(acts.x.data(), acts.xb2.data(), static_cast<std::size_t>(n) * dim);
  }

  // Only the rows whose logits are wanted pay for the final norm and the
  // classifier, which at vocab 32000 costs more than a whole small layer.
  const int n_logits = static_cast<int>(batch.logit_rows.size());
  if (n_logits == 0) return;
  for (int r = 0; r < n_logits; ++r) {
    const int row = batch.logit_rows[r];
    cpu::rmsnorm(&acts.xb[static_cast<std::size_t>(r) * dim],
                 &acts.x[static_cast<std::size_t>(row) * dim], model.rms_final, 1, dim);
  }
  cpu::matmul(acts.logits.data(), acts.xb.data(), model.classifier, n_logits, dim, c.vocab_size,
              pool);
}

}  // namespace kvc
