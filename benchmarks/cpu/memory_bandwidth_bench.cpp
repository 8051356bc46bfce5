// The bandwidth probes themselves, as benchmarks: a streaming read of
// kProbeBytes on 1 and 2 threads, and a single-threaded memcpy.
#include <benchmark/benchmark.h>

#include <cstring>
#include <vector>

#include "benchmarks/cpu/memory_bandwidth.hpp"

namespace kvc::bench {
namespace {

void BM_StreamRead(benchmark::State& state) {
  double bytes_per_second = 0.0;
  for (auto _ : state) bytes_per_second = measure_read_bandwidth(int(state.range(0)));
  state.counters["read_GB_per_s"] = benchmark::Counter(bytes_per_second / 1e9);
}
BENCHMARK(BM_StreamRead)
    ->ArgName("threads")
    ->DenseRange(1, kMaxBenchThreads)
    ->Iterations(1)
    ->Unit(benchmark::kMillisecond);

// Bytes moved = read + written.
void BM_Memcpy(benchmark::State& state) {
  std::vector<char> source(kProbeBytes, 1), destination(kProbeBytes, 0);
  for (auto _ : state) {
    std::memcpy(destination.data(), source.data(), kProbeBytes);
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(state.iterations() * 2 * kProbeBytes);
}
BENCHMARK(BM_Memcpy)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace
}  // namespace kvc::bench
