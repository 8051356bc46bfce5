// bench_cpu_kernels: measures the memory bandwidth once, then runs the kernel
// benchmarks, which report their bytes/s as a fraction of it ("of_read_bw").
#include <benchmark/benchmark.h>

#include <string>

#include "benchmarks/cpu/memory_bandwidth.hpp"

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  kvc::bench::measure_startup_read_bandwidth();
  for (int threads = 1; threads <= kvc::bench::kMaxBenchThreads; ++threads) {
    benchmark::AddCustomContext("read_GB/s_" + std::to_string(threads) + "_threads",
                                std::to_string(kvc::bench::startup_read_bandwidth(threads) / 1e9));
  }
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
