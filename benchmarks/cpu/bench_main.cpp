// The main() of every CPU benchmark program: measures the memory bandwidth and
// the FMA peak once, then runs the benchmarks, which report their bytes/s and
// FLOP/s as fractions of them ("of_read_bw", "of_fma_peak").
#include <benchmark/benchmark.h>

#include <string>

#include "benchmarks/cpu/fma_peak.hpp"
#include "benchmarks/cpu/memory_bandwidth.hpp"

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  kvc::bench::measure_startup_read_bandwidth();
  kvc::bench::measure_startup_fma_peak();
  for (int threads = 1; threads <= kvc::bench::kMaxBenchThreads; ++threads) {
    const std::string suffix = std::to_string(threads) + "_threads";
    benchmark::AddCustomContext(std::string("read_GB/s_").append(suffix),
                                std::to_string(kvc::bench::startup_read_bandwidth(threads) / 1e9));
    benchmark::AddCustomContext(
        std::string("huge_read_GB/s_").append(suffix),
        std::to_string(kvc::bench::startup_read_bandwidth(threads, kvc::bench::ProbePages::kHuge) /
                       1e9));
    benchmark::AddCustomContext(std::string("fma_GFLOP/s_").append(suffix),
                                std::to_string(kvc::bench::startup_fma_peak(threads) / 1e9));
  }
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
