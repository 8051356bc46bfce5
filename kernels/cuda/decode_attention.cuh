// The loops of decode attention, written once and shared by the kernels over a
// contiguous cache (attention_decode.cu), a paged pool (attention_paged.cu) and
// a quantized paged pool (attention_paged_quant.cu): they differ only in where
// position t's K and V rows live and how a row stores its numbers.
//
// So each loop is split in three pieces:
//   load:       a loader per format (kv_loaders.cuh) reads row r of K or V as
//               floats and its scale, and a row locator, a device callable
//                 row_of(t) -> std::size_t
//               gives the row index r of position t for the block's KV head. The
//               loops call it only for positions inside the range they attend
//               to, so a locator may read a block table there.
//   score:      q . k_t (times the key row's scale and 1/sqrt(head_dim)), then
//               the softmax (v1: over all scores; v2/v3: online, tile by tile).
//   accumulate: sum_t p_t * v_t (the probability times the value row's scale).
//
// v3 (split-K) runs the v2 loop over a slice of the context; the pieces that
// store and merge the slices, and the host side that plans them, are here too.
#pragma once

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstddef>
#include <string>

#include "common/cuda/cuda_check.hpp"
#include "common/number_format.hpp"
#include "kernels/cuda/device_math.cuh"
#include "kernels/cuda/kv_loaders.cuh"

namespace kvc::cuda {

// ---- v1: one query head per block, llama2.c's loop ------------------------------------

// Attention of one query head over positions 0..length-1: threads take keys in turn and
// write scores[t], a block softmax, then one thread per output dimension sums p_t * v_t.
// An empty context gives zeros. Contains barriers: call from every thread of the block.
//   q_head, out_head: [head_dim] fp32; scores: [length] global scratch of this head
//   k, v: the loaders of the two sides (kv_loaders.cuh)
template <typename Rows, typename RowOf>
__device__ __forceinline__ void attend_head_by_position(float* out_head, const float* q_head,
                                                        const Rows& k, const Rows& v, int length,
                                                        int head_dim, float* scores, RowOf row_of) {
  const float scale = 1.0f / sqrtf(static_cast<float>(head_dim));
  float max_score = -FLT_MAX;
  for (int t = threadIdx.x; t < length; t += blockDim.x) {
    const std::size_t row = row_of(t);
    float dot = 0.0f;
    for (int d = 0; d < head_dim; ++d) dot += q_head[d] * k.value(row, d, head_dim);
    scores[t] = dot * k.scale(row) * scale;
    max_score = fmaxf(max_score, scores[t]);
  }
  max_score = block_max(max_score);
  float sum = 0.0f;
  for (int t = threadIdx.x; t < length; t += blockDim.x) {
    scores[t] = expf(scores[t] - max_score);
    sum += scores[t];
  }
  sum = block_sum(sum);  // its __syncthreads also publishes scores[] to every thread
  const float inv_sum = sum > 0.0f ? 1.0f / sum : 0.0f;
  for (int d = threadIdx.x; d < head_dim; d += blockDim.x) {
    float acc = 0.0f;
    for (int t = 0; t < length; ++t) {
      const std::size_t row = row_of(t);
      acc += scores[t] * v.scale(row) * v.value(row, d, head_dim);
    }
    out_head[d] = acc * inv_sum;
  }
}

// ---- v2: one KV head's group per block, tiles with an online softmax ------------------
//
// A block serves up to kHeadsPerBlock query heads of one GQA group from a single read of
// their KV head. kLanesPerKey lanes share one key row, each loading one vector (a
// Rows::Raw: 16 bytes of fp32/fp16/bf16, 8 of codes; kVec consecutive dimensions) at a time; the
// context streams through in tiles of kTileKeys scores kept in shared memory, with a running max
// and sum per head (earlier results rescaled when the max grows).
namespace grouped {

constexpr int kThreads = 128;
constexpr int kWarps = kThreads / kWarpSize;
constexpr int kTileKeys = 256;  // scores held in shared memory per head at a time
constexpr int kUnroll = 4;      // key rows loaded back to back by each lane: loads in flight
constexpr int kMaxHeadsPerBlock = 8;
constexpr int kMaxHeadDim = 256;  // what Shared::warp_out holds per head

// The query heads one block serves: part of the group of KV head kv_head.
struct HeadChunk {
  int kv_head;
  int first_head;  // query heads first_head .. first_head + heads_here - 1
  int heads_here;
};

// Chunk `index` of the (KV head, chunk of its group_size query heads) blocks, kHeadsPerBlock
// heads per chunk.
template <int kHeadsPerBlock>
__device__ __forceinline__ HeadChunk head_chunk(int index, int group_size) {
  const int chunks = (group_size + kHeadsPerBlock - 1) / kHeadsPerBlock;
  const int kv_head = index / chunks;
  const int first_head = kv_head * group_size + (index % chunks) * kHeadsPerBlock;
  return {kv_head, first_head, min(kHeadsPerBlock, (kv_head + 1) * group_size - first_head)};
}

// The block's shared memory, for a loader of kVec values per load.
template <int kVec, int kLanesPerKey, int kHeadsPerBlock>
struct Shared {
  float scores[kHeadsPerBlock][kTileKeys];  // scores, then probabilities, of a tile
  float running_max[kHeadsPerBlock];
  float running_sum[kHeadsPerBlock];
  float tile_rescale[kHeadsPerBlock];
  float warp_out[kWarps][kHeadsPerBlock][kLanesPerKey * kVec];

