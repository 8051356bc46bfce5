// Chapter 01 on the GPU: still no cache. Each layer runs causal prefill
// attention over the whole sequence the batch carries, with the CUDA kernel
// (kernels/cuda/attention.hpp) in place of the CPU exercise.
#pragma once

#include "chapters/01_naive_attention/naive_attention.hpp"
#include "engine/cuda/cuda_context.hpp"

namespace kvc::ch01 {

class NaiveAttentionCuda final : public KVStrategy {
 public:
  NaiveAttentionCuda(const ModelConfig& config, cuda::CudaContext& context);

  std::string name() const override { return "01 naive (recompute), cuda"; }
  bool keeps_history() const override { return false; }
  void reserve(const Batch& batch) override { check_whole_history(batch); }
  void attend(int layer, const Batch& batch, const float* q, const float* k, const float* v,
              float* out) override;
  std::size_t kv_bytes_reserved() const override { return 0; }
  void release(int) override {}

 private:
  ModelConfig config_;
  cuda::CudaContext& context_;
};

}  // namespace kvc::ch01
