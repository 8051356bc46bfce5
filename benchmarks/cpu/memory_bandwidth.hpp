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

// Which pages the probe reads: a plain std::vector's (4 KiB pages where
// transparent huge pages are opt-in, as on Debian), or 2 MiB pages, as the KV
// caches are (common/kv_memory.hpp). One core of this course's machine read
// 2 MiB pages ~1.6x faster than 4 KiB ones (~35 against ~22 GB/s), so a
// kernel over the caches is held to the huge-page rate.
enum class ProbePages { k4KiB, kHuge };

// Best-of-five streaming-read rate, in bytes/s, of a kProbeBytes buffer split
// across `threads` threads.
double measure_read_bandwidth(int threads, ProbePages pages = ProbePages::k4KiB);

// Measures the rates for 1..kMaxBenchThreads threads once (call from main).
void measure_startup_read_bandwidth();

// The startup rate for `threads` threads (1..kMaxBenchThreads).
double startup_read_bandwidth(int threads, ProbePages pages = ProbePages::k4KiB);

}  // namespace kvc::bench
