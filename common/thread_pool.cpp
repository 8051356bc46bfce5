#include "common/thread_pool.hpp"

#include <algorithm>
#include <chrono>
#include <system_error>
#include <utility>

#include "common/check.hpp"

namespace kvc {

namespace {
// True while this thread runs a chunk of some job: a nested parallel_for then
// runs inline instead of waiting for helpers that are busy with the outer job.
thread_local bool t_inside_job = false;

// The fields of ThreadPool::claims_.
struct Claims {
  std::uint32_t generation;
  int chunks;
  int next;
};
Claims unpack(std::uint64_t word) {
  return {std::uint32_t(word >> 32), int((word >> 16) & 0xffff), int(word & 0xffff)};
}
std::uint64_t pack(Claims c) {
  return std::uint64_t(c.generation) << 32 | std::uint64_t(c.chunks) << 16 | std::uint64_t(c.next);
}

// Polls done() for up to ThreadPool::kSpinMicroseconds; true if it came true.
// (No pause instruction in the loop: in the KVM guest this was tuned on, the
// same loop with pause made chapter 02's decode several times slower, most
// likely from pause-loop exits handing the vCPU back to the host.)
template <typename Done>
bool spin_until(Done done) {
  const auto deadline =
      std::chrono::steady_clock::now() + std::chrono::microseconds(ThreadPool::kSpinMicroseconds);
  for (;;) {
    for (int i = 0; i < 64; ++i) {
      if (done()) return true;
    }
    if (std::chrono::steady_clock::now() > deadline) return done();
  }
}
}  // namespace

ThreadPool::ThreadPool(int num_threads) {
  if (num_threads <= 0) {
    num_threads = static_cast<int>(
        std::clamp(std::thread::hardware_concurrency(), 1u, static_cast<unsigned>(kMaxThreads)));
  }
  // kMaxThreads also keeps a job's chunk count inside claims_' 16-bit field.
  KVC_CHECK(num_threads <= kMaxThreads, "thread pool: ", num_threads, " threads is more than ",
            kMaxThreads);
  num_threads_ = num_threads;
  workers_.reserve(num_threads_ - 1);
  try {
    for (int i = 1; i < num_threads_; ++i) {
      workers_.emplace_back([this] { worker_loop(); });
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
  stopping_.store(true);
  job_generation_.fetch_add(1);
  job_generation_.notify_all();
  for (std::thread& worker : workers_) worker.join();
  workers_.clear();
}

void ThreadPool::parallel_for(std::int64_t n,
                              const std::function<void(std::int64_t, std::int64_t)>& fn) {
  if (n <= 0) return;
  if (num_threads_ == 1 || n == 1 || t_inside_job) {
    fn(0, n);
    return;
  }

  std::lock_guard submit(submit_mutex_);
  const int chunks = static_cast<int>(std::min<std::int64_t>(n, num_threads_));
  job_ = &fn;
  job_size_ = n;
  first_error_ = nullptr;
  chunks_done_.store(0, std::memory_order_relaxed);
  const std::uint32_t generation = job_generation_.load(std::memory_order_relaxed) + 1;
  claims_.store(pack({generation, chunks, 0}));
  // seq_cst store then load (the reverse in worker_loop): either a helper
  // sees the new generation before it sleeps, or we see it sleeping and wake it.
  job_generation_.store(generation);
  if (sleeping_helpers_.load() > 0) job_generation_.notify_all();

  run_chunks(generation);

  const auto all_done = [&] { return chunks_done_.load(std::memory_order_acquire) == chunks; };
  if (!spin_until(all_done)) {
    caller_sleeping_.store(true);
    for (int done = chunks_done_.load(); done != chunks; done = chunks_done_.load()) {
      chunks_done_.wait(done);
    }
    caller_sleeping_.store(false);
  }
  job_ = nullptr;
  if (first_error_) std::rethrow_exception(std::exchange(first_error_, nullptr));
}

void ThreadPool::run_chunks(std::uint32_t generation) {
  for (;;) {
    std::uint64_t word = claims_.load(std::memory_order_acquire);
    Claims claims = unpack(word);
    if (claims.generation != generation || claims.next == claims.chunks) return;
    const int chunk = claims.next;
    ++claims.next;
    if (!claims_.compare_exchange_weak(word, pack(claims), std::memory_order_acq_rel)) continue;

    const std::int64_t begin = job_size_ * chunk / claims.chunks;
    const std::int64_t end = job_size_ * (chunk + 1) / claims.chunks;
    t_inside_job = true;
    try {
      (*job_)(begin, end);
    } catch (...) {
      std::lock_guard lock(error_mutex_);
      if (!first_error_) first_error_ = std::current_exception();
    }
    t_inside_job = false;
    // seq_cst: pairs with the caller's store of caller_sleeping_ before it waits.
    if (chunks_done_.fetch_add(1) + 1 == claims.chunks && caller_sleeping_.load()) {
      chunks_done_.notify_one();
    }
  }
}

void ThreadPool::worker_loop() {
  std::uint32_t seen_generation = 0;
  for (;;) {
    const auto job_posted = [&] {
      return job_generation_.load(std::memory_order_acquire) != seen_generation;
    };
    if (!spin_until(job_posted)) {
      sleeping_helpers_.fetch_add(1);
      while (job_generation_.load() == seen_generation) job_generation_.wait(seen_generation);
      sleeping_helpers_.fetch_sub(1);
    }
    seen_generation = job_generation_.load(std::memory_order_acquire);
    if (stopping_.load()) return;
    run_chunks(seen_generation);
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
