// Decode attention over a contiguous KV cache: one new token's 32 query heads
// against n_ctx cached positions of 8 KV heads x 128 dims (a Llama-3-8B layer).
// Every cached byte is read once per step, so the yardstick is memory
// bandwidth: "of_read_bw" is bytes/s over the single-thread streaming-read
// rate (this kernel runs on one thread).
//   args: n_ctx
#include <benchmark/benchmark.h>

#include <cstddef>
#include <cstdint>
#include <vector>

#include "benchmarks/cpu/decode_inputs.hpp"
#include "benchmarks/cpu/memory_bandwidth.hpp"
#include "kernels/cpu/ops.hpp"

namespace kvc::bench {
namespace {

constexpr int kHeads = 32;
constexpr int kKvHeads = 8;
constexpr int kHeadDim = 128;

void BM_AttentionDecode(benchmark::State& state) {
  const int n_ctx = int(state.range(0));
  const std::size_t cache_floats = std::size_t(n_ctx) * kKvHeads * kHeadDim;
  // q: [kHeads][kHeadDim], k_cache/v_cache: [n_ctx][kKvHeads][kHeadDim]
  const auto [q, k_cache, v_cache] = make_decode_inputs(kHeads, kHeadDim, cache_floats);
  std::vector<float> out(kHeads * kHeadDim), scores(n_ctx);

  for (auto _ : state) {
    cpu::attention_decode(out.data(), q.data(), k_cache.data(), v_cache.data(), n_ctx, kHeads,
                          kKvHeads, kHeadDim, scores.data());
    benchmark::ClobberMemory();
  }

  const double bytes = 2.0 * sizeof(float) * double(cache_floats);  // K and V
  state.SetBytesProcessed(std::int64_t(state.iterations() * bytes));
  state.counters["of_read_bw"] = benchmark::Counter(bytes / startup_read_bandwidth(1),
                                                    benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(BM_AttentionDecode)
    ->ArgName("n_ctx")
    ->Arg(256)
    ->Arg(1024)
    ->Arg(4096)
    ->Arg(8192)
    ->Unit(benchmark::kMicrosecond)
    ->MinTime(0.2)
    ->UseRealTime();

}  // namespace
}  // namespace kvc::bench
