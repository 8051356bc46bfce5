// Decode attention over a contiguous KV cache: one new query per sequence
// against that sequence's cached keys and values.
//
//   k_cache, v_cache: [batch][max_ctx][n_kv_heads][head_dim]  (fp32, fp16 or bf16)
//   q, out:           [batch][n_heads][head_dim]              (fp32)
//   query head h reads KV head h / (n_heads / n_kv_heads)
//
// Decode reads the whole cache once per token and does little arithmetic per
// byte, so the goal is memory bandwidth: read every KV byte once, with wide
// loads, from enough blocks to keep every SM busy.
//
// v1: straightforward, llama2.c's loop on the GPU. One block per (sequence,
//     query head); threads take keys in turn and write scores to a global
//     scratch row, then softmax, then one thread per output dimension sums
//     p_t * v_t. Every query head of a GQA group re-reads the same K and V.
// v2: one block per (sequence, KV head). The block serves all the query heads
//     of the group from a single read of K and V. A few lanes share one key row,
//     each loading 16 bytes at a time (8 fp16 values); the context streams
//     through in tiles of scores kept in shared memory with an online softmax
//     (running max and sum, earlier results rescaled when the max grows).
// v3: split-K, "flash-decoding". With few sequences v2 launches too few blocks
//     to fill the GPU, so the context is split into slices, one block each,
//     running v2's tile loop over its slice and writing an unnormalised partial
//     result with its max and sum; a second small kernel merges the slices.
//
// Tests:     build/bin/kvc_cuda_tests --gtest_filter='*Decode*'
// Benchmark: build/bin/bench_cuda_attention --benchmark_filter='decode/v3'
#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstdint>

#include "common/check.hpp"
#include "common/cuda/cuda_check.hpp"
#include "kernels/cuda/attention.hpp"
#include "kernels/cuda/device_math.cuh"

