// Prefill of a chunk of one sequence over a paged KV pool (chapter 05): the
// queries at positions start .. start + n - 1, the keys and values of every
// position 0 .. start + n - 1 already in the pool, read through the sequence's
// block table. After a prefix-cache hit this is all the prefill there is: the
// cached prefix costs reads, not compute.
//
//   k_pages, v_pages: [num_blocks][block_size][n_kv_heads][head_dim]  (fp32, fp16 or bf16)
//   block_table:      [ceil((start + n) / block_size)]
//   q, out:           [n][n_heads][head_dim]                          (fp32)
//   query token i (position start + i) attends to positions 0 .. start + i
//
// Without this kernel such a chunk runs as n decode queries (attention_paged.cu):
// each query token reads the whole context on its own, n * (start + n) row reads.
// Here a block holds a tile of query rows and every K/V row it loads serves all
// of them, so the reads drop by the tile's height.
//
// v1: flash-attention style, like prefill v2 (attention_prefill.cu) but through
//     the table and from an offset. A block holds kRows = 16 query rows, one warp
//     each: tokens_per_block consecutive tokens x heads_per_block query heads
//     of one GQA group (heads_per_block = the group size rounded up to a power
//     of two, at most 8), so K/V rows are shared across the group as well as
//     across tokens. K and V stream through shared memory in tiles of 32
//     positions, converted to fp32 as they land; lane j scores key j of the
//     tile, the warp keeps a running max and sum (online softmax), and keys past
//     the row's position are masked. The block stops at its last token's
//     position, so the causal triangle is not loaded.
//     fp32 math on CUDA cores, not tensor cores: the engine promises the same
//     tokens as the CPU reference at temperature 0, and TF32/fp16 MMA rounds the
//     scores differently; reuse of K/V across the tile is the first-order win for
//     the suffix-after-a-hit shape (few queries, long cached context), which is
//     bound by reading the context, not by arithmetic. An MMA variant is the
//     natural v2.
//
// Tests:     build/bin/kvc_cuda_tests --gtest_filter='*PagedPrefill*'
// Benchmark: build/bin/bench_cuda_attention --benchmark_filter='paged_prefill'
// Compiled, not yet run on a GPU when this was written.
#include <cfloat>
#include <cmath>
#include <cstddef>
#include <limits>
#include <string>

#include "common/check.hpp"
#include "common/cuda/cuda_check.hpp"
#include "kernels/cuda/attention.hpp"
#include "kernels/cuda/decode_attention.cuh"
#include "kernels/cuda/device_math.cuh"
#include "kernels/cuda/prefill_tile.cuh"

