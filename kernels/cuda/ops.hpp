// CUDA kernels for the row and pointwise ops of the forward pass: the same ops
// as kernels/cpu/ops.hpp, on device pointers.
//
// Conventions shared by every function in kernels/cuda/:
//   - pointers are device pointers; activations are fp32, row-major, a batch of
//     n token rows, each row contiguous (as on the CPU);
//   - sizes are explicit; token positions, ids and lengths are device int arrays;
//   - work is enqueued on `stream` and returns at once: results are ready after
//     the stream is synchronized. A bad launch throws kvc::Error immediately.
#pragma once

#include <cstddef>

#include <cuda_runtime_api.h>

#include "common/number_format.hpp"

namespace kvc::cuda {

// out: [n][dim] = table[tokens[i]][:] for the n token ids in `tokens` (device ints).
// table: [vocab][dim] stored in `table_dtype`; out is fp32.
void embedding(float* out, const void* table, NumberFormat table_dtype, const int* tokens, int n,
               int dim, cudaStream_t stream);

// out[i][:] = weight * x[i][:] / sqrt(mean(x[i]^2) + 1e-5), for n rows of `dim`.
// out may equal x.
void rmsnorm(float* out, const float* x, const float* weight, int n, int dim, cudaStream_t stream);

// Rotary embedding in place, llama2.c's pairing: pairs (2j, 2j+1) within each head rotate by
// positions[i] * 10000^(-2j / head_dim).
// q: [n][n_heads * head_dim], k: [n][n_kv_heads * head_dim], positions: [n] (device ints).
void rope(float* q, float* k, const int* positions, int n, int n_heads, int n_kv_heads,
          int head_dim, cudaStream_t stream);

// gate[i] = silu(gate[i]) * up[i] for i < size.
void swiglu(float* gate, const float* up, std::size_t size, cudaStream_t stream);

// x[i] += y[i] for i < size.
void add_inplace(float* x, const float* y, std::size_t size, cudaStream_t stream);

// Numerically stable softmax in place over each of n rows of `size` values.
// x: [n][size].
void softmax(float* x, int n, int size, cudaStream_t stream);

// out[i] = index of the first maximum of row i (ties go to the lowest index, as on the CPU).
// x: [n][size], out: [n] (device ints).
void argmax(int* out, const float* x, int n, int size, cudaStream_t stream);

// Writes the k, v rows of n tokens into per-sequence contiguous caches, rounding to the
// cache dtype. Token i goes to sequence slots[i] at position positions[i].
//   k, v:             [n][n_kv_heads][head_dim] (fp32)
//   k_cache, v_cache: [n_slots][max_ctx][n_kv_heads][head_dim] in `cache_dtype`
//   slots, positions: [n] (device ints); 0 <= positions[i] < max_ctx
void kv_cache_store(void* k_cache, void* v_cache, NumberFormat cache_dtype, const float* k,
                    const float* v, const int* slots, const int* positions, int n, int max_ctx,
                    int n_kv_heads, int head_dim, cudaStream_t stream);

}  // namespace kvc::cuda