namespace kvc::cuda {
namespace {

// Where one sequence's rows start, and the row of key t of KV head kv_head.
template <typename T>
__device__ __forceinline__ const T* cache_row(const void* cache, int seq, int t, int kv_head,
                                              int max_ctx, int n_kv_heads, int head_dim) {
  const std::size_t row = (static_cast<std::size_t>(seq) * max_ctx + t) * n_kv_heads + kv_head;
  return static_cast<const T*>(cache) + row * head_dim;
}

__device__ __forceinline__ int sequence_length(const int* lengths, int seq, int max_ctx) {
  return min(lengths[seq], max_ctx);  // never read past the sequence's rows
}

// ---- v1 ---------------------------------------------------------------------------

constexpr int kV1Threads = 256;

// grid (n_heads, batch). scores: [batch][n_heads][max_ctx].
template <typename T>
__global__ void decode_v1_kernel(float* out, const float* q, const void* k_cache,
                                 const void* v_cache, const int* lengths, float* scores,
                                 int max_ctx, int n_heads, int n_kv_heads, int head_dim) {
  const int head = blockIdx.x;
  const int seq = blockIdx.y;
  const int kv_head = head / (n_heads / n_kv_heads);
  const int length = sequence_length(lengths, seq, max_ctx);
  const std::size_t head_row = static_cast<std::size_t>(seq) * n_heads + head;
  const float* q_head = q + head_row * head_dim;
  float* score = scores + head_row * max_ctx;
  const float scale = 1.0f / sqrtf(static_cast<float>(head_dim));

  float max_score = -FLT_MAX;
  for (int t = threadIdx.x; t < length; t += blockDim.x) {
    const T* key = cache_row<T>(k_cache, seq, t, kv_head, max_ctx, n_kv_heads, head_dim);
    float dot = 0.0f;
    for (int d = 0; d < head_dim; ++d) dot += q_head[d] * to_float(key[d]);
    score[t] = dot * scale;
    max_score = fmaxf(max_score, score[t]);
  }
  max_score = block_max(max_score);
  float sum = 0.0f;
  for (int t = threadIdx.x; t < length; t += blockDim.x) {
    score[t] = expf(score[t] - max_score);
    sum += score[t];
  }
  sum = block_sum(sum);  // its __syncthreads also publishes score[] to every thread
  const float inv_sum = sum > 0.0f ? 1.0f / sum : 0.0f;
  for (int d = threadIdx.x; d < head_dim; d += blockDim.x) {
    float acc = 0.0f;
    for (int t = 0; t < length; ++t)
      acc += score[t] *
             to_float(cache_row<T>(v_cache, seq, t, kv_head, max_ctx, n_kv_heads, head_dim)[d]);
    out[head_row * head_dim + d] = acc * inv_sum;
  }
}

// ---- v2 and v3 ----------------------------------------------------------------------

constexpr int kThreads = 128;
constexpr int kWarps = kThreads / kWarpSize;
constexpr int kTileKeys = 256;  // scores held in shared memory per head at a time
constexpr int kUnroll = 4;      // key rows loaded back to back by each lane: loads in flight
constexpr int kMaxHeadsPerBlock = 8;

struct DecodeParams {
  float* out;           // [batch][n_heads][head_dim]
  const float* q;       // [batch][n_heads][head_dim]
  const void* k_cache;  // [batch][max_ctx][n_kv_heads][head_dim]
  const void* v_cache;  // same
  const int* lengths;   // [batch]
  int max_ctx;
  int n_heads;
  int n_kv_heads;
  int head_dim;
  int group_size;  // query heads per KV head
  int split_len;   // keys per block: max_ctx for v2, a slice for v3
  int n_splits;    // gridDim.x
  // v3 only (null for v2): unnormalised partial results per slice.
  float* partial_out;  // [batch][n_heads][n_splits][head_dim]
  float* partial_max;  // [batch][n_heads][n_splits]
  float* partial_sum;  // [batch][n_heads][n_splits]
};

// One block: sequence blockIdx.z, KV head and chunk of its query heads blockIdx.y,
// context slice blockIdx.x. kLanesPerKey lanes share one key row, each holding
// kVec consecutive dimensions (one 16-byte load); kHeadsPerBlock query heads per block.
template <typename T, int kLanesPerKey, int kHeadsPerBlock>
__global__ void __launch_bounds__(kThreads) decode_split_kernel(DecodeParams p) {
  constexpr int kVec = Vec16<T>::kCount;
  constexpr int kKeyGroups = kThreads / kLanesPerKey;  // key rows processed side by side
  constexpr int kPaddedDim = kLanesPerKey * kVec;
  __shared__ float scores[kHeadsPerBlock][kTileKeys];  // scores, then probabilities, of a tile
  __shared__ float running_max[kHeadsPerBlock];
  __shared__ float running_sum[kHeadsPerBlock];
  __shared__ float tile_rescale[kHeadsPerBlock];
  __shared__ float warp_out[kWarps][kHeadsPerBlock][kPaddedDim];

  const int seq = blockIdx.z;
  const int head_chunks = (p.group_size + kHeadsPerBlock - 1) / kHeadsPerBlock;
  const int kv_head = blockIdx.y / head_chunks;
  const int first_head = kv_head * p.group_size + (blockIdx.y % head_chunks) * kHeadsPerBlock;
  const int heads_here = min(kHeadsPerBlock, (kv_head + 1) * p.group_size - first_head);
  const int length = sequence_length(p.lengths, seq, p.max_ctx);
  const int begin = blockIdx.x * p.split_len;
  const int end = min(begin + p.split_len, length);
  if (begin >= end) return;  // a slice past this sequence's end: the merge skips it

  const int key_group = threadIdx.x / kLanesPerKey;
  const int dim0 = (threadIdx.x % kLanesPerKey) * kVec;  // this lane's first dimension
  const bool lane_has_dims = dim0 < p.head_dim;

  // This lane's slice of each query, pre-scaled by 1/sqrt(head_dim).
  const float scale = 1.0f / sqrtf(static_cast<float>(p.head_dim));
  float q_reg[kHeadsPerBlock][kVec];
  float acc[kHeadsPerBlock][kVec];
#pragma unroll
  for (int g = 0; g < kHeadsPerBlock; ++g) {
    const float* q_head =
        p.q + (static_cast<std::size_t>(seq) * p.n_heads + first_head + g) * p.head_dim + dim0;
#pragma unroll
    for (int e = 0; e < kVec; ++e) {
      q_reg[g][e] = (g < heads_here && lane_has_dims) ? q_head[e] * scale : 0.0f;
      acc[g][e] = 0.0f;
    }
  }
  if (threadIdx.x < kHeadsPerBlock) {
    running_max[threadIdx.x] = -FLT_MAX;
    running_sum[threadIdx.x] = 0.0f;
  }

  // 16 bytes of key/value row t for this lane (zeros past the tile or the head).
  auto load = [&](const void* cache, int t, bool valid) {
    if (!valid || !lane_has_dims) return make_uint4(0, 0, 0, 0);
    const T* row = cache_row<T>(cache, seq, t, kv_head, p.max_ctx, p.n_kv_heads, p.head_dim);
    return *reinterpret_cast<const uint4*>(row + dim0);
  };

  for (int tile = begin; tile < end; tile += kTileKeys) {
    const int tile_len = min(kTileKeys, end - tile);

    // 1. Scores: the kLanesPerKey lanes of a key group each dot their slice, then add up.
    //    Every lane of a warp runs the same iterations, so the shuffles see full warps.
    for (int j0 = 0; j0 < tile_len; j0 += kKeyGroups * kUnroll) {
      uint4 raw[kUnroll];
#pragma unroll
      for (int u = 0; u < kUnroll; ++u) {
        const int j = j0 + u * kKeyGroups + key_group;
        raw[u] = load(p.k_cache, tile + j, j < tile_len);
      }
#pragma unroll
      for (int u = 0; u < kUnroll; ++u) {
        float key[kVec];
        unpack16<T>(raw[u], key);
        const int j = j0 + u * kKeyGroups + key_group;
#pragma unroll
        for (int g = 0; g < kHeadsPerBlock; ++g) {
          float dot = 0.0f;
#pragma unroll
          for (int e = 0; e < kVec; ++e) dot += q_reg[g][e] * key[e];
#pragma unroll
          for (int offset = kLanesPerKey / 2; offset > 0; offset /= 2)
            dot += __shfl_xor_sync(0xffffffffu, dot, offset);
          if (threadIdx.x % kLanesPerKey == 0 && j < tile_len) scores[g][j] = dot;
        }
      }
    }
    __syncthreads();

    // 2. Online softmax, one warp per head: fold the tile's max into the running max,
    //    turn scores into probabilities, and note how much earlier sums shrink.
    for (int g = threadIdx.x / kWarpSize; g < heads_here; g += kWarps) {
      float tile_max = -FLT_MAX;
      for (int j = threadIdx.x % kWarpSize; j < tile_len; j += kWarpSize)
        tile_max = fmaxf(tile_max, scores[g][j]);
      const float new_max = fmaxf(running_max[g], warp_max(tile_max));
      float tile_sum = 0.0f;
      for (int j = threadIdx.x % kWarpSize; j < tile_len; j += kWarpSize) {
        scores[g][j] = expf(scores[g][j] - new_max);
        tile_sum += scores[g][j];
      }
      tile_sum = warp_sum(tile_sum);
      if (threadIdx.x % kWarpSize == 0) {
        const float rescale = expf(running_max[g] - new_max);
        tile_rescale[g] = rescale;
        running_sum[g] = running_sum[g] * rescale + tile_sum;
        running_max[g] = new_max;
      }
    }
    __syncthreads();

    // 3. Weighted sum of V rows: each key group accumulates its own keys.
#pragma unroll
    for (int g = 0; g < kHeadsPerBlock; ++g) {
      const float rescale = g < heads_here ? tile_rescale[g] : 0.0f;
#pragma unroll
      for (int e = 0; e < kVec; ++e) acc[g][e] *= rescale;
    }
    for (int j0 = 0; j0 < tile_len; j0 += kKeyGroups * kUnroll) {
      uint4 raw[kUnroll];
#pragma unroll
      for (int u = 0; u < kUnroll; ++u) {
        const int j = j0 + u * kKeyGroups + key_group;
        raw[u] = load(p.v_cache, tile + j, j < tile_len);
      }
#pragma unroll
      for (int u = 0; u < kUnroll; ++u) {
        const int j = j0 + u * kKeyGroups + key_group;
        if (j >= tile_len) continue;
        float value[kVec];
        unpack16<T>(raw[u], value);
#pragma unroll
        for (int g = 0; g < kHeadsPerBlock; ++g) {
          const float prob = g < heads_here ? scores[g][j] : 0.0f;
#pragma unroll
          for (int e = 0; e < kVec; ++e) acc[g][e] += prob * value[e];
        }
      }
    }
    __syncthreads();  // the next tile overwrites scores[]
  }

  // 4. Add up the key groups: first those in one warp (lanes kLanesPerKey apart),
  //    then across warps through shared memory.
#pragma unroll
  for (int g = 0; g < kHeadsPerBlock; ++g)
#pragma unroll
    for (int e = 0; e < kVec; ++e)
#pragma unroll
      for (int offset = kWarpSize / 2; offset >= kLanesPerKey; offset /= 2)
        acc[g][e] += __shfl_xor_sync(0xffffffffu, acc[g][e], offset);
  const int warp = threadIdx.x / kWarpSize;
  if (threadIdx.x % kWarpSize < kLanesPerKey) {
#pragma unroll
    for (int g = 0; g < kHeadsPerBlock; ++g)
#pragma unroll
      for (int e = 0; e < kVec; ++e) warp_out[warp][g][dim0 + e] = acc[g][e];
  }
  __syncthreads();

  for (int i = threadIdx.x; i < heads_here * p.head_dim; i += kThreads) {
    const int g = i / p.head_dim;
    const int d = i % p.head_dim;
    float sum = 0.0f;
#pragma unroll
    for (int w = 0; w < kWarps; ++w) sum += warp_out[w][g][d];
    const std::size_t head_row = static_cast<std::size_t>(seq) * p.n_heads + first_head + g;
    if (p.partial_out == nullptr) {  // v2: the whole context was ours
      p.out[head_row * p.head_dim + d] = sum / running_sum[g];
    } else {  // v3: leave the slice's unnormalised result for the merge
      const std::size_t slice = head_row * p.n_splits + blockIdx.x;
      p.partial_out[slice * p.head_dim + d] = sum;
      if (d == 0) {
        p.partial_max[slice] = running_max[g];
        p.partial_sum[slice] = running_sum[g];
      }
    }
  }
}

// v3's second kernel, grid (n_heads, batch): out = sum_s e^(m_s - m) acc_s / sum_s e^(m_s - m) l_s
// over the slices s that hold part of the sequence.
__global__ void decode_merge_kernel(DecodeParams p) {
  const int seq = blockIdx.y;
  const std::size_t head_row = static_cast<std::size_t>(seq) * p.n_heads + blockIdx.x;
  const int length = sequence_length(p.lengths, seq, p.max_ctx);
  const int used_splits = (length + p.split_len - 1) / p.split_len;
  const float* slice_max = p.partial_max + head_row * p.n_splits;
  const float* slice_sum = p.partial_sum + head_row * p.n_splits;
  const float* slice_out = p.partial_out + head_row * p.n_splits * p.head_dim;

  float max_all = -FLT_MAX;
  for (int s = 0; s < used_splits; ++s) max_all = fmaxf(max_all, slice_max[s]);
  float sum_all = 0.0f;
  for (int s = 0; s < used_splits; ++s) sum_all += expf(slice_max[s] - max_all) * slice_sum[s];
  const float inv_sum = sum_all > 0.0f ? 1.0f / sum_all : 0.0f;
  for (int d = threadIdx.x; d < p.head_dim; d += blockDim.x) {
    float acc = 0.0f;
    for (int s = 0; s < used_splits; ++s)
      acc += expf(slice_max[s] - max_all) * slice_out[static_cast<std::size_t>(s) * p.head_dim + d];
    p.out[head_row * p.head_dim + d] = acc * inv_sum;
  }
}

// ---- host side ---------------------------------------------------------------------

// Lanes sharing a key row: 16-byte vectors per row, rounded up to a power of two.
int lanes_per_key(const DecodeShape& shape) {
  const int vectors = static_cast<int>(shape.head_dim * dtype_size(shape.cache_dtype) / 16);
  int lanes = 1;
  while (lanes < vectors) lanes *= 2;
  return lanes;
}

int heads_per_block(const DecodeShape& shape) {
  const int group_size = shape.n_heads / shape.n_kv_heads;
  int heads = 1;
  while (heads < group_size && heads < kMaxHeadsPerBlock) heads *= 2;
  return heads;
}

int head_chunks(const DecodeShape& shape) {
  const int group_size = shape.n_heads / shape.n_kv_heads;
  return (group_size + heads_per_block(shape) - 1) / heads_per_block(shape);
}

int multiprocessor_count() {
  int device = 0;
  int count = 0;
  KVC_CUDA_CHECK(cudaGetDevice(&device));
  KVC_CUDA_CHECK(cudaDeviceGetAttribute(&count, cudaDevAttrMultiProcessorCount, device));
  return count;
}

// How v3 cuts the context: slices of split_len keys, n_splits of them per sequence.
struct SplitPlan {
  int split_len;
  int n_splits;
};

// Blocks (sequence, KV head, head chunk) that v2 launches; v3 multiplies them by its slices.
long long blocks_per_slice(const DecodeShape& shape) {
  return static_cast<long long>(shape.batch) * shape.n_kv_heads * head_chunks(shape);
}

// Enough slices for about 8 blocks per SM, each of 1 to 4 tiles. Short slices keep the last
// wave of blocks short too: with long ones, a grid just over a whole number of waves leaves
// most SMs idle while the last few blocks finish.
SplitPlan plan_splits(const DecodeShape& shape) {
  constexpr int kMaxSplitLen = 4 * kTileKeys;
  const long long wanted_splits = std::max(
      1LL, (8LL * multiprocessor_count() + blocks_per_slice(shape) - 1) / blocks_per_slice(shape));
  const long long len = (shape.max_ctx + wanted_splits - 1) / wanted_splits;
  const long long tiles =
      std::clamp<long long>((len + kTileKeys - 1) / kTileKeys, 1, kMaxSplitLen / kTileKeys);
  const int split_len = static_cast<int>(tiles * kTileKeys);
  return {split_len, (shape.max_ctx + split_len - 1) / split_len};
}

void check_shape(const DecodeShape& s) {
  KVC_CHECK(s.batch > 0 && s.max_ctx > 0 && s.n_heads > 0 && s.n_kv_heads > 0 && s.head_dim > 0 &&
                s.n_heads % s.n_kv_heads == 0,
            "cuda::attention_decode: bad shape batch=", s.batch, " max_ctx=", s.max_ctx,
            " n_heads=", s.n_heads, " n_kv_heads=", s.n_kv_heads, " head_dim=", s.head_dim,
            " (n_kv_heads must divide n_heads)");
}

using SplitKernel = void (*)(DecodeParams);

template <typename T, int kLanesPerKey>
SplitKernel split_kernel_for_lanes(int heads_per_block) {
  switch (heads_per_block) {
    case 1:
      return decode_split_kernel<T, kLanesPerKey, 1>;
    case 2:
      return decode_split_kernel<T, kLanesPerKey, 2>;
    case 4:
      return decode_split_kernel<T, kLanesPerKey, 4>;
    default:
      return decode_split_kernel<T, kLanesPerKey, 8>;
  }
}

template <typename T>
SplitKernel split_kernel_for_dtype(const DecodeShape& shape) {
  const int heads = heads_per_block(shape);
  switch (lanes_per_key(shape)) {
    case 1:
      return split_kernel_for_lanes<T, 1>(heads);
    case 2:
      return split_kernel_for_lanes<T, 2>(heads);
    case 4:
      return split_kernel_for_lanes<T, 4>(heads);
    case 8:
      return split_kernel_for_lanes<T, 8>(heads);
    case 16:
      return split_kernel_for_lanes<T, 16>(heads);
    default:
      return split_kernel_for_lanes<T, 32>(heads);
  }
}

// The instantiation of decode_split_kernel that serves `shape` (v2 and v3 alike).
SplitKernel split_kernel(const DecodeShape& shape) {
  SplitKernel kernel = nullptr;
  dispatch_dtype(shape.cache_dtype,
                 [&]<typename T>() { kernel = split_kernel_for_dtype<T>(shape); });
  return kernel;
}

// How many blocks of that kernel the whole GPU runs at once (its registers decide).
long long resident_blocks(const DecodeShape& shape) {
  int blocks_per_sm = 0;
  KVC_CUDA_CHECK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&blocks_per_sm, split_kernel(shape),
                                                               kThreads, 0));
  return static_cast<long long>(blocks_per_sm) * multiprocessor_count();
}

}  // namespace

