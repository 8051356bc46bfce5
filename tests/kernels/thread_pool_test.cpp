#include "common/thread_pool.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <mutex>
#include <stdexcept>
#include <thread>
#include <utility>
#include <vector>

#include "common/check.hpp"

namespace kvc {
namespace {

using Chunk = std::pair<std::int64_t, std::int64_t>;

std::vector<Chunk> record_chunks(ThreadPool& pool, std::int64_t n) {
  std::mutex mutex;
  std::vector<Chunk> chunks;
  pool.parallel_for(n, [&](std::int64_t begin, std::int64_t end) {
    std::lock_guard lock(mutex);
    chunks.emplace_back(begin, end);
  });
  std::sort(chunks.begin(), chunks.end());
  return chunks;
}

TEST(ThreadPool, AbsurdThreadCountsAreErrorsNotAborts) {
  EXPECT_THROW(ThreadPool(ThreadPool::kMaxThreads + 1), Error);
  EXPECT_THROW(ThreadPool(100'000'000), Error);
  ThreadPool all_cores(0);
  EXPECT_GE(all_cores.num_threads(), 1);
  EXPECT_LE(all_cores.num_threads(), ThreadPool::kMaxThreads);
}

TEST(ThreadPool, ChunksAreContiguousNonEmptyAndCoverTheRange) {
  for (int threads = 1; threads <= 4; ++threads) {
    ThreadPool pool(threads);
    EXPECT_EQ(pool.num_threads(), threads);
    for (std::int64_t n : {0, 1, 2, 3, 5, 7, 64, 1001}) {
      const std::vector<Chunk> chunks = record_chunks(pool, n);
      EXPECT_LE(std::int64_t(chunks.size()), std::min<std::int64_t>(n, threads));
      std::int64_t next = 0;
      for (const auto& [begin, end] : chunks) {
        EXPECT_EQ(begin, next) << "threads " << threads << ", n " << n;
        EXPECT_LT(begin, end);
        next = end;
      }
      EXPECT_EQ(next, n) << "threads " << threads;
    }
  }
}

// Chunks are claimed by whichever thread is free, so which thread runs which
// chunk is up to timing. What must hold: helpers do take part, so chunks that
// wait for each other all run at once, on distinct threads, the caller among them.
TEST(ThreadPool, ChunksRunConcurrentlyOnDistinctThreadsIncludingTheCaller) {
  constexpr int kThreads = 3;
  ThreadPool pool(kThreads);
  std::mutex mutex;
  std::vector<std::thread::id> ids;
  std::atomic<int> started{0};
  pool.parallel_for(kThreads, [&](std::int64_t, std::int64_t) {
    {
      std::lock_guard lock(mutex);
      ids.push_back(std::this_thread::get_id());
    }
    ++started;
    while (started.load() < kThreads) std::this_thread::yield();  // a barrier
  });
  ASSERT_EQ(ids.size(), std::size_t(kThreads));
  EXPECT_NE(std::find(ids.begin(), ids.end(), std::this_thread::get_id()), ids.end());
  std::sort(ids.begin(), ids.end());
  EXPECT_EQ(std::unique(ids.begin(), ids.end()), ids.end()) << "each chunk on its own thread";
}

TEST(ThreadPool, ManySmallJobsAddUp) {
  ThreadPool pool(2);
  std::atomic<std::int64_t> total{0};
  for (int job = 0; job < 5000; ++job) {
    pool.parallel_for(job % 7, [&](std::int64_t begin, std::int64_t end) {
      for (std::int64_t i = begin; i < end; ++i) total += i + 1;
    });
  }
  std::int64_t expected = 0;
  for (int job = 0; job < 5000; ++job) expected += (job % 7) * (job % 7 + 1) / 2;
  EXPECT_EQ(total.load(), expected);
}

TEST(ThreadPool, ExceptionReachesTheCallerAndThePoolStaysUsable) {
  ThreadPool pool(3);
  for (int round = 0; round < 20; ++round) {
    // Every chunk throws: exactly one exception comes out, nothing deadlocks.
    EXPECT_THROW(
        pool.parallel_for(3, [](std::int64_t, std::int64_t) { throw std::runtime_error("boom"); }),
        std::runtime_error);
    // Only a helper's chunk throws.
    EXPECT_THROW(pool.parallel_for(3,
                                   [](std::int64_t begin, std::int64_t) {
                                     if (begin == 2) throw std::logic_error("last chunk");
                                   }),
                 std::logic_error);
  }
  std::atomic<int> calls{0};
  pool.parallel_for(3, [&](std::int64_t, std::int64_t) { ++calls; });
  EXPECT_EQ(calls.load(), 3);
}

TEST(ThreadPool, NestedParallelForRunsInline) {
  ThreadPool pool(2);
  std::atomic<std::int64_t> inner_items{0};
  pool.parallel_for(2, [&](std::int64_t, std::int64_t) {
    pool.parallel_for(10,
                      [&](std::int64_t begin, std::int64_t end) { inner_items += end - begin; });
  });
  EXPECT_EQ(inner_items.load(), 20);
}

TEST(ThreadPool, NonPositiveSizeMeansAllHardwareThreads) {
  ThreadPool pool(0);
  EXPECT_GE(pool.num_threads(), 1);
}

}  // namespace
}  // namespace kvc
