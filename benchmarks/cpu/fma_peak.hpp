// How fast this machine multiplies and adds: the ceiling for a kernel that
// reuses its inputs from registers (batched GEMM). Benchmarks report their
// FLOP/s as a fraction of it ("of_fma_peak"), measured in the same run.
#pragma once

namespace kvc::bench {

// Best-of-five FLOP/s of independent 8-wide fused multiply-add chains (plain
// multiply and add without FMA), enough of them to hide the latency, on
// `threads` threads.
double measure_fma_peak(int threads);

// Measures the peak for 1..kMaxBenchThreads threads once (call from main).
void measure_startup_fma_peak();

// The startup peak for `threads` threads (1..kMaxBenchThreads).
double startup_fma_peak(int threads);

}  // namespace kvc::bench
