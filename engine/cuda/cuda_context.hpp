// One CUDA stream and its cuBLAS handle: every kernel of an engine, and of the
// KV strategy attached to it, is enqueued here, so work runs in order without
// host synchronization until the logits are needed.
#pragma once

#include <cuda_runtime_api.h>

#include "kernels/cuda/matmul.hpp"

namespace kvc::cuda {

class CudaContext {
 public:
  CudaContext();  // throws kvc::Error with the reason when no GPU is usable
  ~CudaContext();
  CudaContext(const CudaContext&) = delete;
  CudaContext& operator=(const CudaContext&) = delete;

  cudaStream_t stream() const { return stream_; }
  cublasHandle_t cublas() const { return cublas_.get(); }
  void synchronize() const;

 private:
  cudaStream_t stream_ = nullptr;
  CublasHandle cublas_;
};

}  // namespace kvc::cuda
