// matmul: out[n][d_out] = x[n][d_in] @ w[d_out][d_in]^T, the op where inference spends its time.
//
// Every output element is one dot product dot(x[i], w[j]) whose rounding is
// fixed by d_in alone:
//   1. eight lane accumulators, lane l sums x[k] * w[k] for k = l, l + 8, ...
//      in increasing k (fused multiply-add when the build has FMA),
//   2. a fixed tree adds the eight lanes,
//   3. the d_in % 8 leftover products are added one by one.
// The loops below only choose *which* dot products run side by side (tiles,
// cache blocks, threads), never how one is summed, so a row's result does not
// depend on the batch size, its place in the batch or the thread count.
#include <algorithm>
#include <cstddef>
#include <cstdint>

#include "common/thread_pool.hpp"
#include "kernels/cpu/ops.hpp"

#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#endif

namespace kvc::cpu {

namespace {

#if defined(__AVX2__) && defined(__FMA__)
// Eight float lanes in one AVX register.
struct Lanes8 {
  __m256 v;
};
inline Lanes8 zero_lanes() {
  return {_mm256_setzero_ps()};
}
inline Lanes8 load_lanes(const float* p) {
  return {_mm256_loadu_ps(p)};
}
inline Lanes8 multiply_add(Lanes8 a, Lanes8 b, Lanes8 acc) {
  return {_mm256_fmadd_ps(a.v, b.v, acc.v)};
}
// ((l0 + l4) + (l2 + l6)) + ((l1 + l5) + (l3 + l7))
inline float horizontal_sum(Lanes8 a) {
  const __m128 halves = _mm_add_ps(_mm256_castps256_ps128(a.v), _mm256_extractf128_ps(a.v, 1));
  const __m128 pairs = _mm_add_ps(halves, _mm_movehl_ps(halves, halves));
  return _mm_cvtss_f32(_mm_add_ss(pairs, _mm_movehdup_ps(pairs)));
}
#else
// Portable fallback: the same eight lanes as a plain array (no FMA, so each
// product is rounded before it is added).
struct Lanes8 {
  float v[8];
};
inline Lanes8 zero_lanes() {
  return {};
}
inline Lanes8 load_lanes(const float* p) {
  Lanes8 lanes;
  for (int l = 0; l < 8; ++l) lanes.v[l] = p[l];
  return lanes;
}
inline Lanes8 multiply_add(Lanes8 a, Lanes8 b, Lanes8 acc) {
  for (int l = 0; l < 8; ++l) acc.v[l] += a.v[l] * b.v[l];
  return acc;
}
// The same tree as the AVX version.
inline float horizontal_sum(Lanes8 a) {
  float halves[4];
  for (int l = 0; l < 4; ++l) halves[l] = a.v[l] + a.v[l + 4];
  return (halves[0] + halves[2]) + (halves[1] + halves[3]);
}
#endif

// Register tile: 4 x rows times 3 weight rows = 12 accumulators, plus 3 weight
// registers and 1 x register, fills the 16 AVX registers. Each weight vector
// loaded is used by 4 rows, which is what makes prefill compute bound.
constexpr int kTileRows = 4;
constexpr int kTileCols = 3;

// A single row (GEMV, one decode token) reuses nothing, so it is bound by
// streaming w, and what decides the speed is the order w is read in.
// Long rows: eight weight rows side by side, eight independent FMA chains and
// eight page-long streams the hardware prefetcher follows.
// Short rows (the 288- and 768-wide layers of small models): eight rows side
// by side read eight streams a row apart inside one page, which this
// machine's prefetcher does not follow (measured: ~12 GB/s against ~27 for a
// plain streaming read). Instead the rows are cut in two halves read side by
// side, each in address order: two streams the prefetcher follows, two FMA
// chains (~30 GB/s from memory, ~70 from cache, where one row at a time
// waits on one chain's latency).
constexpr int kGemvCols = 8;
constexpr std::size_t kLongRowBytes = 4096;

// Weight rows processed together are sized to stay in L2 while every x row
// passes over them, so w is read from memory once per call.
constexpr std::size_t kWeightBlockBytes = 256 * 1024;

// Below this many multiply-adds (~1 us on one core) handing half the work to
// a helper, which costs a fraction of a microsecond while it spins (see
// thread_pool.hpp), saves less than it costs. A 288 x 288 layer is above it.
constexpr std::int64_t kMinParallelWork = 32 * 1024;

// out[r * out_stride + c] = dot(x[r], w[c]) for r < ROWS, c < COLS; rows of x
// and w are d_in floats apart.
template <int ROWS, int COLS>
void dot_tile(float* out, std::size_t out_stride, const float* x, const float* w, int d_in) {
  Lanes8 acc[ROWS][COLS];
  for (int r = 0; r < ROWS; ++r) {
    for (int c = 0; c < COLS; ++c) acc[r][c] = zero_lanes();
  }
  const int d_vector = d_in - d_in % 8;
  for (int k = 0; k < d_vector; k += 8) {
    Lanes8 w_lanes[COLS];
    for (int c = 0; c < COLS; ++c) w_lanes[c] = load_lanes(w + std::size_t(c) * d_in + k);
    for (int r = 0; r < ROWS; ++r) {
      const Lanes8 x_lanes = load_lanes(x + std::size_t(r) * d_in + k);
      for (int c = 0; c < COLS; ++c) acc[r][c] = multiply_add(x_lanes, w_lanes[c], acc[r][c]);
    }
  }
  for (int r = 0; r < ROWS; ++r) {
    const float* x_row = x + std::size_t(r) * d_in;
    for (int c = 0; c < COLS; ++c) {
      const float* w_row = w + std::size_t(c) * d_in;
      float sum = horizontal_sum(acc[r][c]);
      for (int k = d_vector; k < d_in; ++k) sum += x_row[k] * w_row[k];
      out[std::size_t(r) * out_stride + c] = sum;
    }
  }
}

using DotTileFn = void (*)(float*, std::size_t, const float*, const float*, int);

// kDotTiles[rows - 1][cols - 1]: full tiles and the smaller ones at the edges.
constexpr DotTileFn kDotTiles[kTileRows][kTileCols] = {
    {dot_tile<1, 1>, dot_tile<1, 2>, dot_tile<1, 3>},
    {dot_tile<2, 1>, dot_tile<2, 2>, dot_tile<2, 3>},
    {dot_tile<3, 1>, dot_tile<3, 2>, dot_tile<3, 3>},
    {dot_tile<4, 1>, dot_tile<4, 2>, dot_tile<4, 3>},
};

// kGemvTiles[cols - 1]: one x row against 1..kGemvCols weight rows.
constexpr DotTileFn kGemvTiles[kGemvCols] = {
    dot_tile<1, 1>, dot_tile<1, 2>, dot_tile<1, 3>, dot_tile<1, 4>,
    dot_tile<1, 5>, dot_tile<1, 6>, dot_tile<1, 7>, dot_tile<1, 8>,
};

// out_a = dot(x, w_a) and out_b = dot(x, w_b), each summed exactly as dot_tile sums.
void dot_two_rows(float* out_a, float* out_b, const float* x, const float* w_a, const float* w_b,
                  int d_in) {
  Lanes8 acc_a = zero_lanes(), acc_b = zero_lanes();
  const int d_vector = d_in - d_in % 8;
  for (int k = 0; k < d_vector; k += 8) {
    const Lanes8 x_lanes = load_lanes(x + k);
    acc_a = multiply_add(x_lanes, load_lanes(w_a + k), acc_a);
    acc_b = multiply_add(x_lanes, load_lanes(w_b + k), acc_b);
  }
  float sum_a = horizontal_sum(acc_a), sum_b = horizontal_sum(acc_b);
  for (int k = d_vector; k < d_in; ++k) {
    sum_a += x[k] * w_a[k];
    sum_b += x[k] * w_b[k];
  }
  *out_a = sum_a;
  *out_b = sum_b;
}

// Output columns [col_begin, col_end) of one row: a straight pass over those rows of w.
void gemv_columns(float* out, const float* x, const float* w, int d_in, int col_begin,
                  int col_end) {
  if (std::size_t(d_in) * sizeof(float) < kLongRowBytes) {
    // Two streams, each reading its half of the rows in address order: two
    // FMA chains in flight, and a pattern the prefetcher follows.
    const int half = (col_end - col_begin) / 2;
    for (int j = col_begin; j < col_begin + half; ++j) {
      dot_two_rows(out + j, out + j + half, x, w + std::size_t(j) * d_in,
                   w + std::size_t(j + half) * d_in, d_in);
    }
    if ((col_end - col_begin) % 2 != 0) {
      dot_tile<1, 1>(out + col_end - 1, 0, x, w + std::size_t(col_end - 1) * d_in, d_in);
    }
    return;
  }
  for (int j = col_begin; j < col_end; j += kGemvCols) {
    const int cols = std::min(kGemvCols, col_end - j);
    kGemvTiles[cols - 1](out + j, 0, x, w + std::size_t(j) * d_in, d_in);
  }
}

// Output columns [col_begin, col_end) for all n rows.
void matmul_columns(float* out, const float* x, const float* w, int n, int d_in, int d_out,
                    int col_begin, int col_end) {
  if (n == 1) {
    gemv_columns(out, x, w, d_in, col_begin, col_end);
    return;
  }
  const std::size_t row_bytes = std::size_t(d_in) * sizeof(float);
  const int block_cols =
      std::max<int>(kTileCols, int(kWeightBlockBytes / row_bytes) / kTileCols * kTileCols);
  for (int block_begin = col_begin; block_begin < col_end; block_begin += block_cols) {
    const int block_end = std::min(block_begin + block_cols, col_end);
    for (int i = 0; i < n; i += kTileRows) {
      const int rows = std::min(kTileRows, n - i);
      for (int j = block_begin; j < block_end; j += kTileCols) {
        const int cols = std::min(kTileCols, block_end - j);
        kDotTiles[rows - 1][cols - 1](out + std::size_t(i) * d_out + j, std::size_t(d_out),
                                      x + std::size_t(i) * d_in, w + std::size_t(j) * d_in, d_in);
      }
    }
  }
}

}  // namespace

void matmul(float* out, const float* x, const float* w, int n, int d_in, int d_out,
            ThreadPool* pool) {
  const std::int64_t work = std::int64_t(n) * d_in * d_out;
  if (pool == nullptr || pool->num_threads() == 1 || work < kMinParallelWork) {
    matmul_columns(out, x, w, n, d_in, d_out, 0, d_out);
    return;
  }
  // Threads own disjoint column ranges, in whole tiles; each streams its own
  // slice of w, and no dot product is ever split between threads.
  const int tile_cols = n == 1 ? kGemvCols : kTileCols;
  const std::int64_t col_tiles = (d_out + tile_cols - 1) / tile_cols;
  pool->parallel_for(col_tiles, [&](std::int64_t tile_begin, std::int64_t tile_end) {
    const int col_begin = int(tile_begin) * tile_cols;
    const int col_end = std::min(int(tile_end) * tile_cols, d_out);
    matmul_columns(out, x, w, n, d_in, d_out, col_begin, col_end);
  });
}

void matmul_reference(float* out, const float* x, const float* w, int n, int d_in, int d_out) {
  for (int i = 0; i < n; ++i) {
    for (int j = 0; j < d_out; ++j) {
      double sum = 0.0;
      for (int k = 0; k < d_in; ++k) {
        sum += double(x[std::size_t(i) * d_in + k]) * double(w[std::size_t(j) * d_in + k]);
      }
      out[std::size_t(i) * d_out + j] = float(sum);
    }
  }
}

}  // namespace kvc::cpu
