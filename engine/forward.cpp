#include "engine/forward.hpp"

#include <cstring>

#include "common/check.hpp"
#include "engine/forward_pass.hpp"
#include "kernels/cpu/ops.hpp"

namespace kvc {
namespace {

// The CPU's side of forward_pass: host pointers, kernels/cpu.
struct CpuOps {
  const ModelConfig& config;
  ThreadPool* pool;

  void embed(float* x, const float* table, const Batch& batch) const {
    const int dim = config.dim;
    for (int i = 0; i < batch.size(); ++i) {
      std::memcpy(x + static_cast<std::size_t>(i) * dim,
                  table + static_cast<std::size_t>(batch.tokens[i]) * dim, dim * sizeof(float));
    }
  }
  void rmsnorm(float* out, const float* x, const float* w, int n, int dim) const {
    cpu::rmsnorm(out, x, w, n, dim);
  }
  void matmul(float* out, const float* x, const float* w, int n, int d_in, int d_out) const {
    cpu::matmul(out, x, w, n, d_in, d_out, pool);
  }
  void rope(float* q, float* k, const Batch& batch) const {
    cpu::rope(q, k, batch.positions.data(), batch.size(), config.n_heads, config.n_kv_heads,
              config.head_dim());
  }
  void swiglu(float* gate, const float* up, std::size_t size) const { cpu::swiglu(gate, up, size); }
  void add_inplace(float* x, const float* y, std::size_t size) const {
    cpu::add_inplace(x, y, size);
  }
  void gather_rows(float* dst, const float* src, const std::vector<int>& rows, int dim) const {
    for (std::size_t r = 0; r < rows.size(); ++r) {
      std::memcpy(dst + r * dim, src + static_cast<std::size_t>(rows[r]) * dim,
                  dim * sizeof(float));
    }
  }
};

}  // namespace

void Activations::reserve(const ModelConfig& c, int n_tokens, int n_logit_rows) {
  if (n_tokens > capacity) {
    const std::size_t n = n_tokens;
    for (auto* buffer : {&x, &xb, &xb2, &q, &attn}) buffer->resize(n * c.dim);
    for (auto* buffer : {&k, &v}) buffer->resize(n * c.kv_dim());
    for (auto* buffer : {&hb, &hb2}) buffer->resize(n * c.hidden_dim);
    capacity = n_tokens;
  }
  logits.resize(static_cast<std::size_t>(n_logit_rows) * c.vocab_size);
}

void validate_batch(const ModelConfig& c, const Batch& batch) {
  KVC_CHECK(batch.size() > 0, "forward: empty batch");
  for (int i = 0; i < batch.size(); ++i) {
    KVC_CHECK(batch.tokens[i] >= 0 && batch.tokens[i] < c.vocab_size, "forward: token id ",
              batch.tokens[i], " outside the vocabulary of ", c.vocab_size);
    KVC_CHECK(batch.positions[i] >= 0 && batch.positions[i] < c.seq_len, "forward: position ",
              batch.positions[i], " outside the context of ", c.seq_len);
  }
  for (int row : batch.logit_rows) {
    KVC_CHECK(row >= 0 && row < batch.size(), "forward: logit row ", row, " outside the batch");
  }
}

void forward(const Model& model, const Batch& batch, KVStrategy& kv, Activations& acts,
             ThreadPool* pool) {
  validate_batch(model.config, batch);
  acts.reserve(model.config, batch.size(), static_cast<int>(batch.logit_rows.size()));
  CpuOps ops{model.config, pool};
  const ActivationViews views{acts.x.data(),   acts.xb.data(),    acts.xb2.data(),  acts.q.data(),
                              acts.k.data(),   acts.v.data(),     acts.attn.data(), acts.hb.data(),
                              acts.hb2.data(), acts.logits.data()};
  forward_pass(ops, model.config, model, batch, kv, views);
}

}  // namespace kvc
