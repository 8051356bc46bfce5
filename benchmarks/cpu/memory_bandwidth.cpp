#include "benchmarks/cpu/memory_bandwidth.hpp"

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <vector>

#include "common/check.hpp"
#include "common/kv_memory.hpp"
#include "common/thread_pool.hpp"

namespace kvc::bench {

namespace {
// g_startup_read_bandwidth[pages][threads - 1], filled by measure_startup_read_bandwidth().
std::array<std::array<double, kMaxBenchThreads>, 2> g_startup_read_bandwidth{};

template <typename Buffer>
double best_read_rate(Buffer& buffer, int threads) {
  constexpr int kPasses = 5;
  ThreadPool pool(threads);
  std::memset(buffer.data(), 1, kProbeBytes);  // touch every page before timing
  const std::int64_t pages = std::int64_t(kProbeBytes / 4096);
  std::atomic<unsigned long long> sink{0};
  double best_seconds = 1e30;
  for (int pass = 0; pass < kPasses; ++pass) {
    const auto start = std::chrono::steady_clock::now();
    pool.parallel_for(pages, [&](std::int64_t page_begin, std::int64_t page_end) {
      const char* begin = reinterpret_cast<const char*>(buffer.data()) + page_begin * 4096;
      sink += stream_read(begin, std::size_t(page_end - page_begin) * 4096);
    });
    const std::chrono::duration<double> elapsed = std::chrono::steady_clock::now() - start;
    best_seconds = std::min(best_seconds, elapsed.count());
  }
  return double(kProbeBytes) / best_seconds;
}
}  // namespace

unsigned long long stream_read(const void* data, std::size_t bytes) {
  // Integer sums may be reordered freely, so the compiler vectorizes this loop
  // into wide loads: it runs at the speed of memory, not of the adds.
  const auto* words = static_cast<const std::uint64_t*>(data);
  const std::size_t count = bytes / sizeof(std::uint64_t);
  std::uint64_t sum = 0;
  for (std::size_t i = 0; i < count; ++i) sum += words[i];
  return sum;
}

double measure_read_bandwidth(int threads, ProbePages pages) {
  if (pages == ProbePages::kHuge) {
    KvFloats buffer(kProbeBytes / sizeof(float));
    return best_read_rate(buffer, threads);
  }
  std::vector<std::uint64_t> buffer(kProbeBytes / sizeof(std::uint64_t));
  return best_read_rate(buffer, threads);
}

void measure_startup_read_bandwidth() {
  for (ProbePages pages : {ProbePages::k4KiB, ProbePages::kHuge}) {
    for (int threads = 1; threads <= kMaxBenchThreads; ++threads) {
      g_startup_read_bandwidth[int(pages)][threads - 1] = measure_read_bandwidth(threads, pages);
    }
  }
}

double startup_read_bandwidth(int threads, ProbePages pages) {
  KVC_CHECK(threads >= 1 && threads <= kMaxBenchThreads, "no bandwidth probe for ", threads,
            " threads");
  return g_startup_read_bandwidth[int(pages)][threads - 1];
}

}  // namespace kvc::bench
