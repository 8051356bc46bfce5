// Decode attention over a paged KV pool (chapter 04): attention_decode's
// contract, but position t of a sequence lives in physical block
// table[t / block_size], at row t % block_size of that block.
//
//   k_pages, v_pages: [num_blocks][block_size][n_kv_heads][head_dim]  (fp32, fp16 or bf16;
//                     int8 or fp8 codes with per-row scales for attention_paged_quant.cu)
//   block_tables:     [n_seqs][max_blocks_per_seq]
//   q, out:           [n_tokens][n_heads][head_dim]                   (fp32)
//   token i reads table row table_rows[i] and attends to positions 0..context_lengths[i]-1
//
// Each token is one query: a decode step, or one token of a later prefill chunk
// (the chunk's tokens share a table and differ in length), so a whole batch of
// sequences and chunks is one launch.
//
// v1: decode v1 through the table, llama2.c's loop. One block per (token, query
//     head); threads take positions in turn, look up each one's row and write
//     its score to a global scratch row; softmax; then one thread per output
//     dimension sums p_t * v_t, looking every row up again. A KV head is read
//     once per query head of its group.
// v2: decode v2 through the table. One block per (token, KV head) serves every
//     query head of the group from one read of K and V, with vector loads and
//     an online softmax over tiles of 256 positions. Only the row address
//     changes: each position costs one table lookup (cached: a block's rows
//     share one entry), and the rows of a block are consecutive, so a block
//     size of 16 or more reads as contiguously as the unpaged cache.
// v3: decode v3 (split-K, "flash-decoding") through the table. With one long
//     sequence v2 launches one block per KV head, far too few for the GPU; v3
//     cuts each token's context into slices, one block each, and a second
//     kernel merges the slices' partial softmaxes (see decode_attention.cuh).
// All run the loops of decode_attention.cuh, the same code as the contiguous
// kernels, so paged and contiguous results agree to the last bit. The loops
// read rows through a loader (kv_loaders.cuh): chapter 07's quantized pools
// (attention_paged_quant.cu) run these same kernels with the int8/fp8 loader.
//
// v1 and v3 keep per-token results in the workspace. A batch may mix a long
// prefill chunk (its tokens skipped: context length 0) with a few decode tokens,
// so the workspace holds rows for the attending tokens only: a first small
// kernel numbers them (token i gets row k if it is the k-th attending token,
// else -1) and the attention kernels look their row up.
//
// The store kernel writes each token's k, v to its slot (block * block_size +
// offset) before attention reads them.
//
// Tests:     build/bin/kvc_cuda_tests --gtest_filter='*Paged*'
// Benchmark: build/bin/bench_cuda_attention --benchmark_filter='paged'
// v3 and the workspace rows: compiled, not yet run on a GPU when this was written.
#include <algorithm>
#include <cstddef>
#include <cstdint>

#include <cub/block/block_scan.cuh>

#include "common/check.hpp"
#include "common/cuda/cuda_check.hpp"
#include "kernels/cuda/attention.hpp"
#include "kernels/cuda/attention_paged_launch.cuh"
#include "kernels/cuda/decode_attention.cuh"

