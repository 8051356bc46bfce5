#include "benchmarks/cpu/fma_peak.hpp"

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>

#include "benchmarks/cpu/memory_bandwidth.hpp"
#include "common/check.hpp"
#include "common/thread_pool.hpp"

#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#endif

namespace kvc::bench {

namespace {

// g_startup_fma_peak[threads - 1], filled by measure_startup_fma_peak().
std::array<double, kMaxBenchThreads> g_startup_fma_peak{};

// Independent accumulators: more than FMA latency x issue width (4 x 2 on
// current x86 cores), so the loop runs at the FMA units' throughput.
constexpr int kChains = 12;
constexpr std::int64_t kSteps = 2'000'000;

// Runs kSteps steps of kChains 8-wide multiply-adds; returns a value that
// depends on all of them so none is optimized away.
float multiply_add_chains(float seed) {
#if defined(__AVX2__) && defined(__FMA__)
  __m256 acc[kChains];
  for (int c = 0; c < kChains; ++c) acc[c] = _mm256_set1_ps(seed + float(c));
  const __m256 a = _mm256_set1_ps(0.999999f), b = _mm256_set1_ps(1e-7f);
  for (std::int64_t step = 0; step < kSteps; ++step) {
    for (int c = 0; c < kChains; ++c) acc[c] = _mm256_fmadd_ps(acc[c], a, b);
  }
  __m256 total = acc[0];
  for (int c = 1; c < kChains; ++c) total = _mm256_add_ps(total, acc[c]);
  return _mm256_cvtss_f32(total);
#else
  float acc[kChains][8];
  for (int c = 0; c < kChains; ++c) {
    for (float& lane : acc[c]) lane = seed + float(c);
  }
  for (std::int64_t step = 0; step < kSteps; ++step) {
    for (auto& chain : acc) {
      for (float& lane : chain) lane = lane * 0.999999f + 1e-7f;
    }
  }
  float total = 0.0f;
  for (auto& chain : acc) total += chain[0];
  return total;
#endif
}

}  // namespace

double measure_fma_peak(int threads) {
  constexpr int kPasses = 5;
  ThreadPool pool(threads);
  std::atomic<int> sink{0};
  double best_seconds = 1e30;
  for (int pass = 0; pass < kPasses; ++pass) {
    const auto start = std::chrono::steady_clock::now();
    pool.parallel_for(threads, [&](std::int64_t begin, std::int64_t end) {
      for (std::int64_t t = begin; t < end; ++t) sink += multiply_add_chains(float(t)) > 0.0f;
    });
    const std::chrono::duration<double> elapsed = std::chrono::steady_clock::now() - start;
    best_seconds = std::min(best_seconds, elapsed.count());
  }
  const double flops = 2.0 * 8 * kChains * double(kSteps) * threads;
  return flops / best_seconds;
}

void measure_startup_fma_peak() {
  for (int threads = 1; threads <= kMaxBenchThreads; ++threads) {
    g_startup_fma_peak[threads - 1] = measure_fma_peak(threads);
  }
}

double startup_fma_peak(int threads) {
  KVC_CHECK(threads >= 1 && threads <= kMaxBenchThreads, "no FMA peak probe for ", threads,
            " threads");
  return g_startup_fma_peak[threads - 1];
}

}  // namespace kvc::bench
