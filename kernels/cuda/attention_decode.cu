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

// The row locator: the index of key t of KV head kv_head of sequence seq, the cache seen
// as rows [batch * max_ctx * n_kv_heads][head_dim].
__device__ __forceinline__ std::size_t cache_row(int seq, int t, int kv_head, int max_ctx,
                                                 int n_kv_heads) {
  return (static_cast<std::size_t>(seq) * max_ctx + t) * n_kv_heads + kv_head;
}

__device__ __forceinline__ int sequence_length(const int* lengths, int seq, int max_ctx) {
  return min(lengths[seq], max_ctx);  // never read past the sequence's rows
}

// ---- v1 ---------------------------------------------------------------------------

constexpr int kV1Threads = 256;

// grid (n_heads, batch). scores: [batch][n_heads][max_ctx].
template <typename Rows>
__global__ void decode_v1_kernel(float* out, const float* q, const void* k_cache,
                                 const void* v_cache, const int* lengths, float* scores,
                                 int max_ctx, int n_heads, int n_kv_heads, int head_dim) {
  const int head = blockIdx.x;
  const int seq = blockIdx.y;
  const int kv_head = head / (n_heads / n_kv_heads);
  const std::size_t head_row = static_cast<std::size_t>(seq) * n_heads + head;
  attend_head_by_position(out + head_row * head_dim, q + head_row * head_dim, Rows({k_cache}),
                          Rows({v_cache}), sequence_length(lengths, seq, max_ctx), head_dim,
                          scores + head_row * max_ctx,
                          [&](int t) { return cache_row(seq, t, kv_head, max_ctx, n_kv_heads); });
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
  // v3 only (all null for v2): the slices' unnormalised results, n_splits = gridDim.x.
  grouped::SliceResults slices;  // head rows [batch][n_heads]
};

// One block: sequence blockIdx.z, KV head and chunk of its query heads blockIdx.y,
// context slice blockIdx.x; the loop itself is grouped::attend_tiles.
template <typename Rows, int kLanesPerKey, int kHeadsPerBlock>
__global__ void __launch_bounds__(grouped::kThreads) decode_split_kernel(DecodeParams p) {
  __shared__ grouped::Shared<Rows::kVec, kLanesPerKey, kHeadsPerBlock> shared;
  const int seq = blockIdx.z;
  const grouped::HeadChunk chunk = grouped::head_chunk<kHeadsPerBlock>(blockIdx.y, p.group_size);
  const int length = sequence_length(p.lengths, seq, p.max_ctx);
  const int begin = blockIdx.x * p.split_len;
  const int end = min(begin + p.split_len, length);
  if (begin >= end) return;  // a slice past this sequence's end: the merge skips it

  const std::size_t first_row = static_cast<std::size_t>(seq) * p.n_heads + chunk.first_head;
  grouped::attend_tiles<Rows, kLanesPerKey, kHeadsPerBlock>(
      shared, p.q + first_row * p.head_dim, chunk.heads_here, p.head_dim, Rows({p.k_cache}),
      Rows({p.v_cache}), begin, end,
      [&](int t) { return cache_row(seq, t, chunk.kv_head, p.max_ctx, p.n_kv_heads); });

  if (p.slices.out == nullptr)  // v2: the whole context was ours
    grouped::store_heads(shared, chunk.heads_here, p.head_dim, p.out + first_row * p.head_dim);
  else  // v3: leave the slice's unnormalised result for the merge
    grouped::store_slice(shared, chunk.heads_here, p.head_dim, first_row, blockIdx.x, p.slices);
}

// v3's second kernel, grid (n_heads, batch): merges the slices that hold part of the sequence.
__global__ void decode_merge_kernel(DecodeParams p) {
  const int seq = blockIdx.y;
  const std::size_t head_row = static_cast<std::size_t>(seq) * p.n_heads + blockIdx.x;
  const int length = sequence_length(p.lengths, seq, p.max_ctx);
  grouped::merge_slices(p.out + head_row * p.head_dim, p.slices, head_row,
                        (length + p.split_len - 1) / p.split_len, p.head_dim);
}

// ---- host side ---------------------------------------------------------------------

int group_size(const DecodeShape& shape) {
  return shape.n_heads / shape.n_kv_heads;
}

// Blocks (sequence, KV head, head chunk) that v2 launches; v3 multiplies them by its slices.
long long blocks_per_slice(const DecodeShape& shape) {
  return static_cast<long long>(shape.batch) * shape.n_kv_heads *
         grouped::head_chunks(group_size(shape));
}

grouped::SplitPlan plan_splits(const DecodeShape& shape) {
  return grouped::plan_splits(blocks_per_slice(shape), shape.max_ctx);
}

void check_shape(const DecodeShape& s) {
  KVC_CHECK(is_float_format(s.cache_dtype), "cuda::attention_decode: a contiguous cache holds ",
            "fp32, fp16 or bf16, not ", format_name(s.cache_dtype));
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
  grouped::dispatch<false>(shape.cache_dtype, shape.head_dim, group_size(shape),
                           [&]<typename Rows, int kLanesPerKey, int kHeadsPerBlock>() {
                             kernel = decode_split_kernel<Rows, kLanesPerKey, kHeadsPerBlock>;
                           });
  return kernel;
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
  if (!is_float_format(shape.cache_dtype))
    return fail(std::string("decode attention over a contiguous cache reads fp32, fp16 or bf16, "
                            "not ") +
                format_name(shape.cache_dtype));
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
  return blocks_per_slice(shape) >= grouped::resident_blocks(split_kernel(shape)) ? 2 : 3;
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
    dispatch_rows<false>(shape.cache_dtype, [&]<typename Rows>() {
      decode_v1_kernel<Rows><<<dim3(shape.n_heads, shape.batch), kV1Threads, 0, stream>>>(
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
  const grouped::SplitPlan plan =
      variant == 3 ? plan_splits(shape) : grouped::SplitPlan{shape.max_ctx, 1};
  params.split_len = plan.split_len;
  if (variant == 3) {
    const std::size_t slices =
        static_cast<std::size_t>(shape.batch) * shape.n_heads * plan.n_splits;
    float* partial_out = static_cast<float*>(workspace);
    params.slices = {.out = partial_out,
                     .max = partial_out + slices * shape.head_dim,
                     .sum = partial_out + slices * (shape.head_dim + 1),
                     .n_splits = plan.n_splits};
  }
  const dim3 grid(plan.n_splits, shape.n_kv_heads * grouped::head_chunks(params.group_size),
                  shape.batch);
  split_kernel(shape)<<<grid, grouped::kThreads, 0, stream>>>(params);
  KVC_CUDA_CHECK_LAUNCH();
  if (variant == 3) {
    decode_merge_kernel<<<dim3(shape.n_heads, shape.batch), grouped::kThreads, 0, stream>>>(params);
    KVC_CUDA_CHECK_LAUNCH();
  }
}

}  // namespace kvc::cuda
