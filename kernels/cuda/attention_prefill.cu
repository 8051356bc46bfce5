// Causal prefill attention: n tokens of one sequence, token i attends to 0..i.
//
//   q, out: [n][n_heads][head_dim]     k, v: [n][n_kv_heads][head_dim]   (fp32)
//   query head h reads KV head h / (n_heads / n_kv_heads)
//
// v1: one block per (token, head). The token's scores live in shared memory:
//     threads take keys in turn, then a block softmax, then one thread per
//     output dimension sums p_t * v_t. Simple, and limited to the contexts
//     whose scores fit in shared memory.
// v2: flash-attention style. A block holds kQueries tokens of one head (one
//     warp each) and streams K and V through shared memory in tiles of 32 keys.
//     Lane j scores key j of the tile; the warp keeps a running max and sum
//     (online softmax), so no score row is ever stored and any n works. The
//     warp's loop is prefill::WarpRow (prefill_tile.cuh), shared with the paged
//     prefill of attention_paged_prefill.cu.
//
// Tests: build/bin/kvc_cuda_tests --gtest_filter='*Prefill*'
#include <cfloat>
#include <cmath>

#include "common/check.hpp"
#include "common/cuda/cuda_check.hpp"
#include "kernels/cuda/attention.hpp"
#include "kernels/cuda/device_math.cuh"
#include "kernels/cuda/prefill_tile.cuh"

