// A small persistent thread pool for data-parallel loops (matmul rows, heads).
//
// Threads are created once and sleep between jobs, so a decode step that calls
// parallel_for ~10 times per layer pays no thread start-up cost.
#pragma once

#include <condition_variable>
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

  // num_threads <= 0 means "all hardware threads". The calling thread takes
  // part in every job, so a pool of N runs N-1 helper threads. Throws
  // kvc::Error above kMaxThreads, or when the system cannot start the threads.
  explicit ThreadPool(int num_threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int num_threads() const { return num_threads_; }

  // Calls fn(begin, end) on disjoint chunks covering [0, n), split into at
  // most num_threads() contiguous chunks; returns when all are done.
  // If fn throws, every chunk still finishes and the first exception is
  // rethrown here. A parallel_for issued from inside fn runs inline on the
  // calling thread (the helpers are busy with the outer job).
  void parallel_for(std::int64_t n, const std::function<void(std::int64_t, std::int64_t)>& fn);

 private:
  void stop_workers();
  void worker_loop(int worker_index);
  void run_chunk(int chunk_index);

  int num_threads_;
  std::vector<std::thread> workers_;
  std::mutex submit_mutex_;  // one job at a time when several threads share the pool
  std::mutex mutex_;         // guards everything below
  std::condition_variable job_ready_;
  std::condition_variable job_done_;
  const std::function<void(std::int64_t, std::int64_t)>* job_ = nullptr;
  std::int64_t job_size_ = 0;
  int job_chunks_ = 0;
  std::uint64_t job_generation_ = 0;
  int workers_pending_ = 0;
  std::exception_ptr first_error_;
  bool stopping_ = false;
};

// pool->parallel_for(n, fn), or fn(0, n) on the calling thread when there is
// no pool (callers may pass nullptr for "one thread").
void parallel_for(ThreadPool* pool, std::int64_t n,
                  const std::function<void(std::int64_t, std::int64_t)>& fn);

}  // namespace kvc
