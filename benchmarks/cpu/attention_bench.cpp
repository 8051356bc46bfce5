// Decode attention over a contiguous KV cache, every variant of
// cpu::attention_decode_variant: one new token's 32 query heads against n_ctx
// cached positions of 8 KV heads x 128 dims (a Llama-3-8B layer, g = 4).
// Every cached byte must be read once per step, so the yardstick is the read
// bandwidth this binary measures at startup: of_read_bw is the cache's bytes
// (K and V) per second over it, on the same thread count. Variant 1 reads each
// KV head g times, so it can pass 1 only from cache hits.
//   args: variant, n_ctx, threads (variants 1 and 3 run on one thread; 4 is
//   the bit-exact fast kernel, 5 the split-context one that rounds its own way)
//   build-dev/bin/bench_cpu_kernels --benchmark_filter=AttentionDecode
#include <benchmark/benchmark.h>

#include <cstddef>
#include <cstdint>
#include <vector>

#include "benchmarks/cpu/decode_inputs.hpp"
#include "benchmarks/cpu/roofline_counters.hpp"
#include "common/thread_pool.hpp"
#include "kernels/cpu/ops.hpp"

namespace kvc::bench {
namespace {

constexpr int kHeads = 32;
constexpr int kKvHeads = 8;
constexpr int kHeadDim = 128;

void BM_AttentionDecode(benchmark::State& state) {
  const int variant = int(state.range(0));
  const int n_ctx = int(state.range(1));
  const int threads = int(state.range(2));
  ThreadPool pool(threads);
  const std::size_t cache_floats = std::size_t(n_ctx) * kKvHeads * kHeadDim;
  // q: [kHeads][kHeadDim], k_cache/v_cache: [n_ctx][kKvHeads][kHeadDim]
  const auto [q, k_cache, v_cache] = make_decode_inputs(kHeads, kHeadDim, cache_floats);
  std::vector<float> out(kHeads * kHeadDim);
  std::vector<float> scratch(
      cpu::attention_decode_scratch_floats(variant, n_ctx, kHeads, kKvHeads, kHeadDim));

  const LoopTimer timer;
  for (auto _ : state) {
    cpu::attention_decode_variant(variant, out.data(), q.data(), k_cache.data(), v_cache.data(),
                                  n_ctx, kHeads, kKvHeads, kHeadDim, scratch.data(), &pool);
    benchmark::ClobberMemory();
  }
  const double bytes = 2.0 * sizeof(float) * double(cache_floats);  // K and V
  report_read_roof(state, bytes, timer.seconds_per_iteration(state), threads);
}

void attention_cases(benchmark::internal::Benchmark* bench) {
  bench->ArgNames({"variant", "n_ctx", "threads"});
  for (int n_ctx : {4096, 8192, 16384, 32768}) {
    for (int variant : {1, 3}) bench->Args({variant, n_ctx, 1});
    for (int variant : {4, 5}) {
      for (int threads : {1, 2}) bench->Args({variant, n_ctx, threads});
    }
  }
}
BENCHMARK(BM_AttentionDecode)
    ->Apply(attention_cases)
    ->Unit(benchmark::kMicrosecond)
    ->MinTime(0.2)
    ->UseRealTime();

}  // namespace
}  // namespace kvc::bench
