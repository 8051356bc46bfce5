// One warp's share of flash-attention prefill, shared by the causal prefill
// (attention_prefill.cu v2) and the paged prefill (attention_paged_prefill.cu):
// a warp owns one query row and walks the K/V tiles its block has put in shared
// memory, keeping an online softmax. The kernels differ only in where the tiles
// come from (the batch's own k, v, or the pool through a block table).
#pragma once

#include <cfloat>
#include <cmath>

#include "kernels/cuda/device_math.cuh"

namespace kvc::cuda::prefill {

constexpr int kTileKeys = kWarpSize;  // one key per lane when scoring

// One query row's running softmax and unnormalised output. Lane l owns output
// dimensions l, l + 32, ... (kDimsPerLane of them: head_dim <= 32 * kDimsPerLane).
template <int kDimsPerLane>
struct WarpRow {
  float running_max = -FLT_MAX;
  float running_sum = 0.0f;
  float acc[kDimsPerLane] = {};

  // Folds one tile into the row. The first `visible` keys of the tile count (the causal
  // mask: keys past the query's position are out); call with visible >= 1. All 32 lanes
  // must call it together (warp shuffles).
  //   q_row:  [head_dim], pre-scaled by 1/sqrt(head_dim)
  //   k_tile: [kTileKeys][k_stride]   v_tile: [kTileKeys][head_dim]   (shared memory)
  __device__ __forceinline__ void attend_tile(const float* q_row, const float* k_tile, int k_stride,
                                              const float* v_tile, int head_dim, int visible) {
    const int lane = threadIdx.x % kWarpSize;
    // Lane j scores key j of the tile.
    float score = 0.0f;
    for (int d = 0; d < head_dim; ++d) score += q_row[d] * k_tile[lane * k_stride + d];
    const bool is_visible = lane < visible;
    const float new_max = fmaxf(running_max, warp_max(is_visible ? score : -FLT_MAX));
    const float prob = is_visible ? expf(score - new_max) : 0.0f;
    const float rescale = expf(running_max - new_max);
    running_sum = running_sum * rescale + warp_sum(prob);
    running_max = new_max;
#pragma unroll
    for (int i = 0; i < kDimsPerLane; ++i) acc[i] *= rescale;
    for (int j = 0; j < kTileKeys; ++j) {
      const float prob_j = __shfl_sync(0xffffffffu, prob, j);
#pragma unroll
      for (int i = 0; i < kDimsPerLane; ++i) {
        const int d = lane + i * kWarpSize;
        if (d < head_dim) acc[i] += prob_j * v_tile[j * head_dim + d];
      }
    }
  }

  // The normalised output into out_row ([head_dim]); every lane writes its dimensions.
  __device__ __forceinline__ void store(float* out_row, int head_dim) const {
    const int lane = threadIdx.x % kWarpSize;
#pragma unroll
    for (int i = 0; i < kDimsPerLane; ++i) {
      const int d = lane + i * kWarpSize;
      if (d < head_dim) out_row[d] = acc[i] / running_sum;
    }
  }
};

}  // namespace kvc::cuda::prefill