namespace kvc::cuda {
namespace {

// ---- v1 ---------------------------------------------------------------------------

constexpr int kV1Threads = 256;

// grid (n, n_heads); dynamic shared memory: n floats of scores (+ padding, see the launch).
__global__ void prefill_v1_kernel(float* out, const float* q, const float* k, const float* v,
                                  int n_heads, int n_kv_heads, int head_dim) {
  extern __shared__ float scores[];
  const int token = blockIdx.x;
  const int head = blockIdx.y;
  const int kv_head = head / (n_heads / n_kv_heads);
  const std::size_t kv_stride = static_cast<std::size_t>(n_kv_heads) * head_dim;
  const float* q_head = q + (static_cast<std::size_t>(token) * n_heads + head) * head_dim;
  const float* k_head = k + static_cast<std::size_t>(kv_head) * head_dim;
  const float* v_head = v + static_cast<std::size_t>(kv_head) * head_dim;
  const float scale = 1.0f / sqrtf(static_cast<float>(head_dim));

  float max_score = -FLT_MAX;
  for (int t = threadIdx.x; t <= token; t += blockDim.x) {
    float dot = 0.0f;
    for (int d = 0; d < head_dim; ++d) dot += q_head[d] * k_head[t * kv_stride + d];
    scores[t] = dot * scale;
    max_score = fmaxf(max_score, scores[t]);
  }
  max_score = block_max(max_score);
  float sum = 0.0f;
  for (int t = threadIdx.x; t <= token; t += blockDim.x) {
    scores[t] = expf(scores[t] - max_score);
    sum += scores[t];
  }
  const float inv_sum = 1.0f / block_sum(sum);  // block_sum's barrier publishes scores[]
  for (int d = threadIdx.x; d < head_dim; d += blockDim.x) {
    float acc = 0.0f;
    for (int t = 0; t <= token; ++t) acc += scores[t] * v_head[t * kv_stride + d];
    out[(static_cast<std::size_t>(token) * n_heads + head) * head_dim + d] = acc * inv_sum;
  }
}

// ---- v2 ---------------------------------------------------------------------------

constexpr int kQueries = 8;  // query tokens per block, one warp each
constexpr int kV2Threads = kQueries * kWarpSize;
using prefill::kTileKeys;

// Shared memory of v2 for a head_dim: K tile (rows padded by one float so that lanes
// reading different rows of one column hit different banks), V tile, the block's queries.
std::size_t prefill_v2_shared_bytes(int head_dim) {
  return sizeof(float) * (kTileKeys * (head_dim + 1) + kTileKeys * head_dim + kQueries * head_dim);
}

// grid (ceil(n / kQueries), n_heads). Lane l owns output dimensions l, l + 32, ...
template <int kDimsPerLane>
__global__ void __launch_bounds__(kV2Threads)
    prefill_v2_kernel(float* out, const float* q, const float* k, const float* v, int n,
                      int n_heads, int n_kv_heads, int head_dim) {
  extern __shared__ float shared[];
  const int k_stride = head_dim + 1;
  float* k_tile = shared;                          // [kTileKeys][head_dim + 1]
  float* v_tile = k_tile + kTileKeys * k_stride;   // [kTileKeys][head_dim]
  float* q_block = v_tile + kTileKeys * head_dim;  // [kQueries][head_dim]

  const int lane = threadIdx.x % kWarpSize;
  const int warp = threadIdx.x / kWarpSize;
  const int first_token = blockIdx.x * kQueries;
  const int token = first_token + warp;  // this warp's query; may be >= n in the last block
  const int last_token = min(first_token + kQueries, n) - 1;
  const int head = blockIdx.y;
  const int kv_head = head / (n_heads / n_kv_heads);
  const std::size_t kv_stride = static_cast<std::size_t>(n_kv_heads) * head_dim;
  const float scale = 1.0f / sqrtf(static_cast<float>(head_dim));

  float* q_row = q_block + warp * head_dim;
  for (int d = lane; d < head_dim; d += kWarpSize)
    q_row[d] = token < n
                   ? q[(static_cast<std::size_t>(token) * n_heads + head) * head_dim + d] * scale
                   : 0.0f;

  prefill::WarpRow<kDimsPerLane> softmax;  // this warp's query row
  for (int tile = 0; tile <= last_token; tile += kTileKeys) {
    __syncthreads();  // the previous tile has been used by every warp (and q_block is written)
    for (int i = threadIdx.x; i < kTileKeys * head_dim; i += kV2Threads) {
      const int row = i / head_dim;
      const int d = i % head_dim;
      const bool inside = tile + row < n;
      const std::size_t at =
          (tile + row) * kv_stride + static_cast<std::size_t>(kv_head) * head_dim + d;
      k_tile[row * k_stride + d] = inside ? k[at] : 0.0f;
      v_tile[row * head_dim + d] = inside ? v[at] : 0.0f;
    }
    __syncthreads();
    if (token >= n || tile > token) continue;  // warp-uniform: nothing visible in this tile
    // Keys after the query are masked out.
    softmax.attend_tile(q_row, k_tile, k_stride, v_tile, head_dim, token - tile + 1);
  }
  if (token >= n) return;
  softmax.store(out + (static_cast<std::size_t>(token) * n_heads + head) * head_dim, head_dim);
}

template <int kDimsPerLane>
void launch_prefill_v2(float* out, const float* q, const float* k, const float* v, int n,
                       int n_heads, int n_kv_heads, int head_dim, cudaStream_t stream) {
  const std::size_t shared_bytes = prefill_v2_shared_bytes(head_dim);
  KVC_CUDA_CHECK(cudaFuncSetAttribute(prefill_v2_kernel<kDimsPerLane>,
                                      cudaFuncAttributeMaxDynamicSharedMemorySize,
                                      static_cast<int>(shared_bytes)));
  const dim3 grid((n + kQueries - 1) / kQueries, n_heads);
  prefill_v2_kernel<kDimsPerLane>
      <<<grid, kV2Threads, shared_bytes, stream>>>(out, q, k, v, n, n_heads, n_kv_heads, head_dim);
}

int max_shared_bytes_per_block() {
  int device = 0;
  int bytes = 0;
  KVC_CUDA_CHECK(cudaGetDevice(&device));
  KVC_CUDA_CHECK(cudaDeviceGetAttribute(&bytes, cudaDevAttrMaxSharedMemoryPerBlockOptin, device));
  return bytes;
}

}  // namespace

void attention_prefill_causal(int variant, float* out, const float* q, const float* k,
                              const float* v, int n, int n_heads, int n_kv_heads, int head_dim,
                              cudaStream_t stream) {
  KVC_CHECK(n >= 0 && n_heads > 0 && n_kv_heads > 0 && head_dim > 0 && n_heads % n_kv_heads == 0,
            "cuda::attention_prefill_causal: bad shape n=", n, " n_heads=", n_heads,
            " n_kv_heads=", n_kv_heads, " head_dim=", head_dim,
            " (n_kv_heads must divide n_heads)");
  KVC_CHECK(variant >= 0 && variant <= kPrefillVariants,
            "cuda::attention_prefill_causal: no variant ", variant, " (1..", kPrefillVariants,
            ", 0 = best)");
  if (n == 0) return;
  if (variant == kBestVariant) variant = 2;

  if (variant == 1) {
    // Padded by a 16-byte vector: ptxas may merge the unrolled tail of the last loop into
    // one wider shared load that reads up to two floats past the final score.
    const std::size_t shared_bytes = (std::size_t(n) + 4) * sizeof(float);
    KVC_CHECK(shared_bytes <= static_cast<std::size_t>(max_shared_bytes_per_block()),
              "cuda::attention_prefill_causal v1: ", n,
              " tokens of scores do not fit in shared memory; use v2");
    KVC_CUDA_CHECK(cudaFuncSetAttribute(prefill_v1_kernel,
                                        cudaFuncAttributeMaxDynamicSharedMemorySize,
                                        static_cast<int>(shared_bytes)));
    prefill_v1_kernel<<<dim3(n, n_heads), kV1Threads, shared_bytes, stream>>>(out, q, k, v, n_heads,
                                                                              n_kv_heads, head_dim);
    KVC_CUDA_CHECK_LAUNCH();
    return;
  }

  KVC_CHECK(head_dim <= 8 * kWarpSize, "cuda::attention_prefill_causal v2: head_dim ", head_dim,
            " > 256");
  const int dims_per_lane = (head_dim + kWarpSize - 1) / kWarpSize;
  if (dims_per_lane == 1)
    launch_prefill_v2<1>(out, q, k, v, n, n_heads, n_kv_heads, head_dim, stream);
  else if (dims_per_lane == 2)
    launch_prefill_v2<2>(out, q, k, v, n, n_heads, n_kv_heads, head_dim, stream);
  else if (dims_per_lane <= 4)
    launch_prefill_v2<4>(out, q, k, v, n, n_heads, n_kv_heads, head_dim, stream);
  else
    launch_prefill_v2<8>(out, q, k, v, n, n_heads, n_kv_heads, head_dim, stream);
  KVC_CUDA_CHECK_LAUNCH();
}

}  // namespace kvc::cuda
