// A small persistent thread pool for data-parallel loops (matmul columns, KV heads).
//
// Threads are created once. A decode step calls parallel_for tens of times per
// layer, a few microseconds apart, so waking a helper must cost far less than
// the microseconds a 288-wide matmul takes: between jobs a helper spins on an
// atomic job counter for a short while (kSpinMicroseconds) and only then goes
// to sleep in the kernel (futex via std::atomic::wait). Spinning is bounded,
// so an idle pool sleeps.
//
// Chunks are claimed, not assigned: the caller and the helpers take the next
// unclaimed chunk until none is left. On a busy machine, where a helper may not
// be scheduled for milliseconds, the caller runs that helper's chunk itself
// instead of waiting for it. Which thread runs a chunk never changes the
// chunk's range, so results do not depend on it.
#pragma once

#include <atomic>
#include <cstdint>
#include <exception>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace kvc {

class ThreadPool {
 public:
  // More threads than any machine this course runs on has cores: a bigger
  // count is a typo, not a plan.
  static constexpr int kMaxThreads = 1024;

  // num_threads <= 0 means "all hardware threads" (at most kMaxThreads). The
  // calling thread takes part in every job, so a pool of N runs N-1 helper
  // threads. Throws kvc::Error above kMaxThreads, or when the system cannot
  // start the threads.
  explicit ThreadPool(int num_threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int num_threads() const { return num_threads_; }

  // Calls fn(begin, end) on disjoint chunks covering [0, n), split into at
  // most num_threads() contiguous chunks of near-equal size (chunk i is
  // [n * i / c, n * (i + 1) / c)); returns when all are done. If fn throws,
  // every chunk still finishes and the first exception is rethrown here. A
  // parallel_for issued from inside fn runs inline on the calling thread (the
  // helpers are busy with the outer job).
  void parallel_for(std::int64_t n, const std::function<void(std::int64_t, std::int64_t)>& fn);

  // How long an idle thread polls before it sleeps: longer than the gap
  // between two matmuls of a decode step, short enough not to burn a core
  // between requests.
  static constexpr int kSpinMicroseconds = 100;

 private:
  void stop_workers();
  void worker_loop();
  // Claims and runs chunks of the job posted as `generation` until none is left.
  void run_chunks(std::uint32_t generation);

  int num_threads_;
  std::vector<std::thread> workers_;
  std::mutex submit_mutex_;  // one job at a time when several threads share the pool
  std::mutex error_mutex_;   // guards first_error_

  // The job, written by the submitter before it publishes the job in
  // claims_, and read only by a thread holding a claimed chunk; the submitter
  // rewrites them only after every chunk is done.
  const std::function<void(std::int64_t, std::int64_t)>* job_ = nullptr;
  std::int64_t job_size_ = 0;
  std::exception_ptr first_error_;

  // claims_ packs [generation:32][chunks:16][next unclaimed chunk:16], so a
  // claim (a compare-and-swap) can only succeed for the job it was meant for.
  alignas(64) std::atomic<std::uint64_t> claims_{0};
  // Bumped once per job: what idle helpers spin and sleep on.
  alignas(64) std::atomic<std::uint32_t> job_generation_{0};
  std::atomic<int> sleeping_helpers_{0};
  alignas(64) std::atomic<int> chunks_done_{0};
  std::atomic<bool> caller_sleeping_{false};
  alignas(64) std::atomic<bool> stopping_{false};
};

// pool->parallel_for(n, fn), or fn(0, n) on the calling thread when there is
// no pool (callers may pass nullptr for "one thread").
void parallel_for(ThreadPool* pool, std::int64_t n,
                  const std::function<void(std::int64_t, std::int64_t)>& fn);

}  // namespace kvc
