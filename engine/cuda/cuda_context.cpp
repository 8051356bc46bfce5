#include "engine/cuda/cuda_context.hpp"

#include <cublas_v2.h>

#include "common/cuda/cuda_check.hpp"
#include "common/cuda/device.hpp"

namespace kvc::cuda {
namespace {

// Runs before any member is constructed, so a machine without a GPU gets the
// one-line reason instead of a cuBLAS failure.
cudaStream_t create_stream() {
  require_cuda_device();
  cudaStream_t stream = nullptr;
  KVC_CUDA_CHECK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
  return stream;
}

}  // namespace

CudaContext::CudaContext() : stream_(create_stream()) {
  KVC_CUBLAS_CHECK(cublasSetStream(cublas_.get(), stream_));
}

CudaContext::~CudaContext() {
  cudaStreamDestroy(stream_);
}

void CudaContext::synchronize() const {
  KVC_CUDA_CHECK(cudaStreamSynchronize(stream_));
}

}  // namespace kvc::cuda
