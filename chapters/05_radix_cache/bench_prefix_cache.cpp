// ch05_bench_prefix_cache: what a prefix lookup costs, radix tree vs hash
// chain, as the cache grows from 1K to 100K blocks of 16 tokens.
//
// Two request shapes (token ids drawn from a 32000-token vocabulary, fixed seed):
//   system_prompt  one 1024-token prompt (64 blocks) shared by every request,
//                  each followed by its own 64-token question (4 blocks)
//   random         256 random tokens per request (16 blocks), nothing shared
// The cache holds as many requests as fill the given number of blocks.
//
//   Match   match_prefix() of a cached request (a full hit), cycling over all
//   Insert  inserting every request into an empty cache, until it is full
//
//   build/bin/ch05_bench_prefix_cache [--benchmark_filter=Match/radix]
//
// Counters: ns_per_op (one match or insert, in this thread's CPU time, so a
// busy shared machine changes it less than wall time), metadata_bytes_per_block (the
// cache's bookkeeping, PrefixCache::metadata_bytes(), over the blocks it holds,
// after the run).
#include <benchmark/benchmark.h>

#include <cstddef>
#include <ctime>
#include <random>
#include <string>
#include <vector>

#include "chapters/05_radix_cache/prefix_cache.hpp"

namespace {

using kvc::ch05::make_prefix_cache;
using kvc::ch05::PrefixCache;

constexpr int kBlockSize = 16;
constexpr int kVocab = 32000;

enum class Workload { kSystemPrompt, kRandom };

struct Request {
  std::vector<int> tokens;
  std::vector<int> blocks;  // [tokens / kBlockSize] ids as an allocator would hand them out
};

// Requests whose insertion fills exactly `cache_blocks` blocks (give or take one request).
std::vector<Request> make_requests(Workload workload, int cache_blocks) {
  std::mt19937 rng(2026);
  std::uniform_int_distribution<int> token(0, kVocab - 1);
  const auto random_tokens = [&](int n) {
    std::vector<int> tokens(static_cast<std::size_t>(n));
    for (int& t : tokens) t = token(rng);
    return tokens;
  };
  const std::vector<int> system_prompt = random_tokens(64 * kBlockSize);
  std::vector<Request> requests;
  int next_block = 0;
  while (next_block < cache_blocks) {
    Request request;
    if (workload == Workload::kSystemPrompt) {
      request.tokens = system_prompt;
      const std::vector<int> question = random_tokens(4 * kBlockSize);
      request.tokens.insert(request.tokens.end(), question.begin(), question.end());
    } else {
      request.tokens = random_tokens(16 * kBlockSize);
    }
    const int num_blocks = static_cast<int>(request.tokens.size()) / kBlockSize;
    // A request after the first reuses the cached system prompt's blocks.
    const int shared = workload == Workload::kSystemPrompt && !requests.empty() ? 64 : 0;
    for (int i = 0; i < num_blocks; ++i) {
      request.blocks.push_back(i < shared ? requests.front().blocks[std::size_t(i)] : next_block++);
    }
    requests.push_back(std::move(request));
  }
  return requests;
}

double thread_cpu_seconds() {
  timespec now{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &now);
  return static_cast<double>(now.tv_sec) + 1e-9 * static_cast<double>(now.tv_nsec);
}

void fill(PrefixCache& cache, const std::vector<Request>& requests) {
  for (const Request& r : requests) cache.insert(r.tokens, r.blocks);
}

void report(benchmark::State& state, const PrefixCache& cache, double seconds, double ops) {
  state.counters["ns_per_op"] = seconds * 1e9 / ops;
  state.counters["metadata_bytes_per_block"] =
      static_cast<double>(cache.metadata_bytes()) / cache.size_info().total_blocks();
  state.counters["blocks"] = cache.size_info().total_blocks();
}

void BM_Match(benchmark::State& state, std::string kind, Workload workload) {
  const std::vector<Request> requests = make_requests(workload, static_cast<int>(state.range(0)));
  const auto cache = make_prefix_cache(kind, kBlockSize);
  fill(*cache, requests);
  std::size_t next = 0;
  double ops = 0;
  const double start = thread_cpu_seconds();
  for (auto _ : state) {
    benchmark::DoNotOptimize(cache->match_prefix(requests[next].tokens));
    next = next + 1 == requests.size() ? 0 : next + 1;
    ++ops;
  }
  report(state, *cache, thread_cpu_seconds() - start, ops);
}

void BM_Insert(benchmark::State& state, std::string kind, Workload workload) {
  const std::vector<Request> requests = make_requests(workload, static_cast<int>(state.range(0)));
  std::unique_ptr<PrefixCache> cache;
  double seconds = 0, ops = 0;
  for (auto _ : state) {
    state.PauseTiming();
    cache = make_prefix_cache(kind, kBlockSize);
    state.ResumeTiming();
    const double start = thread_cpu_seconds();
    fill(*cache, requests);
    seconds += thread_cpu_seconds() - start;
    ops += static_cast<double>(requests.size());
  }
  report(state, *cache, seconds, ops);
}

void register_all() {
  for (const char* kind : {"radix", "hash"}) {
    for (const auto& [workload, name] : {std::pair{Workload::kSystemPrompt, "system_prompt"},
                                         std::pair{Workload::kRandom, "random"}}) {
      const std::string suffix = std::string(kind) + "/" + name;
      benchmark::RegisterBenchmark(("Match/" + suffix).c_str(), BM_Match, kind, workload)
          ->Arg(1000)
          ->Arg(10000)
          ->Arg(100000);
      benchmark::RegisterBenchmark(("Insert/" + suffix).c_str(), BM_Insert, kind, workload)
          ->Arg(1000)
          ->Arg(10000)
          ->Arg(100000)
          ->Unit(benchmark::kMillisecond);
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  register_all();
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
