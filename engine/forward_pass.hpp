// The Llama forward pass (llama2.c's forward(), batched), written ONCE for
// every device. A device supplies `ops` (its kernels) and `weights` (where its
// copy of the model lives); the algorithm below is the same on CPU and GPU.
//
// Requirements on Ops (all pointers are in the device's memory):
//   embed(x, table, batch)                    x[i] = table[batch.tokens[i]]
//   rmsnorm(out, x, weight, n, dim)           out may equal x
//   matmul(out, x, w, n, d_in, d_out)         out[n][d_out] = x[n][d_in] @ w^T
//   rope(q, k, batch)                         rotate by batch.positions
//   swiglu(gate, up, size), add_inplace(x, y, size)
//   gather_rows(dst, src, rows, dim)          dst[r] = src[rows[r]]
// Requirements on Weights: the field names of kvc::Model (token_embedding,
// layers[l].{rms_att, wq, wk, wv, wo, rms_ffn, w1, w2, w3}, rms_final, classifier).
#pragma once

#include "common/config.hpp"
#include "engine/batch.hpp"
#include "engine/kv_strategy.hpp"

namespace kvc {

// Activation buffers for a batch of n tokens, in the device's memory.
struct ActivationViews {
  float* x;       // [n][dim]        the residual stream
  float* xb;      // [n][dim]        normalized input of a sub-block
  float* xb2;     // [n][dim]        sub-block output before the residual add
  float* q;       // [n][dim]
  float* k;       // [n][kv_dim]
  float* v;       // [n][kv_dim]
  float* attn;    // [n][dim]        attention output, heads concatenated
  float* hb;      // [n][hidden_dim] SwiGLU gate
  float* hb2;     // [n][hidden_dim] SwiGLU up
  float* logits;  // [n_logit_rows][vocab_size]
};

template <class Ops, class Weights>
void forward_pass(Ops& ops, const ModelConfig& c, const Weights& w, const Batch& batch,
                  KVStrategy& kv, const ActivationViews& a) {
  const int n = batch.size();
  const int dim = c.dim, kv_dim = c.kv_dim(), hidden = c.hidden_dim;
  const std::size_t n_dim = static_cast<std::size_t>(n) * dim;

  kv.reserve(batch);  // all or nothing, before any work (see kv_strategy.hpp)
  ops.embed(a.x, w.token_embedding, batch);
  for (int l = 0; l < c.n_layers; ++l) {
    const auto& layer = w.layers[l];

    // Attention block: x += wo @ attention(rope(wq @ xb), rope(wk @ xb), wv @ xb).
    ops.rmsnorm(a.xb, a.x, layer.rms_att, n, dim);
    ops.matmul(a.q, a.xb, layer.wq, n, dim, dim);
    ops.matmul(a.k, a.xb, layer.wk, n, dim, kv_dim);
    ops.matmul(a.v, a.xb, layer.wv, n, dim, kv_dim);
    ops.rope(a.q, a.k, batch);
    kv.attend(l, batch, a.q, a.k, a.v, a.attn);  // THE SEAM: each chapter's KV strategy
    ops.matmul(a.xb2, a.attn, layer.wo, n, dim, dim);
    ops.add_inplace(a.x, a.xb2, n_dim);

    // Feed-forward block: x += w2 @ (silu(w1 @ xb) * (w3 @ xb)).
    ops.rmsnorm(a.xb, a.x, layer.rms_ffn, n, dim);
    ops.matmul(a.hb, a.xb, layer.w1, n, dim, hidden);
    ops.matmul(a.hb2, a.xb, layer.w3, n, dim, hidden);
    ops.swiglu(a.hb, a.hb2, static_cast<std::size_t>(n) * hidden);
    ops.matmul(a.xb2, a.hb, layer.w2, n, hidden, dim);
    ops.add_inplace(a.x, a.xb2, n_dim);
  }

  // Only the rows whose logits are wanted pay for the final norm and the
  // classifier, which at vocab 32000 costs more than a whole small layer.
  const int n_logits = static_cast<int>(batch.logit_rows.size());
  if (n_logits == 0) return;
  ops.gather_rows(a.xb, a.x, batch.logit_rows, dim);
  ops.rmsnorm(a.xb, a.xb, w.rms_final, n_logits, dim);
  ops.matmul(a.logits, a.xb, w.classifier, n_logits, dim, c.vocab_size);
}

}  // namespace kvc
