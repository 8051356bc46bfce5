// matmul at model shapes: GEMV (n = 1, one decode token), bound by reading the
// weights, so reported as a fraction of the read bandwidth (of_huge_read_bw:
// the weights are on 2 MiB pages, as the engine's are); and
// GEMM (n = 64, a prefill chunk or a scheduler batch), bound by multiply-adds,
// so reported as a fraction of the FMA peak (of_fma_peak). Both measured by
// this binary at startup, on 1 and 2 threads.
//   args: n, d_out, d_in, threads
//   build-dev/bin/bench_cpu_kernels --benchmark_filter=Matmul
#include <benchmark/benchmark.h>

#include <cstddef>
#include <cstdint>
#include <vector>

#include "benchmarks/cpu/roofline_counters.hpp"
#include "common/page_memory.hpp"
#include "common/thread_pool.hpp"
#include "kernels/cpu/ops.hpp"

namespace kvc::bench {
namespace {

// Cheap deterministic values in [-1, 1): filling 64 MiB of weights should not
// dominate the benchmark's start-up. Page-aligned, on 2 MiB pages from 2 MiB,
// like the engine's weights (common/page_memory.hpp).
PageFloats pseudo_random(std::size_t size, unsigned seed) {
  PageFloats values(size);
  unsigned state = seed;
  for (float& value : values) {
    state = state * 1664525u + 1013904223u;
    value = float(state >> 8) / float(1u << 23) - 1.0f;
  }
  return values;
}

void BM_Matmul(benchmark::State& state) {
  const int n = int(state.range(0));
  const int d_out = int(state.range(1));
  const int d_in = int(state.range(2));
  const int threads = int(state.range(3));
  ThreadPool pool(threads);
  const auto x = pseudo_random(std::size_t(n) * d_in, 1);
  const auto w = pseudo_random(std::size_t(d_out) * d_in, 2);
  std::vector<float> out(std::size_t(n) * d_out);

  const LoopTimer timer;
  for (auto _ : state) {
    cpu::matmul(out.data(), x.data(), w.data(), n, d_in, d_out, &pool);
    benchmark::ClobberMemory();
  }
  const double seconds = timer.seconds_per_iteration(state);

  const double flops = 2.0 * n * d_in * d_out;
  const double bytes = sizeof(float) * (double(d_out) * d_in + double(n) * (d_in + d_out));
  report_read_roof(state, bytes, seconds, threads);
  report_fma_roof(state, flops, seconds, threads);
}

void matmul_shapes(benchmark::internal::Benchmark* bench) {
  bench->ArgNames({"n", "d_out", "d_in", "threads"});
  // stories15M (dim 288, hidden 768, vocab 32000) and a 4096-wide layer.
  const int shapes[][2] = {{288, 288}, {768, 288}, {32000, 288}, {4096, 4096}};
  for (int n : {1, 64}) {
    for (const auto& [d_out, d_in] : shapes) {
      for (int threads : {1, 2}) bench->Args({n, d_out, d_in, threads});
    }
  }
}
BENCHMARK(BM_Matmul)
    ->Apply(matmul_shapes)
    ->Unit(benchmark::kMicrosecond)
    ->MinTime(0.2)
    ->UseRealTime();  // the pool's helper threads do half the work

}  // namespace
}  // namespace kvc::bench
