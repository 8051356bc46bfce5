// The engine on an NVIDIA GPU: the model's weights uploaded once (matrices in
// fp32, fp16 or bf16; norms in fp32), activations in device memory, and the
// same kvc::forward_pass as the CPU with the kernels of kernels/cuda/. Only
// the wanted logit rows come back to the host, for sampling.
#pragma once

#include <cstddef>
#include <vector>

#include "common/cuda/device_buffer.hpp"
#include "common/cuda/dtype.hpp"
#include "engine/cuda/cuda_context.hpp"
#include "engine/engine.hpp"

namespace kvc::cuda {

struct CudaLayerWeights {
  const float* rms_att;  // [dim]            fp32
  const void* wq;        // [dim][dim]       in CudaModel::dtype
  const void* wk;        // [kv_dim][dim]
  const void* wv;        // [kv_dim][dim]
  const void* wo;        // [dim][dim]
  const float* rms_ffn;  // [dim]            fp32
  const void* w1;        // [hidden][dim]
  const void* w2;        // [dim][hidden]
  const void* w3;        // [hidden][dim]
};

// A Model's weights in GPU memory, with kvc::Model's field names so that
// forward_pass reads either.
struct CudaModel {
  NumberFormat dtype = NumberFormat::fp32;
  std::vector<DeviceBuffer<std::byte>> buffers;  // owns every tensor below
  const void* token_embedding{};                 // [vocab][dim]
  std::vector<CudaLayerWeights> layers;
  const float* rms_final{};  // [dim]
  const void* classifier{};  // [vocab][dim]; == token_embedding when shared
};

CudaModel upload_model(const Model& model, NumberFormat dtype);

class CudaEngine final : public Engine {
 public:
  CudaEngine(const Model& model, NumberFormat weights_dtype);

  const ModelConfig& config() const override { return config_; }
  DeviceContext context() override { return {Device::kCuda, nullptr, &context_}; }
  float* forward(const Batch& batch, KVStrategy& kv) override;

 private:
  void reserve(int n_tokens, int n_logit_rows);

  ModelConfig config_;
  CudaContext context_;
  CudaModel weights_;
  int capacity_ = 0;  // tokens the buffers below hold
  DeviceBuffer<float> x_, xb_, xb2_, q_, k_, v_, attn_, hb_, hb2_, logits_;
  DeviceBuffer<int> tokens_, positions_;    // [n] the batch, uploaded
  DeviceBuffer<std::byte> matmul_scratch_;  // activations rounded to the weight dtype
  std::vector<float> host_logits_;
};

}  // namespace kvc::cuda