namespace kvc::cuda {
namespace {

constexpr int kRows = 16;  // query rows per block, one warp each
constexpr int kThreads = kRows * kWarpSize;
constexpr int kTileKeys = kWarpSize;        // one key per lane when scoring
constexpr int kMaxHeadDim = 8 * kWarpSize;  // kDimsPerLane <= 8

struct PrefillParams {
  float* out;              // [n_tokens][n_heads][head_dim]
  const float* q;          // [n_tokens][n_heads][head_dim]
  const void* k_pages;     // [num_blocks][block_size][n_kv_heads][head_dim]
  const void* v_pages;     // same
  const int* block_table;  // [ceil((start + n_tokens) / block_size)]
  int n_tokens;
  int start;
  int block_size;
  int n_heads;
  int n_kv_heads;
  int head_dim;
  int heads_per_block;  // query heads of one group per block: grouped::heads_per_block
};

// Shared memory for a head_dim: K tile (rows padded by one float, so lanes reading
// different rows of one column hit different banks), V tile, the block's query rows.
std::size_t shared_bytes(int head_dim) {
  return sizeof(float) * (kTileKeys * (head_dim + 1) + kTileKeys * head_dim + kRows * head_dim);
}

// grid (ceil(n_tokens / tokens_per_block), n_kv_heads * head chunks of the group).
// Warp w serves token w / heads_per_block of the block's tokens and query head
// w % heads_per_block of its chunk; lane l owns output dimensions l, l + 32, ...
template <typename T, int kDimsPerLane>
__global__ void __launch_bounds__(kThreads) paged_prefill_v1_kernel(PrefillParams p) {
  extern __shared__ float shared[];
  const int k_stride = p.head_dim + 1;
  float* k_tile = shared;                           // [kTileKeys][head_dim + 1]
  float* v_tile = k_tile + kTileKeys * k_stride;    // [kTileKeys][head_dim]
  float* q_rows = v_tile + kTileKeys * p.head_dim;  // [kRows][head_dim]

  const int lane = threadIdx.x % kWarpSize;
  const int warp = threadIdx.x / kWarpSize;
  const int group_size = p.n_heads / p.n_kv_heads;
  const int chunks = (group_size + p.heads_per_block - 1) / p.heads_per_block;
  const int kv_head = blockIdx.y / chunks;
  const int first_head = kv_head * group_size + (blockIdx.y % chunks) * p.heads_per_block;
  const int tokens_per_block = kRows / p.heads_per_block;
  const int first_token = blockIdx.x * tokens_per_block;

  // This warp's row; it may be idle (past the chunk's end, or past the group's heads).
  const int token = first_token + warp / p.heads_per_block;
  const int head = first_head + warp % p.heads_per_block;
  const bool active = token < p.n_tokens && head < (kv_head + 1) * group_size;
  const int position = p.start + token;  // the row sees positions 0..position
  // The block's last visible position: no tile past it is loaded.
  const int last_position = p.start + min(first_token + tokens_per_block, p.n_tokens) - 1;

  const float scale = 1.0f / sqrtf(static_cast<float>(p.head_dim));
  float* q_row = q_rows + warp * p.head_dim;
  for (int d = lane; d < p.head_dim; d += kWarpSize)
    q_row[d] =
        active ? p.q[(static_cast<std::size_t>(token) * p.n_heads + head) * p.head_dim + d] * scale
               : 0.0f;

  const std::size_t kv_offset = static_cast<std::size_t>(kv_head) * p.head_dim;
  const std::size_t row_stride = static_cast<std::size_t>(p.n_kv_heads) * p.head_dim;
  const T* k_pages = static_cast<const T*>(p.k_pages);
  const T* v_pages = static_cast<const T*>(p.v_pages);

  prefill::WarpRow<kDimsPerLane> softmax;  // this warp's query row
  for (int tile = 0; tile <= last_position; tile += kTileKeys) {
    __syncthreads();  // every warp is done with the previous tile (and q_rows is written)
    // The whole block loads the tile: consecutive threads read consecutive dimensions of
    // one position's row, which the table puts at slot = block * block_size + offset.
    for (int i = threadIdx.x; i < kTileKeys * p.head_dim; i += kThreads) {
      const int row = i / p.head_dim;
      const int d = i % p.head_dim;
      const int t = tile + row;
      float key = 0.0f;
      float value = 0.0f;
      if (t <= last_position) {
        const std::size_t slot =
            static_cast<std::size_t>(p.block_table[t / p.block_size]) * p.block_size +
            t % p.block_size;
        const std::size_t at = slot * row_stride + kv_offset + d;
        key = to_float(k_pages[at]);
        value = to_float(v_pages[at]);
      }
      k_tile[row * k_stride + d] = key;
      v_tile[row * p.head_dim + d] = value;
    }
    __syncthreads();
    if (!active || tile > position) continue;  // warp-uniform: nothing visible in this tile
    // Keys after the row's position are masked out.
    softmax.attend_tile(q_row, k_tile, k_stride, v_tile, p.head_dim, position - tile + 1);
  }
  if (!active) return;
  // Position 0 is visible to every row, so the running sum is positive.
  softmax.store(p.out + (static_cast<std::size_t>(token) * p.n_heads + head) * p.head_dim,
                p.head_dim);
}

template <typename T, int kDimsPerLane>
void launch_v1(const PrefillParams& params, cudaStream_t stream) {
  const std::size_t bytes = shared_bytes(params.head_dim);
  KVC_CUDA_CHECK(cudaFuncSetAttribute(paged_prefill_v1_kernel<T, kDimsPerLane>,
                                      cudaFuncAttributeMaxDynamicSharedMemorySize,
                                      static_cast<int>(bytes)));
  const int group_size = params.n_heads / params.n_kv_heads;
  const int chunks = (group_size + params.heads_per_block - 1) / params.heads_per_block;
  const int tokens_per_block = kRows / params.heads_per_block;
  const dim3 grid((params.n_tokens + tokens_per_block - 1) / tokens_per_block,
                  params.n_kv_heads * chunks);
  paged_prefill_v1_kernel<T, kDimsPerLane><<<grid, kThreads, bytes, stream>>>(params);
}

void check_shape(const PagedPrefillShape& s) {
  KVC_CHECK(s.n_tokens > 0 && s.start >= 0 && s.block_size > 0 && s.n_heads > 0 &&
                s.n_kv_heads > 0 && s.head_dim > 0 && s.n_heads % s.n_kv_heads == 0 &&
                s.n_heads <= 65535 && s.start <= std::numeric_limits<int>::max() - s.n_tokens,
            "cuda::attention_prefill_paged: bad shape n_tokens=", s.n_tokens, " start=", s.start,
            " block_size=", s.block_size, " n_heads=", s.n_heads, " n_kv_heads=", s.n_kv_heads,
            " head_dim=", s.head_dim, " (n_kv_heads must divide n_heads, at most 65535 heads)");
}

}  // namespace

bool attention_prefill_paged_supports(int variant, const PagedPrefillShape& shape,
                                      std::string* why) {
  auto fail = [why](const std::string& reason) {
    if (why != nullptr) *why = reason;
    return false;
  };
  if (variant < 0 || variant > kPagedPrefillVariants)
    return fail("no paged prefill attention variant " + std::to_string(variant) + " (1.." +
                std::to_string(kPagedPrefillVariants) + ", 0 = best)");
  if (shape.head_dim > kMaxHeadDim)
    return fail("paged prefill attention v1 needs head_dim <= " + std::to_string(kMaxHeadDim) +
                " (head_dim " + std::to_string(shape.head_dim) + ")");
  return true;
}

void attention_prefill_paged(int variant, float* out, const float* q, const void* k_pages,
                             const void* v_pages, const int* block_table,
                             const PagedPrefillShape& shape, cudaStream_t stream) {
  check_shape(shape);
  std::string why;
  KVC_CHECK(attention_prefill_paged_supports(variant, shape, &why),
            "cuda::attention_prefill_paged: ", why);
  const PrefillParams params{
      .out = out,
      .q = q,
      .k_pages = k_pages,
      .v_pages = v_pages,
      .block_table = block_table,
      .n_tokens = shape.n_tokens,
      .start = shape.start,
      .block_size = shape.block_size,
      .n_heads = shape.n_heads,
      .n_kv_heads = shape.n_kv_heads,
      .head_dim = shape.head_dim,
      .heads_per_block = grouped::heads_per_block(shape.n_heads / shape.n_kv_heads)};
  const int dims_per_lane = (shape.head_dim + kWarpSize - 1) / kWarpSize;
  dispatch_float_format(shape.cache_dtype, [&]<typename T>() {
    if (dims_per_lane == 1)
      launch_v1<T, 1>(params, stream);
    else if (dims_per_lane == 2)
      launch_v1<T, 2>(params, stream);
    else if (dims_per_lane <= 4)
      launch_v1<T, 4>(params, stream);
    else
      launch_v1<T, 8>(params, stream);
  });
  KVC_CUDA_CHECK_LAUNCH();
}

}  // namespace kvc::cuda
