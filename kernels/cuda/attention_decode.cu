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
// The loops of v1 and v2/v3 live in decode_attention.cuh: the paged kernels of
// attention_paged.cu run the same ones, reading rows through a block table.
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
#include "kernels/cuda/decode_attention.cuh"

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
  const std::size_t head_row = static_cast<std::size_t>(seq) * n_heads + head;
  attend_head_by_position<T>(out + head_row * head_dim, q + head_row * head_dim, k_cache, v_cache,
                             sequence_length(lengths, seq, max_ctx), head_dim,
                             scores + head_row * max_ctx, [&](const void* cache, int t) {
                               return cache_row<T>(cache, seq, t, kv_head, max_ctx, n_kv_heads,
                                                   head_dim);
                             });
}

// ---- v2 and v3 ----------------------------------------------------------------------

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
// context slice blockIdx.x; the loop itself is grouped::attend_tiles.
template <typename T, int kLanesPerKey, int kHeadsPerBlock>
__global__ void __launch_bounds__(grouped::kThreads) decode_split_kernel(DecodeParams p) {
  __shared__ grouped::Shared<T, kLanesPerKey, kHeadsPerBlock> shared;
  const int seq = blockIdx.z;
  const grouped::HeadChunk chunk = grouped::head_chunk<kHeadsPerBlock>(blockIdx.y, p.group_size);
  const int length = sequence_length(p.lengths, seq, p.max_ctx);
  const int begin = blockIdx.x * p.split_len;
  const int end = min(begin + p.split_len, length);
  if (begin >= end) return;  // a slice past this sequence's end: the merge skips it

  const std::size_t first_row = static_cast<std::size_t>(seq) * p.n_heads + chunk.first_head;
  grouped::attend_tiles<T, kLanesPerKey, kHeadsPerBlock>(
      shared, p.q + first_row * p.head_dim, chunk.heads_here, p.head_dim, p.k_cache, p.v_cache,
      begin, end, [&](const void* cache, int t) {
        return cache_row<T>(cache, seq, t, chunk.kv_head, p.max_ctx, p.n_kv_heads, p.head_dim);
      });

  for (int i = threadIdx.x; i < chunk.heads_here * p.head_dim; i += grouped::kThreads) {
    const int g = i / p.head_dim;
    const int d = i % p.head_dim;
    const float sum = shared.output(g, d);
    const std::size_t head_row = first_row + g;
    if (p.partial_out == nullptr) {  // v2: the whole context was ours
      p.out[head_row * p.head_dim + d] = sum / shared.running_sum[g];
    } else {  // v3: leave the slice's unnormalised result for the merge
      const std::size_t slice = head_row * p.n_splits + blockIdx.x;
      p.partial_out[slice * p.head_dim + d] = sum;
      if (d == 0) {
        p.partial_max[slice] = shared.running_max[g];
        p.partial_sum[slice] = shared.running_sum[g];
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

int group_size(const DecodeShape& shape) {
  return shape.n_heads / shape.n_kv_heads;
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
  return static_cast<long long>(shape.batch) * shape.n_kv_heads *
         grouped::head_chunks(group_size(shape));
}

// Enough slices for about 8 blocks per SM, each of 1 to 4 tiles. Short slices keep the last
// wave of blocks short too: with long ones, a grid just over a whole number of waves leaves
// most SMs idle while the last few blocks finish.
SplitPlan plan_splits(const DecodeShape& shape) {
  using grouped::kTileKeys;
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

// The instantiation of decode_split_kernel that serves `shape` (v2 and v3 alike).
SplitKernel split_kernel(const DecodeShape& shape) {
  SplitKernel kernel = nullptr;
  grouped::dispatch(shape.cache_dtype, shape.head_dim, group_size(shape),
                    [&]<typename T, int kLanesPerKey, int kHeadsPerBlock>() {
                      kernel = decode_split_kernel<T, kLanesPerKey, kHeadsPerBlock>;
                    });
  return kernel;
}

// How many blocks of that kernel the whole GPU runs at once (its registers decide).
long long resident_blocks(const DecodeShape& shape) {
  int blocks_per_sm = 0;
  KVC_CUDA_CHECK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&blocks_per_sm, split_kernel(shape),
                                                               grouped::kThreads, 0));
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
  if (!grouped::fits(shape.head_dim, shape.cache_dtype))
    return fail("decode attention v" + std::to_string(variant) + " " +
                grouped::fit_requirement(shape.head_dim, shape.cache_dtype));
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
  params.group_size = group_size(shape);
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
  const dim3 grid(params.n_splits, shape.n_kv_heads * grouped::head_chunks(params.group_size),
                  shape.batch);
  split_kernel(shape)<<<grid, grouped::kThreads, 0, stream>>>(params);
  KVC_CUDA_CHECK_LAUNCH();
  if (variant == 3) {
    decode_merge_kernel<<<dim3(shape.n_heads, shape.batch), grouped::kThreads, 0, stream>>>(params);
    KVC_CUDA_CHECK_LAUNCH();
  }
}

}  // namespace kvc::cuda
