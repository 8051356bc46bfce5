// How fast this machine streams memory: the ceiling for any kernel that reads
// its inputs once (decode attention, GEMV). Kernel benchmarks report their
// bytes/s as a fraction of it ("of_read_bw"), measured in the same run.
#pragma once

#include <cstddef>

namespace kvc::bench {

// Size of the probe buffer: far larger than any cache.
constexpr std::size_t kProbeBytes = std::size_t(256) << 20;

// The benchmarks run on 1 and 2 threads; the bandwidth is measured for both.
constexpr int kMaxBenchThreads = 2;

// Reads `bytes` bytes of `data` once and returns a value that depends on all of them.
unsigned long long stream_read(const void* data, std::size_t bytes);

// Best-of-five streaming-read rate, in bytes/s, of a kProbeBytes buffer split
// across `threads` threads.
double measure_read_bandwidth(int threads);

// Measures the rate for 1..kMaxBenchThreads threads once (call from main).
void measure_startup_read_bandwidth();

// The startup rate for `threads` threads (1..kMaxBenchThreads).
double startup_read_bandwidth(int threads);

}  // namespace kvc::bench