bool attention_decode_supports(int variant, const DecodeShape& shape, std::string* why) {
  auto fail = [why](const std::string& reason) {
    if (why != nullptr) *why = reason;
    return false;
  };
  if (variant < 0 || variant > kDecodeVariants)
    return fail("no decode attention variant " + std::to_string(variant) + " (1.." +
                std::to_string(kDecodeVariants) + ", 0 = best)");
  if (variant == 1 || variant == kBestVariant) return true;
  const std::size_t row_bytes = shape.head_dim * dtype_size(shape.cache_dtype);
  if (row_bytes % 16 != 0 || row_bytes / 16 > 32)
    return fail("decode attention v" + std::to_string(variant) + " needs head_dim * " +
                std::to_string(dtype_size(shape.cache_dtype)) +
                " bytes to be a multiple of 16 and at most 512 (head_dim " +
                std::to_string(shape.head_dim) + ", " + dtype_name(shape.cache_dtype) + ")");
  return true;
}

int attention_decode_best_variant(const DecodeShape& shape) {
  check_shape(shape);
  if (!attention_decode_supports(2, shape, nullptr)) return 1;
  // Once v2's grid fills every block slot of the GPU, memory is busy without slicing and v3
  // would only add the merge; with fewer blocks, v3's slices are what fill the GPU.
  if (plan_splits(shape).n_splits == 1) return 2;
  return blocks_per_slice(shape) >= resident_blocks(shape) ? 2 : 3;
}

