// One thread per output element: embedding gather, rope, swiglu, residual add,
// and the KV-cache store. Grid-stride loops, so any size fits any grid.
#include <cmath>

#include "common/check.hpp"
#include "common/cuda/cuda_check.hpp"
#include "kernels/cuda/device_math.cuh"
#include "kernels/cuda/ops.hpp"

namespace kvc::cuda {
namespace {

constexpr int kThreads = 256;

template <typename T>
__global__ void embedding_kernel(float* out, const T* table, const int* tokens, int n, int dim) {
  const std::size_t total = static_cast<std::size_t>(n) * dim;
  for (std::size_t i = blockIdx.x * std::size_t{blockDim.x} + threadIdx.x; i < total;
       i += std::size_t{gridDim.x} * blockDim.x) {
    const std::size_t row = i / dim;
    const std::size_t col = i % dim;
    out[i] = to_float(table[static_cast<std::size_t>(tokens[row]) * dim + col]);
  }
}

// One thread per rotated pair: pairs of q come first, then pairs of k.
__global__ void rope_kernel(float* q, float* k, const int* positions, int n, int n_heads,
                            int n_kv_heads, int head_dim) {
  const int q_pairs = n_heads * head_dim / 2;
  const int k_pairs = n_kv_heads * head_dim / 2;
  const std::size_t total = static_cast<std::size_t>(n) * (q_pairs + k_pairs);
  for (std::size_t i = blockIdx.x * std::size_t{blockDim.x} + threadIdx.x; i < total;
       i += std::size_t{gridDim.x} * blockDim.x) {
    const int token = static_cast<int>(i / (q_pairs + k_pairs));
    int pair = static_cast<int>(i % (q_pairs + k_pairs));
    float* row = q + static_cast<std::size_t>(token) * q_pairs * 2;
    if (pair >= q_pairs) {
      pair -= q_pairs;
      row = k + static_cast<std::size_t>(token) * k_pairs * 2;
    }
    // As llama2.c: freq = 1 / 10000^(d / head_dim) for the pair's even index d within its
    // head. pow, sin and cos are evaluated in double and rounded once to float, which gives
    // the correctly rounded float the CPU's powf/cosf/sinf return (CUDA's float versions
    // may be 1-2 ulp off); the rotation is spelled with _rn ops so that nvcc does not fuse
    // it into FMAs the CPU does not use. So GPU rope equals the CPU's to the last bit, except
    // in the rare cases where rounding the double result differs from glibc's float result.
    const int d = (2 * pair) % head_dim;
    const float exponent = static_cast<float>(d) / static_cast<float>(head_dim);
    const float freq = 1.0f / static_cast<float>(pow(10000.0, static_cast<double>(exponent)));
    const float angle = static_cast<float>(positions[token]) * freq;
    const float cos_angle = static_cast<float>(cos(static_cast<double>(angle)));
    const float sin_angle = static_cast<float>(sin(static_cast<double>(angle)));
    const float v0 = row[2 * pair];
    const float v1 = row[2 * pair + 1];
    row[2 * pair] = __fsub_rn(__fmul_rn(v0, cos_angle), __fmul_rn(v1, sin_angle));
    row[2 * pair + 1] = __fadd_rn(__fmul_rn(v0, sin_angle), __fmul_rn(v1, cos_angle));
  }
}

__global__ void swiglu_kernel(float* gate, const float* up, std::size_t size) {
  for (std::size_t i = blockIdx.x * std::size_t{blockDim.x} + threadIdx.x; i < size;
       i += std::size_t{gridDim.x} * blockDim.x) {
    const float g = gate[i];
    gate[i] = g * (1.0f / (1.0f + expf(-g))) * up[i];
  }
}

__global__ void add_inplace_kernel(float* x, const float* y, std::size_t size) {
  for (std::size_t i = blockIdx.x * std::size_t{blockDim.x} + threadIdx.x; i < size;
       i += std::size_t{gridDim.x} * blockDim.x)
    x[i] += y[i];
}

template <typename T>
__global__ void kv_cache_store_kernel(T* k_cache, T* v_cache, const float* k, const float* v,
                                      const int* slots, const int* positions, int n, int max_ctx,
                                      int row_size) {
  const std::size_t total = static_cast<std::size_t>(n) * row_size;
  for (std::size_t i = blockIdx.x * std::size_t{blockDim.x} + threadIdx.x; i < total;
       i += std::size_t{gridDim.x} * blockDim.x) {
    const std::size_t token = i / row_size;
    const std::size_t col = i % row_size;
    const std::size_t cache_row =
        static_cast<std::size_t>(slots[token]) * max_ctx + positions[token];
    k_cache[cache_row * row_size + col] = from_float<T>(k[i]);
    v_cache[cache_row * row_size + col] = from_float<T>(v[i]);
  }
}

}  // namespace

void embedding(float* out, const void* table, NumberFormat table_dtype, const int* tokens, int n,
               int dim, cudaStream_t stream) {
  KVC_CHECK(n >= 0 && dim > 0, "cuda::embedding: bad shape n=", n, " dim=", dim);
  if (n == 0) return;
  dispatch_float_format(table_dtype, [&]<typename T>() {
    embedding_kernel<T><<<grid_for(std::size_t(n) * dim, kThreads), kThreads, 0, stream>>>(
        out, static_cast<const T*>(table), tokens, n, dim);
  });
  KVC_CUDA_CHECK_LAUNCH();
}

void rope(float* q, float* k, const int* positions, int n, int n_heads, int n_kv_heads,
          int head_dim, cudaStream_t stream) {
  KVC_CHECK(n >= 0 && n_heads > 0 && n_kv_heads > 0 && head_dim > 0 && head_dim % 2 == 0,
            "cuda::rope: bad shape n=", n, " n_heads=", n_heads, " n_kv_heads=", n_kv_heads,
            " head_dim=", head_dim, " (head_dim must be even)");
  if (n == 0) return;
  const std::size_t pairs = std::size_t(n) * (n_heads + n_kv_heads) * head_dim / 2;
  rope_kernel<<<grid_for(pairs, kThreads), kThreads, 0, stream>>>(q, k, positions, n, n_heads,
                                                                  n_kv_heads, head_dim);
  KVC_CUDA_CHECK_LAUNCH();
}

void swiglu(float* gate, const float* up, std::size_t size, cudaStream_t stream) {
  if (size == 0) return;
  swiglu_kernel<<<grid_for(size, kThreads), kThreads, 0, stream>>>(gate, up, size);
  KVC_CUDA_CHECK_LAUNCH();
}

void add_inplace(float* x, const float* y, std::size_t size, cudaStream_t stream) {
  if (size == 0) return;
  add_inplace_kernel<<<grid_for(size, kThreads), kThreads, 0, stream>>>(x, y, size);
  KVC_CUDA_CHECK_LAUNCH();
}

void kv_cache_store(void* k_cache, void* v_cache, NumberFormat cache_dtype, const float* k,
                    const float* v, const int* slots, const int* positions, int n, int max_ctx,
                    int n_kv_heads, int head_dim, cudaStream_t stream) {
  KVC_CHECK(n >= 0 && max_ctx > 0 && n_kv_heads > 0 && head_dim > 0,
            "cuda::kv_cache_store: bad shape n=", n, " max_ctx=", max_ctx,
            " n_kv_heads=", n_kv_heads, " head_dim=", head_dim);
  if (n == 0) return;
  const int row_size = n_kv_heads * head_dim;
  dispatch_float_format(cache_dtype, [&]<typename T>() {
    kv_cache_store_kernel<T>
        <<<grid_for(std::size_t(n) * row_size, kThreads), kThreads, 0, stream>>>(
            static_cast<T*>(k_cache), static_cast<T*>(v_cache), k, v, slots, positions, n, max_ctx,
            row_size);
  });
  KVC_CUDA_CHECK_LAUNCH();
}

}  // namespace kvc::cuda