namespace kvc::cuda {
namespace {

struct PagedParams {
  float* out;                  // [n_tokens][n_heads][head_dim]
  const float* q;              // [n_tokens][n_heads][head_dim]
  CacheSide k;                 // [num_blocks][block_size][n_kv_heads][head_dim] (+ row scales)
  CacheSide v;                 // same
  const int* block_tables;     // [n_seqs][max_blocks_per_seq]
  const int* table_rows;       // [n_tokens]
  const int* context_lengths;  // [n_tokens]
  const int* workspace_rows;   // [n_tokens] (v1, v3): token i's workspace row, -1 if none
  int block_size;
  int max_blocks_per_seq;
  int n_heads;
  int n_kv_heads;
  int head_dim;
};

// Token i's context length, capped at what its table holds, so no lookup leaves the table row.
__device__ __forceinline__ int context_length(const PagedParams& p, int token) {
  return min(p.context_lengths[token], p.max_blocks_per_seq * p.block_size);
}

// Token i's block table: [max_blocks_per_seq] physical blocks.
__device__ __forceinline__ const int* block_table(const PagedParams& p, int token) {
  return p.block_tables + static_cast<std::size_t>(p.table_rows[token]) * p.max_blocks_per_seq;
}

// The row locator: the index of position t's row of KV head kv_head, slot =
// table[t / block_size] * block_size + t % block_size and the pool seen as rows
// [slots * n_kv_heads][head_dim] (a row's scale has the same index).
__device__ __forceinline__ std::size_t paged_row(const int* table, int t, int kv_head,
                                                 const PagedParams& p) {
  const std::size_t slot =
      static_cast<std::size_t>(table[t / p.block_size]) * p.block_size + t % p.block_size;
  return slot * p.n_kv_heads + kv_head;
}

// ---- workspace rows (v1, v3) ----------------------------------------------------------

constexpr int kRowsThreads = 1024;

// One block: rows[i] = how many attending tokens come before token i, if token i attends
// and that number is below `capacity` (the rows the workspace holds); else -1.
__global__ void __launch_bounds__(kRowsThreads)
    workspace_rows_kernel(const int* context_lengths, int n_tokens, int capacity, int* rows) {
  using BlockScan = cub::BlockScan<int, kRowsThreads>;
  __shared__ typename BlockScan::TempStorage scan_storage;
  int rows_before = 0;  // attending tokens in the chunks already numbered
  for (int chunk = 0; chunk < n_tokens; chunk += kRowsThreads) {
    const int token = chunk + threadIdx.x;
    const int attends = token < n_tokens && context_lengths[token] > 0 ? 1 : 0;
    int rank = 0;
    int chunk_attending = 0;
    BlockScan(scan_storage).ExclusiveSum(attends, rank, chunk_attending);
    const int row = rows_before + rank;
    if (token < n_tokens) rows[token] = attends && row < capacity ? row : -1;
    rows_before += chunk_attending;
    __syncthreads();  // scan_storage is reused by the next chunk
  }
}

// ---- v1 ---------------------------------------------------------------------------

constexpr int kV1Threads = 256;

// grid (n_tokens, n_heads). scores: [workspace rows][n_heads][max_blocks_per_seq * block_size].
template <typename Rows>
__global__ void paged_decode_v1_kernel(PagedParams p, float* scores) {
  const int token = blockIdx.x;
  const int head = blockIdx.y;
  const int length = context_length(p, token);
  const int row = p.workspace_rows[token];
  if (length <= 0 || row < 0) return;  // skipped (the whole block leaves: no barrier missed)
  const int kv_head = head / (p.n_heads / p.n_kv_heads);
  const int* table = block_table(p, token);
  const std::size_t head_row = static_cast<std::size_t>(token) * p.n_heads + head;
  const std::size_t score_row = static_cast<std::size_t>(row) * p.n_heads + head;
  const std::size_t max_ctx = static_cast<std::size_t>(p.max_blocks_per_seq) * p.block_size;
  attend_head_by_position(p.out + head_row * p.head_dim, p.q + head_row * p.head_dim, Rows(p.k),
                          Rows(p.v), length, p.head_dim, scores + score_row * max_ctx,
                          [&](int t) { return paged_row(table, t, kv_head, p); });
}

// ---- v2 ---------------------------------------------------------------------------

// grid (n_tokens, n_kv_heads * head chunks): token blockIdx.x, KV head and chunk of its query
// heads blockIdx.y.
template <typename Rows, int kLanesPerKey, int kHeadsPerBlock>
__global__ void __launch_bounds__(grouped::kThreads) paged_decode_v2_kernel(PagedParams p) {
  __shared__ grouped::Shared<Rows::kVec, kLanesPerKey, kHeadsPerBlock> shared;
  const int token = blockIdx.x;
  const int length = context_length(p, token);
  if (length <= 0) return;  // a skipped token (the whole block leaves: no barrier is missed)
  const grouped::HeadChunk chunk =
      grouped::head_chunk<kHeadsPerBlock>(blockIdx.y, p.n_heads / p.n_kv_heads);
  const int* table = block_table(p, token);

  const std::size_t first_row = static_cast<std::size_t>(token) * p.n_heads + chunk.first_head;
  grouped::attend_tiles<Rows, kLanesPerKey, kHeadsPerBlock>(
      shared, p.q + first_row * p.head_dim, chunk.heads_here, p.head_dim, Rows(p.k), Rows(p.v), 0,
      length, [&](int t) { return paged_row(table, t, chunk.kv_head, p); });

  grouped::store_heads(shared, chunk.heads_here, p.head_dim, p.out + first_row * p.head_dim);
}

// ---- v3 ---------------------------------------------------------------------------

// grid (n_tokens, n_kv_heads * head chunks, n_splits): slice blockIdx.z of token blockIdx.x's
// context, split_len positions; the slices land in the token's workspace row.
template <typename Rows, int kLanesPerKey, int kHeadsPerBlock>
__global__ void __launch_bounds__(grouped::kThreads)
    paged_decode_v3_kernel(PagedParams p, int split_len, grouped::SliceResults slices) {
  __shared__ grouped::Shared<Rows::kVec, kLanesPerKey, kHeadsPerBlock> shared;
  const int token = blockIdx.x;
  const int row = p.workspace_rows[token];
  const int begin = blockIdx.z * split_len;
  const int end = min(begin + split_len, context_length(p, token));
  if (row < 0 || begin >= end) return;  // skipped, or a slice past the context: merge skips it
  const grouped::HeadChunk chunk =
      grouped::head_chunk<kHeadsPerBlock>(blockIdx.y, p.n_heads / p.n_kv_heads);
  const int* table = block_table(p, token);

  const std::size_t first_row = static_cast<std::size_t>(token) * p.n_heads + chunk.first_head;
  grouped::attend_tiles<Rows, kLanesPerKey, kHeadsPerBlock>(
      shared, p.q + first_row * p.head_dim, chunk.heads_here, p.head_dim, Rows(p.k), Rows(p.v),
      begin, end, [&](int t) { return paged_row(table, t, chunk.kv_head, p); });
  grouped::store_slice(shared, chunk.heads_here, p.head_dim,
                       static_cast<std::size_t>(row) * p.n_heads + chunk.first_head, blockIdx.z,
                       slices);
}

// v3's second kernel, grid (n_tokens, n_heads): merges the slices of one head of one token.
__global__ void paged_merge_kernel(PagedParams p, int split_len, grouped::SliceResults slices) {
  const int token = blockIdx.x;
  const int row = p.workspace_rows[token];
  const int length = context_length(p, token);
  if (row < 0 || length <= 0) return;
  const std::size_t out_row = static_cast<std::size_t>(token) * p.n_heads + blockIdx.y;
  grouped::merge_slices(p.out + out_row * p.head_dim, slices,
                        static_cast<std::size_t>(row) * p.n_heads + blockIdx.y,
                        (length + split_len - 1) / split_len, p.head_dim);
}

// ---- store ------------------------------------------------------------------------

constexpr int kStoreThreads = 256;

// One thread per value of the n rows (grid-stride).
template <typename T>
__global__ void paged_kv_store_kernel(T* k_pages, T* v_pages, const float* k, const float* v,
                                      const std::int64_t* slots, int n, int row_size) {
  const std::size_t total = static_cast<std::size_t>(n) * row_size;
  for (std::size_t i = blockIdx.x * std::size_t{blockDim.x} + threadIdx.x; i < total;
       i += std::size_t{gridDim.x} * blockDim.x) {
    const std::size_t token = i / row_size;
    const std::size_t col = i % row_size;
    const std::size_t row = static_cast<std::size_t>(slots[token]);
    k_pages[row * row_size + col] = from_float<T>(k[i]);
    v_pages[row * row_size + col] = from_float<T>(v[i]);
  }
}

// ---- host side ---------------------------------------------------------------------

void check_shape(const PagedDecodeShape& s) {
  KVC_CHECK(s.n_tokens > 0 && s.block_size > 0 && s.max_blocks_per_seq > 0 && s.n_heads > 0 &&
                s.n_kv_heads > 0 && s.head_dim > 0 && s.n_heads % s.n_kv_heads == 0 &&
                s.attending_tokens >= -1 && s.attending_tokens <= s.n_tokens,
            "cuda::attention_decode_paged: bad shape n_tokens=", s.n_tokens,
            " block_size=", s.block_size, " max_blocks_per_seq=", s.max_blocks_per_seq,
            " n_heads=", s.n_heads, " n_kv_heads=", s.n_kv_heads, " head_dim=", s.head_dim,
            " attending_tokens=", s.attending_tokens,
            " (n_kv_heads must divide n_heads; attending_tokens -1 or 0..n_tokens)");
}

int group_size(const PagedDecodeShape& shape) {
  return shape.n_heads / shape.n_kv_heads;
}

// Blocks (attending token, KV head, head chunk) that v2 keeps busy; v3 multiplies them by
// its slices.
long long blocks_per_slice(const PagedDecodeShape& shape) {
  return std::max(1LL, static_cast<long long>(shape.workspace_tokens()) * shape.n_kv_heads *
                           grouped::head_chunks(group_size(shape)));
}

grouped::SplitPlan plan_splits(const PagedDecodeShape& shape) {
  return grouped::plan_splits(blocks_per_slice(shape), shape.max_ctx());
}

// The instantiation of paged_decode_v3_kernel that serves `shape`.
auto v3_kernel(const PagedDecodeShape& shape) {
  void (*kernel)(PagedParams, int, grouped::SliceResults) = nullptr;
  grouped::dispatch<true>(shape.cache_dtype, shape.head_dim, group_size(shape),
                          [&]<typename Rows, int kLanesPerKey, int kHeadsPerBlock>() {
                            kernel = paged_decode_v3_kernel<Rows, kLanesPerKey, kHeadsPerBlock>;
                          });
  return kernel;
}

// Workspace layout: [n_tokens] ints of workspace rows, then the floats of v1 or v3.
std::size_t rows_bytes(const PagedDecodeShape& shape) {
  return static_cast<std::size_t>(shape.n_tokens) * sizeof(int);
}

std::size_t data_bytes(int variant, const PagedDecodeShape& shape) {
  const std::size_t head_rows = static_cast<std::size_t>(shape.workspace_tokens()) * shape.n_heads;
  if (variant == 1) return head_rows * shape.max_ctx() * sizeof(float);
  return head_rows * plan_splits(shape).n_splits * (shape.head_dim + 2) * sizeof(float);
}

}  // namespace

bool attention_decode_paged_supports(int variant, const PagedDecodeShape& shape, std::string* why) {
  auto fail = [why](const std::string& reason) {
    if (why != nullptr) *why = reason;
    return false;
  };
  if (variant < 0 || variant > kPagedDecodeVariants)
    return fail("no paged decode attention variant " + std::to_string(variant) + " (1.." +
                std::to_string(kPagedDecodeVariants) + ", 0 = best)");
  if (grouped::row_bytes(shape.head_dim, shape.cache_dtype) == 0)
    return fail(std::string("paged decode attention reads no packed ") +
                format_name(shape.cache_dtype) + " rows");
  if (variant == 1 || variant == kBestVariant) return true;
  if (!grouped::fits(shape.head_dim, shape.cache_dtype))
    return fail("paged decode attention v" + std::to_string(variant) + " " +
                grouped::fit_requirement(shape.head_dim, shape.cache_dtype));
  return true;
}

int attention_decode_paged_best_variant(const PagedDecodeShape& shape) {
  check_shape(shape);
  if (!attention_decode_paged_supports(2, shape, nullptr)) return 1;
  // As for contiguous decode: slices pay only while v2's grid leaves block slots empty.
  if (plan_splits(shape).n_splits == 1) return 2;
  return blocks_per_slice(shape) >= grouped::resident_blocks(v3_kernel(shape)) ? 2 : 3;
}

std::size_t attention_decode_paged_workspace_bytes(int variant, const PagedDecodeShape& shape) {
  check_shape(shape);
  if (variant == kBestVariant) variant = attention_decode_paged_best_variant(shape);
  if (variant == 2) return 0;
  return rows_bytes(shape) + data_bytes(variant, shape);
}

void attention_decode_paged(int variant, float* out, const float* q, const void* k_pages,
                            const void* v_pages, const int* block_tables, const int* table_rows,
                            const int* context_lengths, const PagedDecodeShape& shape,
                            void* workspace, cudaStream_t stream) {
  KVC_CHECK(is_float_format(shape.cache_dtype),
            "cuda::attention_decode_paged: ", format_name(shape.cache_dtype),
            " pages have scales: attention_decode_paged_quant reads them");
  launch_decode_paged(variant, out, q, {k_pages}, {v_pages}, block_tables, table_rows,
                      context_lengths, shape, workspace, stream);
}

void launch_decode_paged(int variant, float* out, const float* q, CacheSide k, CacheSide v,
                         const int* block_tables, const int* table_rows, const int* context_lengths,
                         const PagedDecodeShape& shape, void* workspace, cudaStream_t stream) {
  check_shape(shape);
  std::string why;
  KVC_CHECK(attention_decode_paged_supports(variant, shape, &why),
            "cuda::attention_decode_paged: ", why);
  if (variant == kBestVariant) variant = attention_decode_paged_best_variant(shape);
  KVC_CHECK(attention_decode_paged_workspace_bytes(variant, shape) == 0 || workspace != nullptr,
            "cuda::attention_decode_paged: v", variant, " needs a workspace of ",
            attention_decode_paged_workspace_bytes(variant, shape), " bytes");

  int* workspace_rows = static_cast<int*>(workspace);
  float* workspace_data = reinterpret_cast<float*>(static_cast<std::byte*>(workspace) +
                                                   (variant == 2 ? 0 : rows_bytes(shape)));
  const PagedParams params{.out = out,
                           .q = q,
                           .k = k,
                           .v = v,
                           .block_tables = block_tables,
                           .table_rows = table_rows,
                           .context_lengths = context_lengths,
                           .workspace_rows = workspace_rows,
                           .block_size = shape.block_size,
                           .max_blocks_per_seq = shape.max_blocks_per_seq,
                           .n_heads = shape.n_heads,
                           .n_kv_heads = shape.n_kv_heads,
                           .head_dim = shape.head_dim};
  if (variant != 2) {
    workspace_rows_kernel<<<1, kRowsThreads, 0, stream>>>(context_lengths, shape.n_tokens,
                                                          shape.workspace_tokens(), workspace_rows);
    KVC_CUDA_CHECK_LAUNCH();
  }
  if (variant == 1) {
    dispatch_rows<true>(shape.cache_dtype, [&]<typename Rows>() {
      paged_decode_v1_kernel<Rows>
          <<<dim3(shape.n_tokens, shape.n_heads), kV1Threads, 0, stream>>>(params, workspace_data);
    });
    KVC_CUDA_CHECK_LAUNCH();
    return;
  }

  // 16-byte loads need 16-byte aligned rows: the row size is checked above, the bases here.
  KVC_CHECK(reinterpret_cast<std::uintptr_t>(k.values) % 16 == 0 &&
                reinterpret_cast<std::uintptr_t>(v.values) % 16 == 0,
            "cuda::attention_decode_paged: v", variant,
            " needs 16-byte aligned k_pages and v_pages");
  const int chunks = shape.n_kv_heads * grouped::head_chunks(group_size(shape));
  if (variant == 2) {
    grouped::dispatch<true>(
        shape.cache_dtype, shape.head_dim, group_size(shape),
        [&]<typename Rows, int kLanesPerKey, int kHeadsPerBlock>() {
          paged_decode_v2_kernel<Rows, kLanesPerKey, kHeadsPerBlock>
              <<<dim3(shape.n_tokens, chunks), grouped::kThreads, 0, stream>>>(params);
        });
    KVC_CUDA_CHECK_LAUNCH();
    return;
  }

  const grouped::SplitPlan plan = plan_splits(shape);
  KVC_CHECK(plan.n_splits <= 65535, "cuda::attention_decode_paged: v3 cannot split a context of ",
            shape.max_ctx(), " positions into at most 65535 slices");
  const std::size_t slices =
      static_cast<std::size_t>(shape.workspace_tokens()) * shape.n_heads * plan.n_splits;
  const grouped::SliceResults results{.out = workspace_data,
                                      .max = workspace_data + slices * shape.head_dim,
                                      .sum = workspace_data + slices * (shape.head_dim + 1),
                                      .n_splits = plan.n_splits};
  v3_kernel(shape)<<<dim3(shape.n_tokens, chunks, plan.n_splits), grouped::kThreads, 0, stream>>>(
      params, plan.split_len, results);
  KVC_CUDA_CHECK_LAUNCH();
  paged_merge_kernel<<<dim3(shape.n_tokens, shape.n_heads), grouped::kThreads, 0, stream>>>(
      params, plan.split_len, results);
  KVC_CUDA_CHECK_LAUNCH();
}

void paged_kv_store(void* k_pages, void* v_pages, NumberFormat cache_dtype, const float* k,
                    const float* v, const std::int64_t* slots, int n, int n_kv_heads, int head_dim,
                    cudaStream_t stream) {
  KVC_CHECK(n >= 0 && n_kv_heads > 0 && head_dim > 0, "cuda::paged_kv_store: bad shape n=", n,
            " n_kv_heads=", n_kv_heads, " head_dim=", head_dim);
  if (n == 0) return;
  const int row_size = n_kv_heads * head_dim;
  dispatch_float_format(cache_dtype, [&]<typename T>() {
    paged_kv_store_kernel<T>
        <<<grid_for(std::size_t(n) * row_size, kStoreThreads), kStoreThreads, 0, stream>>>(
            static_cast<T*>(k_pages), static_cast<T*>(v_pages), k, v, slots, n, row_size);
  });
  KVC_CUDA_CHECK_LAUNCH();
}

}  // namespace kvc::cuda