std::size_t attention_decode_workspace_bytes(int variant, const DecodeShape& shape) {
  check_shape(shape);
  if (variant == kBestVariant) variant = attention_decode_best_variant(shape);
  const std::size_t heads = static_cast<std::size_t>(shape.batch) * shape.n_heads;
  if (variant == 1) return heads * shape.max_ctx * sizeof(float);
  if (variant == 3)
    return heads * plan_splits(shape).n_splits * (shape.head_dim + 2) * sizeof(float);
  return 0;
}

void attention_decode(int variant, float* out, const float* q, const void* k_cache,
                      const void* v_cache, const int* lengths, const DecodeShape& shape,
                      void* workspace, cudaStream_t stream) {
  check_shape(shape);
  std::string why;
  KVC_CHECK(attention_decode_supports(variant, shape, &why), "cuda::attention_decode: ", why);
  if (variant == kBestVariant) variant = attention_decode_best_variant(shape);
  KVC_CHECK(attention_decode_workspace_bytes(variant, shape) == 0 || workspace != nullptr,
            "cuda::attention_decode: v", variant, " needs a workspace of ",
            attention_decode_workspace_bytes(variant, shape), " bytes");

  if (variant == 1) {
    dispatch_dtype(shape.cache_dtype, [&]<typename T>() {
      decode_v1_kernel<T><<<dim3(shape.n_heads, shape.batch), kV1Threads, 0, stream>>>(
          out, q, k_cache, v_cache, lengths, static_cast<float*>(workspace), shape.max_ctx,
          shape.n_heads, shape.n_kv_heads, shape.head_dim);
    });
    KVC_CUDA_CHECK_LAUNCH();
    return;
  }

  // 16-byte loads need 16-byte aligned rows: the row size is checked above, the bases here.
  KVC_CHECK(reinterpret_cast<std::uintptr_t>(k_cache) % 16 == 0 &&
                reinterpret_cast<std::uintptr_t>(v_cache) % 16 == 0,
            "cuda::attention_decode: v", variant, " needs 16-byte aligned k_cache and v_cache");
  DecodeParams params{};
  params.out = out;
  params.q = q;
  params.k_cache = k_cache;
  params.v_cache = v_cache;
  params.lengths = lengths;
  params.max_ctx = shape.max_ctx;
  params.n_heads = shape.n_heads;
  params.n_kv_heads = shape.n_kv_heads;
  params.head_dim = shape.head_dim;
  params.group_size = shape.n_heads / shape.n_kv_heads;
  const SplitPlan plan = variant == 3 ? plan_splits(shape) : SplitPlan{shape.max_ctx, 1};
  params.split_len = plan.split_len;
  params.n_splits = plan.n_splits;
  if (variant == 3) {
    const std::size_t slices =
        static_cast<std::size_t>(shape.batch) * shape.n_heads * params.n_splits;
    params.partial_out = static_cast<float*>(workspace);
    params.partial_max = params.partial_out + slices * shape.head_dim;
    params.partial_sum = params.partial_max + slices;
  }
  const dim3 grid(params.n_splits, shape.n_kv_heads * head_chunks(shape), shape.batch);
  split_kernel(shape)<<<grid, kThreads, 0, stream>>>(params);
  KVC_CUDA_CHECK_LAUNCH();
  if (variant == 3) {
    decode_merge_kernel<<<dim3(shape.n_heads, shape.batch), kThreads, 0, stream>>>(params);
    KVC_CUDA_CHECK_LAUNCH();
  }
}

}  // namespace kvc::cuda
