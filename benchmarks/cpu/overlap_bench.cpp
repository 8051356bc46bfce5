// Does arithmetic hide behind memory reads on one core? Decode attention
// does g FMAs per float of K or V it reads (g = query heads per KV head), so
// with g = 4 the fp32 split kernel's arithmetic takes about as long as its
// reads. If the core overlapped the two, a kernel would run at the slower
// one's speed; if not, at their sum. This measures which, with nothing but a
// walk and FMAs: each iteration walks a 256 MiB buffer on 2 MiB pages (as the
// KV caches are) doing `fmas` FMAs per float, does the same arithmetic over
// a buffer that stays in L2, and walks the 256 MiB again with adds only:
//   of_huge_read_bw  bytes/s of the walk over memory against the probe
//   compute_alone    in-L2 time / walk time: the arithmetic's share
//   read_alone       adds-only walk time / walk time: the reads' share
//   overlap          (compute + read - walk) / min(compute, read):
//                    1 = the shorter one is hidden, 0 = the two add up
// `rows` = 1 walks in address order; more walks that many 4 KiB rows side by
// side, `piece_bytes` of each in turn: 6 rows of 512 bytes is the split
// kernel's key walk (one KV head's part of six positions at once), 8 rows of
// 64 bytes its value walk (16 dims of eight positions at once).
//   build-dev/bin/bench_cpu_kernels --benchmark_filter=ReadWhileComputing
#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <cstddef>

#include "benchmarks/cpu/roofline_counters.hpp"
#include "common/kv_memory.hpp"

#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#endif

namespace kvc::bench {
namespace {

#if defined(__AVX2__) && defined(__FMA__)

constexpr std::size_t kRowFloats = 1024;  // one position's K row: 8 KV heads x 128 dims
constexpr std::size_t kMemoryFloats = (std::size_t(256) << 20) / sizeof(float);
constexpr std::size_t kL2Floats = (std::size_t(192) << 10) / sizeof(float);  // 48 rows: 6 x 8

// FMAS FMAs per float of data[0, count) (FMAS = 0: only adds), into eight
// independent sums, so the FMA units, not their latency, bound it.
template <int FMAS>
void fma_over(__m256* sums, const float* data, std::size_t count) {
  const __m256 weights[4] = {_mm256_set1_ps(1e-3f), _mm256_set1_ps(2e-3f), _mm256_set1_ps(3e-3f),
                             _mm256_set1_ps(4e-3f)};
  for (std::size_t i = 0; i < count; i += 16) {
    const __m256 a = _mm256_loadu_ps(data + i), b = _mm256_loadu_ps(data + i + 8);
    if constexpr (FMAS == 0) {
      sums[0] = _mm256_add_ps(sums[0], a);
      sums[4] = _mm256_add_ps(sums[4], b);
    }
#pragma GCC unroll 8
    for (int f = 0; f < FMAS; ++f) {
      sums[f % 4] = _mm256_fmadd_ps(weights[f % 4], a, sums[f % 4]);
      sums[4 + f % 4] = _mm256_fmadd_ps(weights[f % 4], b, sums[4 + f % 4]);
    }
  }
}

// The walk over data[0, count): in address order (rows = 1), or `rows` rows
// of 4 KiB side by side, a piece of `piece_floats` of each in turn.
template <int FMAS>
float walk(const float* data, std::size_t count, int rows, std::size_t piece_floats) {
  __m256 sums[8];
  std::fill(sums, sums + 8, _mm256_setzero_ps());
  if (rows == 1) {
    fma_over<FMAS>(sums, data, count);
  } else {
    const std::size_t group_floats = std::size_t(rows) * kRowFloats;
    for (std::size_t group = 0; group + group_floats <= count; group += group_floats) {
      for (std::size_t piece = 0; piece < kRowFloats; piece += piece_floats) {
        for (int row = 0; row < rows; ++row) {
          fma_over<FMAS>(sums, data + group + row * kRowFloats + piece, piece_floats);
        }
      }
    }
  }
  for (int i = 1; i < 8; ++i) sums[0] = _mm256_add_ps(sums[0], sums[i]);
  return _mm256_cvtss_f32(sums[0]);
}

using WalkFn = float (*)(const float*, std::size_t, int, std::size_t);
WalkFn walk_for(int fmas) {
  switch (fmas) {
    case 0:
      return walk<0>;
    case 4:
      return walk<4>;
    default:
      return walk<8>;
  }
}

double seconds_of(auto&& work) {
  const auto start = std::chrono::steady_clock::now();
  work();
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

void BM_ReadWhileComputing(benchmark::State& state) {
  const WalkFn walk_fn = walk_for(int(state.range(0)));
  const WalkFn read_fn = walk_for(0);
  const int rows = int(state.range(1));
  const std::size_t piece_floats = std::size_t(state.range(2)) / sizeof(float);
  const KvFloats memory = zeroed_kv_floats(kMemoryFloats);
  const KvFloats in_l2 = zeroed_kv_floats(kL2Floats);
  double memory_seconds = 0.0, compute_seconds = 0.0, read_seconds = 0.0;
  for (auto _ : state) {
    const double seconds = seconds_of([&] {
      benchmark::DoNotOptimize(walk_fn(memory.data(), kMemoryFloats, rows, piece_floats));
    });
    state.SetIterationTime(seconds);
    memory_seconds += seconds;
    compute_seconds += seconds_of([&] {
      for (std::size_t done = 0; done < kMemoryFloats; done += kL2Floats) {
        benchmark::DoNotOptimize(walk_fn(in_l2.data(), kL2Floats, rows, piece_floats));
      }
    });
    read_seconds += seconds_of([&] {
      benchmark::DoNotOptimize(read_fn(memory.data(), kMemoryFloats, rows, piece_floats));
    });
  }
  const double iterations = double(state.iterations());
  const double walk_s = memory_seconds / iterations, compute_s = compute_seconds / iterations;
  const double read_s = read_seconds / iterations;
  const double bytes = double(kMemoryFloats * sizeof(float));
  report_read_roof(state, bytes, walk_s, 1);
  state.counters["compute_alone"] = benchmark::Counter(compute_s / walk_s);
  state.counters["read_alone"] = benchmark::Counter(read_s / walk_s);
  state.counters["overlap"] =
      benchmark::Counter((compute_s + read_s - walk_s) / std::min(compute_s, read_s));
}

#else

void BM_ReadWhileComputing(benchmark::State& state) {
  state.SkipWithError("needs a build with AVX2 and FMA (KVC_CPU_ISA=x86-64-v3 or native)");
}

#endif

BENCHMARK(BM_ReadWhileComputing)
    ->ArgNames({"fmas", "rows", "piece_bytes"})
    ->Args({4, 1, 4096})
    ->Args({8, 1, 4096})
    ->ArgsProduct({{4, 8}, {3, 6, 8}, {64, 512}})
    ->Unit(benchmark::kMillisecond)
    ->UseManualTime()
    ->MinTime(0.5);

}  // namespace
}  // namespace kvc::bench
