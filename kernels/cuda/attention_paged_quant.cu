// Quantized paged decode attention (see attention_paged_quant.hpp).
//
// Tests: build/bin/kvc_cuda_tests --gtest_filter='*PagedQuant*'
// Compiled in CI; not yet run on a GPU when this was written.
#include <cfloat>
#include <cstdint>
#include <string>

#include <cuda_fp8.h>

#include "common/check.hpp"
#include "common/cuda/cuda_check.hpp"
#include "kernels/cuda/attention_paged_quant.hpp"

namespace kvc::cuda {
namespace {

constexpr int kThreads = 256;

struct QuantParams {
  float* out;
  const float* q;
  const unsigned char* k_codes;
  const float* k_scales;
  const unsigned char* v_codes;
  const float* v_scales;
  const int* block_tables;
  const int* table_rows;
  const int* context_lengths;
  int block_size;
  int max_blocks_per_seq;
  int n_heads;
  int n_kv_heads;
  int head_dim;
};

// One code as a float: the format's loader, the only thing a format adds.
template <KvFormat kFormat>
__device__ __forceinline__ float load_code(unsigned char code) {
  if constexpr (kFormat == KvFormat::int8) {
    return static_cast<float>(static_cast<std::int8_t>(code));
  } else {
    __nv_fp8_e4m3 value;
    value.__x = code;
    return static_cast<float>(value);
  }
}

// max (kMax) or sum over the block's threads; every thread gets the result.
template <bool kMax>
__device__ float block_reduce(float value, float* shared) {
  for (int offset = 16; offset > 0; offset /= 2) {
    const float other = __shfl_xor_sync(0xffffffffu, value, offset);
    value = kMax ? fmaxf(value, other) : value + other;
  }
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  if (lane == 0) shared[warp] = value;
  __syncthreads();
  value = lane < kThreads / 32 ? shared[lane] : (kMax ? -FLT_MAX : 0.0f);
  for (int offset = 16; offset > 0; offset /= 2) {
    const float other = __shfl_xor_sync(0xffffffffu, value, offset);
    value = kMax ? fmaxf(value, other) : value + other;
  }
  __syncthreads();  // shared is reused by the next reduction
  return value;
}

// grid (n_tokens, n_heads); scores: [n_tokens][n_heads][max_ctx].
template <KvFormat kFormat>
__global__ void __launch_bounds__(kThreads) paged_quant_v1_kernel(QuantParams p, float* scores) {
  __shared__ float reduce_scratch[kThreads / 32];
  const int token = blockIdx.x;
  const int head = blockIdx.y;
  const int length = min(p.context_lengths[token], p.max_blocks_per_seq * p.block_size);
  if (length <= 0) return;  // the whole block leaves: no barrier is missed
  const int kv_head = head / (p.n_heads / p.n_kv_heads);
  const int* table =
      p.block_tables + static_cast<std::size_t>(p.table_rows[token]) * p.max_blocks_per_seq;
  const std::size_t head_row = static_cast<std::size_t>(token) * p.n_heads + head;
  const float* q = p.q + head_row * p.head_dim;
  float* row_scores =
      scores + head_row * static_cast<std::size_t>(p.max_blocks_per_seq) * p.block_size;
  // (slot, KV head) of position t: the index of its scale, and of its codes times head_dim.
  const auto row_of = [&](int t) {
    const std::size_t slot =
        static_cast<std::size_t>(table[t / p.block_size]) * p.block_size + t % p.block_size;
    return slot * p.n_kv_heads + kv_head;
  };
  const float inv_sqrt = rsqrtf(static_cast<float>(p.head_dim));

  float local_max = -FLT_MAX;
  for (int t = threadIdx.x; t < length; t += kThreads) {
    const std::size_t row = row_of(t);
    const unsigned char* key = p.k_codes + row * p.head_dim;
    float dot = 0.0f;
    for (int d = 0; d < p.head_dim; ++d) dot += q[d] * load_code<kFormat>(key[d]);
    const float score = dot * p.k_scales[row] * inv_sqrt;
    row_scores[t] = score;
    local_max = fmaxf(local_max, score);
  }
  const float max_score = block_reduce<true>(local_max, reduce_scratch);
  float local_sum = 0.0f;
  for (int t = threadIdx.x; t < length; t += kThreads) {
    const float e = __expf(row_scores[t] - max_score);
    row_scores[t] = e;
    local_sum += e;
  }
  const float inv_sum = 1.0f / block_reduce<false>(local_sum, reduce_scratch);
  __syncthreads();  // every exp is written before any thread sums them

  for (int d = threadIdx.x; d < p.head_dim; d += kThreads) {
    float acc = 0.0f;
    for (int t = 0; t < length; ++t) {
      const std::size_t row = row_of(t);
      acc += row_scores[t] * p.v_scales[row] * load_code<kFormat>(p.v_codes[row * p.head_dim + d]);
    }
    p.out[head_row * p.head_dim + d] = acc * inv_sum;
  }
}

}  // namespace

bool attention_decode_paged_quant_supports(const KvDtype& dtype, std::string* why) {
  const bool ok = dtype.format == KvFormat::int8 || dtype.format == KvFormat::fp8_e4m3;
  if (!ok && why) *why = "the CUDA quantized kernel runs int8 and fp8, not " + dtype.name();
  return ok;
}

std::size_t attention_decode_paged_quant_workspace_bytes(const PagedDecodeShape& shape) {
  return static_cast<std::size_t>(shape.n_tokens) * shape.n_heads * shape.max_ctx() * sizeof(float);
}

void attention_decode_paged_quant(const KvDtype& dtype, float* out, const float* q,
                                  const unsigned char* k_codes, const float* k_scales,
                                  const unsigned char* v_codes, const float* v_scales,
                                  const int* block_tables, const int* table_rows,
                                  const int* context_lengths, const PagedDecodeShape& shape,
                                  void* workspace, cudaStream_t stream) {
  std::string why;
  KVC_CHECK(attention_decode_paged_quant_supports(dtype, &why), why);
  KVC_CHECK(shape.block_size >= 1 && shape.n_kv_heads >= 1 && shape.n_heads % shape.n_kv_heads == 0,
            "cuda::attention_decode_paged_quant: bad shape");
  if (shape.n_tokens == 0) return;
  const QuantParams p{out,
                      q,
                      k_codes,
                      k_scales,
                      v_codes,
                      v_scales,
                      block_tables,
                      table_rows,
                      context_lengths,
                      shape.block_size,
                      shape.max_blocks_per_seq,
                      shape.n_heads,
                      shape.n_kv_heads,
                      shape.head_dim};
  const dim3 grid(shape.n_tokens, shape.n_heads);
  auto* scores = static_cast<float*>(workspace);
  if (dtype.format == KvFormat::int8) {
    paged_quant_v1_kernel<KvFormat::int8><<<grid, kThreads, 0, stream>>>(p, scores);
  } else {
    paged_quant_v1_kernel<KvFormat::fp8_e4m3><<<grid, kThreads, 0, stream>>>(p, scores);
  }
  KVC_CUDA_CHECK(cudaGetLastError());
}

}  // namespace kvc::cuda
