#include "engine/cuda/cuda_engine.hpp"

#include <algorithm>

#include "common/check.hpp"
#include "common/cuda/cuda_check.hpp"
#include "engine/forward_pass.hpp"
#include "kernels/cuda/ops.hpp"

namespace kvc::cuda {
namespace {

// The GPU's side of forward_pass: device pointers, kernels/cuda, one stream.
struct CudaOps {
  const ModelConfig& config;
  const CudaContext& context;
  NumberFormat weights_dtype;
  const int* tokens;     // [n] device copy of batch.tokens
  const int* positions;  // [n] device copy of batch.positions
  void* matmul_scratch;

  void embed(float* x, const void* table, const Batch& batch) const {
    embedding(x, table, weights_dtype, tokens, batch.size(), config.dim, context.stream());
  }
  void rmsnorm(float* out, const float* x, const float* w, int n, int dim) const {
    cuda::rmsnorm(out, x, w, n, dim, context.stream());
  }
  void matmul(float* out, const float* x, const void* w, int n, int d_in, int d_out) const {
    cuda::matmul(context.cublas(), out, x, w, weights_dtype, n, d_in, d_out, matmul_scratch,
                 context.stream());
  }
  void rope(float* q, float* k, const Batch& batch) const {
    cuda::rope(q, k, positions, batch.size(), config.n_heads, config.n_kv_heads, config.head_dim(),
               context.stream());
  }
  void swiglu(float* gate, const float* up, std::size_t size) const {
    cuda::swiglu(gate, up, size, context.stream());
  }
  void add_inplace(float* x, const float* y, std::size_t size) const {
    cuda::add_inplace(x, y, size, context.stream());
  }
  void gather_rows(float* dst, const float* src, const std::vector<int>& rows, int dim) const {
    for (std::size_t r = 0; r < rows.size(); ++r) {
      KVC_CUDA_CHECK(cudaMemcpyAsync(dst + r * dim, src + static_cast<std::size_t>(rows[r]) * dim,
                                     dim * sizeof(float), cudaMemcpyDeviceToDevice,
                                     context.stream()));
    }
  }
};

}  // namespace

CudaModel upload_model(const Model& model, NumberFormat dtype) {
  const ModelConfig& c = model.config;
  CudaModel gpu;
  gpu.dtype = dtype;
  // Matrices in the chosen dtype; norm weights stay fp32 (tiny, and precision-sensitive).
  auto matrix = [&](const float* host, std::size_t count) -> const void* {
    gpu.buffers.push_back(upload_as(host, count, dtype));
    return gpu.buffers.back().data();
  };
  auto vector = [&](const float* host, std::size_t count) {
    gpu.buffers.push_back(upload_as(host, count, NumberFormat::fp32));
    return reinterpret_cast<const float*>(gpu.buffers.back().data());
  };
  const std::size_t d = c.dim, kv = c.kv_dim(), h = c.hidden_dim, vocab = c.vocab_size;
  gpu.token_embedding = matrix(model.token_embedding, vocab * d);
  for (const LayerWeights& w : model.layers) {
    gpu.layers.push_back({vector(w.rms_att, d), matrix(w.wq, d * d), matrix(w.wk, kv * d),
                          matrix(w.wv, kv * d), matrix(w.wo, d * d), vector(w.rms_ffn, d),
                          matrix(w.w1, h * d), matrix(w.w2, d * h), matrix(w.w3, h * d)});
  }
  gpu.rms_final = vector(model.rms_final, d);
  gpu.classifier = c.shared_classifier ? gpu.token_embedding : matrix(model.classifier, vocab * d);
  return gpu;
}

CudaEngine::CudaEngine(const Model& model, NumberFormat weights_dtype)
    : config_(model.config), weights_(upload_model(model, weights_dtype)) {}

void CudaEngine::reserve(int n_tokens, int n_logit_rows) {
  const ModelConfig& c = config_;
  if (n_tokens > capacity_) {
    const std::size_t n = n_tokens;
    for (auto* buffer : {&x_, &xb_, &xb2_, &q_, &attn_}) *buffer = DeviceBuffer<float>(n * c.dim);
    for (auto* buffer : {&k_, &v_}) *buffer = DeviceBuffer<float>(n * c.kv_dim());
    for (auto* buffer : {&hb_, &hb2_}) *buffer = DeviceBuffer<float>(n * c.hidden_dim);
    tokens_ = DeviceBuffer<int>(n);
    positions_ = DeviceBuffer<int>(n);
    matmul_scratch_ = DeviceBuffer<std::byte>(
        matmul_scratch_bytes(weights_.dtype, n_tokens, std::max(c.dim, c.hidden_dim)));
    capacity_ = n_tokens;
  }
  const std::size_t logit_floats = static_cast<std::size_t>(n_logit_rows) * c.vocab_size;
  if (logits_.size() < logit_floats) logits_ = DeviceBuffer<float>(logit_floats);
  host_logits_.resize(logit_floats);
}

float* CudaEngine::forward(const Batch& batch, KVStrategy& kv) {
  validate_batch(config_, batch);
  const int n = batch.size();
  reserve(n, static_cast<int>(batch.logit_rows.size()));
  const cudaStream_t stream = context_.stream();
  copy_to_device(tokens_.data(), batch.tokens.data(), n, stream);
  copy_to_device(positions_.data(), batch.positions.data(), n, stream);

  CudaOps ops{config_,        context_,          weights_.dtype,
              tokens_.data(), positions_.data(), matmul_scratch_.data()};
  const ActivationViews views{x_.data(), xb_.data(),   xb2_.data(), q_.data(),   k_.data(),
                              v_.data(), attn_.data(), hb_.data(),  hb2_.data(), logits_.data()};
  forward_pass(ops, config_, weights_, batch, kv, views);

  copy_to_host(host_logits_.data(), logits_.data(), host_logits_.size(), stream);
  context_.synchronize();
  return host_logits_.data();
}

}  // namespace kvc::cuda
