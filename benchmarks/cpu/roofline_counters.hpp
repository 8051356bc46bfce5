// Plain-number counters that put a kernel's timing next to this machine's
// limits measured in the same run: the fraction of the streaming-read
// bandwidth (of_read_bw) and of the FMA peak (of_fma_peak).
//
// Google Benchmark prints a counter built with a "rate" flag as "x/s"; these
// are computed from our own wall-clock timing and set with kDefaults, so they
// print as the plain numbers they are.
#pragma once

#include <benchmark/benchmark.h>

#include <chrono>

#include "benchmarks/cpu/fma_peak.hpp"
#include "benchmarks/cpu/memory_bandwidth.hpp"

namespace kvc::bench {

// Wall-clock seconds per iteration of a benchmark loop: start it before the
// loop, read it after (the pool's helper threads do part of the work, so CPU
// time of the calling thread would undercount).
class LoopTimer {
 public:
  LoopTimer() : start_(std::chrono::steady_clock::now()) {}
  double seconds_per_iteration(const benchmark::State& state) const {
    const std::chrono::duration<double> elapsed = std::chrono::steady_clock::now() - start_;
    return elapsed.count() / double(state.iterations());
  }

 private:
  std::chrono::steady_clock::time_point start_;
};

// GB_per_s, of_read_bw and of_huge_read_bw for a kernel that reads
// bytes_per_iteration from memory: of_read_bw against the probe on 4 KiB
// pages (what a plain std::vector gets, e.g. GEMV's weights), of_huge_read_bw
// against the probe on 2 MiB pages (what the KV caches get).
inline void report_read_roof(benchmark::State& state, double bytes_per_iteration,
                             double seconds_per_iteration, int threads) {
  const double bytes_per_second = bytes_per_iteration / seconds_per_iteration;
  state.counters["GB_per_s"] = benchmark::Counter(bytes_per_second / 1e9);
  state.counters["of_read_bw"] =
      benchmark::Counter(bytes_per_second / startup_read_bandwidth(threads));
  state.counters["of_huge_read_bw"] =
      benchmark::Counter(bytes_per_second / startup_read_bandwidth(threads, ProbePages::kHuge));
}

// GFLOP_per_s and of_fma_peak for a kernel that does flops_per_iteration.
inline void report_fma_roof(benchmark::State& state, double flops_per_iteration,
                            double seconds_per_iteration, int threads) {
  const double flops_per_second = flops_per_iteration / seconds_per_iteration;
  state.counters["GFLOP_per_s"] = benchmark::Counter(flops_per_second / 1e9);
  state.counters["of_fma_peak"] = benchmark::Counter(flops_per_second / startup_fma_peak(threads));
}

}  // namespace kvc::bench
