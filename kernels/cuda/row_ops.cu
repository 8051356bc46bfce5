// One block per row: rmsnorm, softmax and argmax, each a block reduction
// followed by an elementwise pass over the row.
#include <cfloat>

#include "common/check.hpp"
#include "common/cuda/cuda_check.hpp"
#include "kernels/cuda/device_math.cuh"
#include "kernels/cuda/ops.hpp"

namespace kvc::cuda {
namespace {

constexpr int kThreads = 256;

__global__ void rmsnorm_kernel(float* out, const float* x, const float* weight, int dim) {
  const float* row = x + static_cast<std::size_t>(blockIdx.x) * dim;
  float* out_row = out + static_cast<std::size_t>(blockIdx.x) * dim;
  float sum_squares = 0.0f;
  for (int i = threadIdx.x; i < dim; i += blockDim.x) sum_squares += row[i] * row[i];
  sum_squares = block_sum(sum_squares);
  const float inv_rms = 1.0f / sqrtf(sum_squares / static_cast<float>(dim) + 1e-5f);
  for (int i = threadIdx.x; i < dim; i += blockDim.x) out_row[i] = weight[i] * (inv_rms * row[i]);
}

__global__ void softmax_kernel(float* x, int size) {
  float* row = x + static_cast<std::size_t>(blockIdx.x) * size;
  float max_value = -FLT_MAX;
  for (int i = threadIdx.x; i < size; i += blockDim.x) max_value = fmaxf(max_value, row[i]);
  max_value = block_max(max_value);
  float sum = 0.0f;
  for (int i = threadIdx.x; i < size; i += blockDim.x) {
    const float e = expf(row[i] - max_value);
    row[i] = e;
    sum += e;
  }
  const float inv_sum = 1.0f / block_sum(sum);
  for (int i = threadIdx.x; i < size; i += blockDim.x) row[i] *= inv_sum;
}

// (value, index) pairs reduced by "larger value wins; on equal values, the lower index".
struct Candidate {
  float value;
  int index;
};

__device__ __forceinline__ Candidate better(Candidate a, Candidate b) {
  if (b.value > a.value || (b.value == a.value && b.index < a.index)) return b;
  return a;
}

__device__ Candidate warp_best(Candidate c) {
  for (int offset = kWarpSize / 2; offset > 0; offset /= 2) {
    const Candidate other{__shfl_xor_sync(0xffffffffu, c.value, offset),
                          __shfl_xor_sync(0xffffffffu, c.index, offset)};
    c = better(c, other);
  }
  return c;
}

__global__ void argmax_kernel(int* out, const float* x, int size) {
  __shared__ Candidate warp_results[kWarpSize];
  const float* row = x + static_cast<std::size_t>(blockIdx.x) * size;
  // Each thread scans its strided slice in increasing index order, so on ties it keeps the first.
  Candidate best{-FLT_MAX, size};
  for (int i = threadIdx.x; i < size; i += blockDim.x) best = better(best, Candidate{row[i], i});
  best = warp_best(best);
  const int lane = threadIdx.x % kWarpSize;
  const int warp = threadIdx.x / kWarpSize;
  if (lane == 0) warp_results[warp] = best;
  __syncthreads();
  if (warp == 0) {
    best = lane < blockDim.x / kWarpSize ? warp_results[lane] : Candidate{-FLT_MAX, size};
    best = warp_best(best);
    if (lane == 0) out[blockIdx.x] = best.index < size ? best.index : 0;
  }
}

}  // namespace

void rmsnorm(float* out, const float* x, const float* weight, int n, int dim, cudaStream_t stream) {
  KVC_CHECK(n >= 0 && dim > 0, "cuda::rmsnorm: bad shape n=", n, " dim=", dim);
  if (n == 0) return;
  rmsnorm_kernel<<<n, kThreads, 0, stream>>>(out, x, weight, dim);
  KVC_CUDA_CHECK_LAUNCH();
}

void softmax(float* x, int n, int size, cudaStream_t stream) {
  KVC_CHECK(n >= 0 && size > 0, "cuda::softmax: bad shape n=", n, " size=", size);
  if (n == 0) return;
  softmax_kernel<<<n, kThreads, 0, stream>>>(x, size);
  KVC_CUDA_CHECK_LAUNCH();
}

void argmax(int* out, const float* x, int n, int size, cudaStream_t stream) {
  KVC_CHECK(n >= 0 && size > 0, "cuda::argmax: bad shape n=", n, " size=", size);
  if (n == 0) return;
  argmax_kernel<<<n, kThreads, 0, stream>>>(out, x, size);
  KVC_CUDA_CHECK_LAUNCH();
}

}  // namespace kvc::cuda