  // Output dimension d of head g, unnormalised: the accumulators of every warp added up.
  __device__ __forceinline__ float output(int g, int d) const {
    float sum = 0.0f;
#pragma unroll
    for (int w = 0; w < kWarps; ++w) sum += warp_out[w][g][d];
    return sum;
  }
};

// Attention of heads_here query heads, which share one KV head, over positions
// [begin, end) (begin < end). Leaves in `s`, for g < heads_here and d < head_dim, the
// softmax's running_max[g] and running_sum[g] and the unnormalised output(g, d), after a
// barrier, so any thread may read them. Contains barriers: call from every thread.
//   q_heads: [heads_here][head_dim] fp32
//   k, v:    the loaders of the two sides (kv_loaders.cuh)
// A row's bytes must be a multiple of sizeof(Rows::Raw) and at most kLanesPerKey of them,
// and every row aligned to it.
template <typename Rows, int kLanesPerKey, int kHeadsPerBlock, typename RowOf>
__device__ __forceinline__ void attend_tiles(Shared<Rows::kVec, kLanesPerKey, kHeadsPerBlock>& s,
                                             const float* q_heads, int heads_here, int head_dim,
                                             const Rows& k, const Rows& v, int begin, int end,
                                             RowOf row_of) {
  constexpr int kVec = Rows::kVec;
  constexpr int kKeyGroups = kThreads / kLanesPerKey;  // key rows processed side by side

  const int key_group = threadIdx.x / kLanesPerKey;
  const int dim0 = (threadIdx.x % kLanesPerKey) * kVec;  // this lane's first dimension
  const bool lane_has_dims = dim0 < head_dim;

  // This lane's slice of each query, pre-scaled by 1/sqrt(head_dim).
  const float scale = 1.0f / sqrtf(static_cast<float>(head_dim));
  float q_reg[kHeadsPerBlock][kVec];
  float acc[kHeadsPerBlock][kVec];
#pragma unroll
  for (int g = 0; g < kHeadsPerBlock; ++g) {
    const float* q_head = q_heads + static_cast<std::size_t>(g) * head_dim + dim0;
#pragma unroll
    for (int e = 0; e < kVec; ++e) {
      q_reg[g][e] = (g < heads_here && lane_has_dims) ? q_head[e] * scale : 0.0f;
      acc[g][e] = 0.0f;
    }
  }
  if (threadIdx.x < kHeadsPerBlock) {
    s.running_max[threadIdx.x] = -FLT_MAX;
    s.running_sum[threadIdx.x] = 0.0f;
  }

  // This lane's vector of `row` (zeros past the tile or the head).
  using Raw = typename Rows::Raw;
  auto load = [&](const Rows& side, std::size_t row, bool valid) {
    if (!valid || !lane_has_dims) return Raw{};
    return side.load(row, dim0, head_dim);
  };

  for (int tile = begin; tile < end; tile += kTileKeys) {
    const int tile_len = min(kTileKeys, end - tile);

    // 1. Scores: the kLanesPerKey lanes of a key group each dot their slice, then add up.
    //    Every lane of a warp runs the same iterations, so the shuffles see full warps.
    for (int j0 = 0; j0 < tile_len; j0 += kKeyGroups * kUnroll) {
      std::size_t rows[kUnroll];
      Raw raw[kUnroll];
#pragma unroll
      for (int u = 0; u < kUnroll; ++u) {
        const int j = j0 + u * kKeyGroups + key_group;
        rows[u] = j < tile_len ? row_of(tile + j) : 0;
        raw[u] = load(k, rows[u], j < tile_len);
      }
#pragma unroll
      for (int u = 0; u < kUnroll; ++u) {
        float key[kVec];
        Rows::unpack(raw[u], key);
        const int j = j0 + u * kKeyGroups + key_group;
        const bool scorer = threadIdx.x % kLanesPerKey == 0 && j < tile_len;
        const float key_scale = scorer ? k.scale(rows[u]) : 0.0f;
#pragma unroll
        for (int g = 0; g < kHeadsPerBlock; ++g) {
          float dot = 0.0f;
#pragma unroll
          for (int e = 0; e < kVec; ++e) dot += q_reg[g][e] * key[e];
#pragma unroll
          for (int offset = kLanesPerKey / 2; offset > 0; offset /= 2)
            dot += __shfl_xor_sync(0xffffffffu, dot, offset);
          if (scorer) s.scores[g][j] = dot * key_scale;
        }
      }
    }
    __syncthreads();

    // 2. Online softmax, one warp per head: fold the tile's max into the running max,
    //    turn scores into probabilities, and note how much earlier sums shrink.
    for (int g = threadIdx.x / kWarpSize; g < heads_here; g += kWarps) {
      float tile_max = -FLT_MAX;
      for (int j = threadIdx.x % kWarpSize; j < tile_len; j += kWarpSize)
        tile_max = fmaxf(tile_max, s.scores[g][j]);
      const float new_max = fmaxf(s.running_max[g], warp_max(tile_max));
      float tile_sum = 0.0f;
      for (int j = threadIdx.x % kWarpSize; j < tile_len; j += kWarpSize) {
        s.scores[g][j] = expf(s.scores[g][j] - new_max);
        tile_sum += s.scores[g][j];
      }
      tile_sum = warp_sum(tile_sum);
      if (threadIdx.x % kWarpSize == 0) {
        const float rescale = expf(s.running_max[g] - new_max);
        s.tile_rescale[g] = rescale;
        s.running_sum[g] = s.running_sum[g] * rescale + tile_sum;
        s.running_max[g] = new_max;
      }
    }
    __syncthreads();

    // 3. Weighted sum of V rows: each key group accumulates its own keys.
#pragma unroll
    for (int g = 0; g < kHeadsPerBlock; ++g) {
      const float rescale = g < heads_here ? s.tile_rescale[g] : 0.0f;
#pragma unroll
      for (int e = 0; e < kVec; ++e) acc[g][e] *= rescale;
    }
    for (int j0 = 0; j0 < tile_len; j0 += kKeyGroups * kUnroll) {
      std::size_t rows[kUnroll];
      Raw raw[kUnroll];
#pragma unroll
      for (int u = 0; u < kUnroll; ++u) {
        const int j = j0 + u * kKeyGroups + key_group;
        rows[u] = j < tile_len ? row_of(tile + j) : 0;
        raw[u] = load(v, rows[u], j < tile_len);
      }
#pragma unroll
      for (int u = 0; u < kUnroll; ++u) {
        const int j = j0 + u * kKeyGroups + key_group;
        if (j >= tile_len) continue;
        float value[kVec];
        Rows::unpack(raw[u], value);
        const float value_scale = v.scale(rows[u]);
#pragma unroll
        for (int g = 0; g < kHeadsPerBlock; ++g) {
          const float prob = g < heads_here ? s.scores[g][j] * value_scale : 0.0f;
#pragma unroll
          for (int e = 0; e < kVec; ++e) acc[g][e] += prob * value[e];
        }
      }
    }
    __syncthreads();  // the next tile overwrites scores[]
  }

  // 4. Add up the key groups: first those in one warp (lanes kLanesPerKey apart),
  //    then across warps through shared memory (see Shared::output).
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
      for (int e = 0; e < kVec; ++e) s.warp_out[warp][g][dim0 + e] = acc[g][e];
  }
  __syncthreads();
}

// After attend_tiles: the normalised output of each served head.
//   out_rows: [heads_here][head_dim], the rows of the block's query heads
template <typename SharedMemory>
__device__ __forceinline__ void store_heads(const SharedMemory& s, int heads_here, int head_dim,
                                            float* out_rows) {
  for (int i = threadIdx.x; i < heads_here * head_dim; i += kThreads) {
    const int g = i / head_dim;
    out_rows[i] = s.output(g, i % head_dim) / s.running_sum[g];
  }
}

// ---- v3: split-K ("flash-decoding") ---------------------------------------------------
//
// A long context gives few blocks of v2 (one per token and KV head), too few to fill the
// GPU. v3 cuts each token's context into slices of split_len positions, runs attend_tiles
// on one slice per block, and leaves the slice's unnormalised result with its softmax max
// m_s and sum l_s. A second kernel merges the slices of each head exactly:
//   out = sum_s e^(m_s - m) acc_s / sum_s e^(m_s - m) l_s,   m = max_s m_s
// (each slice's terms were scaled by e^(-m_s); rescaling by e^(m_s - m) puts them all on
// the common max, the same correction the online softmax makes from tile to tile).

// Where the slices of the head rows go:
//   out: [head rows][n_splits][head_dim], max and sum: [head rows][n_splits]
struct SliceResults {
  float* out;
  float* max;
  float* sum;
  int n_splits;
};

// After attend_tiles over slice `split`: each served head's unnormalised output, max and sum.
template <typename SharedMemory>
__device__ __forceinline__ void store_slice(const SharedMemory& s, int heads_here, int head_dim,
                                            std::size_t first_head_row, int split,
                                            const SliceResults& slices) {
  for (int i = threadIdx.x; i < heads_here * head_dim; i += kThreads) {
    const int g = i / head_dim;
    const int d = i % head_dim;
    const std::size_t slice = (first_head_row + g) * slices.n_splits + split;
    slices.out[slice * head_dim + d] = s.output(g, d);
    if (d == 0) {
      slices.max[slice] = s.running_max[g];
      slices.sum[slice] = s.running_sum[g];
    }
  }
}

// The merge of one head row's first used_splits slices into out_head ([head_dim]).
// Threads of the block take output dimensions in turn; no barrier.
__device__ __forceinline__ void merge_slices(float* out_head, const SliceResults& slices,
                                             std::size_t head_row, int used_splits, int head_dim) {
  const float* slice_max = slices.max + head_row * slices.n_splits;
  const float* slice_sum = slices.sum + head_row * slices.n_splits;
  const float* slice_out = slices.out + head_row * slices.n_splits * head_dim;
  float max_all = -FLT_MAX;
  for (int s = 0; s < used_splits; ++s) max_all = fmaxf(max_all, slice_max[s]);
  float sum_all = 0.0f;
  for (int s = 0; s < used_splits; ++s) sum_all += expf(slice_max[s] - max_all) * slice_sum[s];
  const float inv_sum = sum_all > 0.0f ? 1.0f / sum_all : 0.0f;
  for (int d = threadIdx.x; d < head_dim; d += blockDim.x) {
    float acc = 0.0f;
    for (int s = 0; s < used_splits; ++s)
      acc += expf(slice_max[s] - max_all) * slice_out[static_cast<std::size_t>(s) * head_dim + d];
    out_head[d] = acc * inv_sum;
  }
}

// ---- v2, host side ----

// Bytes of one row of head_dim values of `format` (0 for int4: no loader reads it).
inline std::size_t row_bytes(int head_dim, NumberFormat format) {
  return format_bits(format) >= 8 ? static_cast<std::size_t>(head_dim) * format_bits(format) / 8
                                  : 0;
}

// Whether rows of head_dim values of `format` split into whole loads of its loader, one
// lane each, within one warp, and fit Shared::warp_out.
inline bool fits(int head_dim, NumberFormat format) {
  const std::size_t bytes = row_bytes(head_dim, format);
  const int load = load_bytes(format);
  return bytes > 0 && load > 0 && bytes % load == 0 && bytes / load <= kWarpSize &&
         head_dim <= kMaxHeadDim;
}

// Why fits() fails, for an error message: "needs rows of head_dim * 16 bits to be whole
// 16-byte loads ... (head_dim 12, fp16)".
inline std::string fit_requirement(int head_dim, NumberFormat format) {
  return "needs rows of head_dim * " + std::to_string(format_bits(format)) + " bits to be whole " +
         std::to_string(load_bytes(format)) +
         "-byte loads, at most 32 of them, and head_dim at most " + std::to_string(kMaxHeadDim) +
         " (head_dim " + std::to_string(head_dim) + ", " + format_name(format) + ")";
}

// Lanes sharing a key row: loads per row, rounded up to a power of two.
inline int lanes_per_key(int head_dim, NumberFormat format) {
  const int vectors = static_cast<int>(row_bytes(head_dim, format) / load_bytes(format));
  int lanes = 1;
  while (lanes < vectors) lanes *= 2;
  return lanes;
}

// Query heads per block: the group size rounded up to a power of two, at most kMaxHeadsPerBlock.
inline int heads_per_block(int group_size) {
  int heads = 1;
  while (heads < group_size && heads < kMaxHeadsPerBlock) heads *= 2;
  return heads;
}

// Blocks per KV head: chunks of heads_per_block query heads covering its group.
inline int head_chunks(int group_size) {
  return (group_size + heads_per_block(group_size) - 1) / heads_per_block(group_size);
}

template <typename Rows, int kLanesPerKey, typename Body>
void dispatch_heads(int heads, Body& body) {
  switch (heads) {
    case 1:
      body.template operator()<Rows, kLanesPerKey, 1>();
      return;
    case 2:
      body.template operator()<Rows, kLanesPerKey, 2>();
      return;
    case 4:
      body.template operator()<Rows, kLanesPerKey, 4>();
      return;
    default:
      body.template operator()<Rows, kLanesPerKey, 8>();
      return;
  }
}

// Lane counts 1, 2, 4, ... up to the widest a row of the loader can need (kMaxHeadDim
// values, at most a warp): wider ones are never instantiated.
template <typename Rows, int kLanes = 1, typename Body>
void dispatch_lanes(int lanes, int heads, Body& body) {
  if constexpr (kLanes == kWarpSize || kLanes * Rows::kVec >= kMaxHeadDim) {
    dispatch_heads<Rows, kLanes>(heads, body);
  } else {
    if (lanes <= kLanes) return dispatch_heads<Rows, kLanes>(heads, body);
    dispatch_lanes<Rows, kLanes * 2>(lanes, heads, body);
  }
}

// ---- v3, host side ----

inline int multiprocessor_count() {
  int device = 0;
  int count = 0;
  KVC_CUDA_CHECK(cudaGetDevice(&device));
  KVC_CUDA_CHECK(cudaDeviceGetAttribute(&count, cudaDevAttrMultiProcessorCount, device));
  return count;
}

// How v3 cuts a context of up to max_ctx positions: n_splits slices of split_len.
struct SplitPlan {
  int split_len;
  int n_splits;
};

// blocks_per_slice: the blocks v2 would launch (tokens x KV heads x head chunks). Enough
// slices for about 8 blocks per SM, each of 1 to 4 tiles. Short slices keep the last wave
// of blocks short too: with long ones, a grid just over a whole number of waves leaves
// most SMs idle while the last few blocks finish.
inline SplitPlan plan_splits(long long blocks_per_slice, int max_ctx) {
  constexpr int kMaxSplitLen = 4 * kTileKeys;
  const long long wanted_splits =
      std::max(1LL, (8LL * multiprocessor_count() + blocks_per_slice - 1) / blocks_per_slice);
  const long long len = (max_ctx + wanted_splits - 1) / wanted_splits;
  const long long tiles =
      std::clamp<long long>((len + kTileKeys - 1) / kTileKeys, 1, kMaxSplitLen / kTileKeys);
  const int split_len = static_cast<int>(tiles * kTileKeys);
  return {split_len, (max_ctx + split_len - 1) / split_len};
}

// How many blocks of `kernel` (kThreads each) the whole GPU runs at once (its registers
// decide). v3 only pays when v2's grid is smaller than this.
template <typename Kernel>
long long resident_blocks(Kernel kernel) {
  int blocks_per_sm = 0;
  KVC_CUDA_CHECK(
      cudaOccupancyMaxActiveBlocksPerMultiprocessor(&blocks_per_sm, kernel, kThreads, 0));
  return static_cast<long long>(blocks_per_sm) * multiprocessor_count();
}

// Calls body.template operator()<Rows, kLanesPerKey, kHeadsPerBlock>() with the loader of
// `format` (with kScaled, int8 and fp8 too: see dispatch_rows) and the template arguments
// that serve rows of head_dim values and groups of group_size query heads
// (fits(head_dim, format) must hold).
template <bool kScaled, typename Body>
void dispatch(NumberFormat format, int head_dim, int group_size, Body&& body) {
  const int lanes = lanes_per_key(head_dim, format);
  const int heads = heads_per_block(group_size);
  dispatch_rows<kScaled>(format,
                         [&]<typename Rows>() { dispatch_lanes<Rows>(lanes, heads, body); });
}

}  // namespace grouped
}  // namespace kvc::cuda
