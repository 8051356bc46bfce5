#include "common/thread_pool.hpp"

#include <algorithm>
#include <system_error>
#include <utility>

#include "common/check.hpp"

namespace kvc {

namespace {
// True while this thread runs a chunk of some job: a nested parallel_for then
// runs inline instead of waiting for helpers that are busy with the outer job.
thread_local bool t_inside_job = false;
}  // namespace

ThreadPool::ThreadPool(int num_threads) {
  if (num_threads <= 0) {
    num_threads = static_cast<int>(
        std::clamp(std::thread::hardware_concurrency(), 1u, static_cast<unsigned>(kMaxThreads)));
  }
  KVC_CHECK(num_threads <= kMaxThreads, "thread pool: ", num_threads, " threads is more than ",
            kMaxThreads);
  num_threads_ = num_threads;
  // Helper i runs chunk i of every job; the calling thread runs chunk 0.
  workers_.reserve(num_threads_ - 1);
  try {
    for (int i = 1; i < num_threads_; ++i) {
      workers_.emplace_back([this, i] { worker_loop(i); });
    }
  } catch (const std::system_error& error) {
    stop_workers();  // the destructor does not run for a constructor that throws
    KVC_FAIL("thread pool: cannot start ", num_threads, " threads (", error.what(), ")");
  }
}

ThreadPool::~ThreadPool() {
  stop_workers();
}

void ThreadPool::stop_workers() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  job_ready_.notify_all();
  for (std::thread& worker : workers_) worker.join();
}

void ThreadPool::parallel_for(std::int64_t n,
                              const std::function<void(std::int64_t, std::int64_t)>& fn) {
  if (n <= 0) return;
  if (num_threads_ == 1 || n == 1 || t_inside_job) {
    fn(0, n);
    return;
  }

  std::lock_guard submit(submit_mutex_);
  {
    std::lock_guard lock(mutex_);
    job_ = &fn;
    job_size_ = n;
    job_chunks_ = static_cast<int>(std::min<std::int64_t>(n, num_threads_));
    workers_pending_ = job_chunks_ - 1;
    first_error_ = nullptr;
    ++job_generation_;
  }
  job_ready_.notify_all();

  run_chunk(0);

  std::exception_ptr error;
  {
    std::unique_lock lock(mutex_);
    job_done_.wait(lock, [this] { return workers_pending_ == 0; });
    job_ = nullptr;
    error = std::exchange(first_error_, nullptr);
  }
  if (error) std::rethrow_exception(error);
}

void ThreadPool::run_chunk(int chunk_index) {
  const std::int64_t begin = job_size_ * chunk_index / job_chunks_;
  const std::int64_t end = job_size_ * (chunk_index + 1) / job_chunks_;
  t_inside_job = true;
  try {
    (*job_)(begin, end);
  } catch (...) {
    std::lock_guard lock(mutex_);
    if (!first_error_) first_error_ = std::current_exception();
  }
  t_inside_job = false;
}

void ThreadPool::worker_loop(int worker_index) {
  std::uint64_t seen_generation = 0;
  for (;;) {
    {
      std::unique_lock lock(mutex_);
      job_ready_.wait(lock, [&] { return stopping_ || job_generation_ != seen_generation; });
      if (stopping_) return;
      seen_generation = job_generation_;
      // Small jobs have fewer chunks than threads; this helper sits this one out.
      if (worker_index >= job_chunks_) continue;
    }
    run_chunk(worker_index);
    {
      std::lock_guard lock(mutex_);
      if (--workers_pending_ == 0) job_done_.notify_one();
    }
  }
}

void parallel_for(ThreadPool* pool, std::int64_t n,
                  const std::function<void(std::int64_t, std::int64_t)>& fn) {
  if (pool == nullptr) {
    fn(0, n);
  } else {
    pool->parallel_for(n, fn);
  }
}

}  // namespace kvc
