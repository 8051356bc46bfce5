// ch04_bench_paged: what paging costs decode attention. One decode step of one
// layer (32 query heads x 128 dims, 8 KV heads, fp32) over the same cache rows
// laid out two ways:
//   Contiguous - cpu::attention_decode_grouped (chapter 03) over
//                [n_ctx][n_kv_heads][head_dim]: the same algorithm as paged v2
//                without the block-table indirection.
//   Paged/v1   - cpu::attention_decode_paged v1: llama2.c's loop, one block-table
//                lookup per position per query head.
//   Paged/v2   - cpu::attention_decode_paged v2: grouped, block by block.
//   Paged/v3   - cpu::attention_decode_paged v3: v2 vectorized and threaded (1
//                and 2 threads); its contiguous yardstick is the same fast
//                kernel over the contiguous cache (attention_decode_variant 4).
//   Paged/v4   - cpu::attention_decode_paged v4: split-context flash decoding
//                (rounds differently); yardstick attention_decode_variant 5.
// The pool's blocks are a fixed-seed random permutation, as after many
// allocations and frees.
//
//   build/bin/ch04_bench_paged [--benchmark_filter=v2]
//
// Each paged case also times the contiguous kernel on the same step, the two
// interleaved so both see the same machine state; x_contiguous is paged time
// over contiguous time (1.10 = 10% paging overhead). GB_per_s is the cache's
// own bytes (K and V) consumed per second, and of_read_bw that over the
// streaming-read rate measured at start-up on the same number of threads.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <numeric>
#include <random>
#include <vector>

#include "benchmarks/cpu/decode_inputs.hpp"
#include "benchmarks/cpu/roofline_counters.hpp"
#include "common/kv_memory.hpp"
#include "common/thread_pool.hpp"
#include "kernels/cpu/ops.hpp"

namespace {

using kvc::bench::DecodeInputs;

constexpr int kHeads = 32;
constexpr int kKvHeads = 8;
constexpr int kHeadDim = 128;
constexpr int kMaxContext = 32768;
constexpr std::size_t kRowFloats = std::size_t(kKvHeads) * kHeadDim;  // one position's K (or V)

// Query and contiguous cache, shared by every case: a case with n_ctx
// positions reads the first n_ctx rows.
const DecodeInputs& decode_inputs() {
  static const DecodeInputs inputs =
      kvc::bench::make_decode_inputs(kHeads, kHeadDim, kMaxContext * kRowFloats);
  return inputs;
}

// The first n_ctx rows of the contiguous cache, scattered block by block
// into a pool of exactly the blocks they need, in a random order.
//   k_pages, v_pages: [num_blocks][block_size][kKvHeads][kHeadDim]
struct PagedInputs {
  kvc::KvFloats k_pages, v_pages;
  std::vector<int> block_table;  // [num_blocks]
};

PagedInputs scatter_into_pages(const DecodeInputs& in, int n_ctx, int block_size) {
  const int num_blocks = (n_ctx + block_size - 1) / block_size;
  const std::size_t pool_floats = std::size_t(num_blocks) * block_size * kRowFloats;
  PagedInputs pool{kvc::zeroed_kv_floats(pool_floats), kvc::zeroed_kv_floats(pool_floats),
                   std::vector<int>(num_blocks)};
  std::iota(pool.block_table.begin(), pool.block_table.end(), 0);
  std::shuffle(pool.block_table.begin(), pool.block_table.end(), std::mt19937(1234));
  for (int t = 0; t < n_ctx; ++t) {
    const std::size_t slot =
        std::size_t(pool.block_table[t / block_size]) * block_size + t % block_size;
    std::copy_n(in.k_cache.begin() + t * kRowFloats, kRowFloats,
                pool.k_pages.begin() + slot * kRowFloats);
    std::copy_n(in.v_cache.begin() + t * kRowFloats, kRowFloats,
                pool.v_pages.begin() + slot * kRowFloats);
  }
  return pool;
}

// The contiguous kernel a paged variant is compared with, as an
// attention_decode_variant number: the grouped one (3) for v1 and v2, the
// fast one (4) for v3, the split-context one (5) for v4, on the same pool.
int contiguous_variant(int paged_variant) {
  return paged_variant <= 2 ? 3 : paged_variant + 1;
}

void run_contiguous(float* out, const DecodeInputs& in, int n_ctx, float* scores, int variant,
                    kvc::ThreadPool* pool) {
  kvc::cpu::attention_decode_variant(variant, out, in.q.data(), in.k_cache.data(),
                                     in.v_cache.data(), n_ctx, kHeads, kKvHeads, kHeadDim, scores,
                                     pool);
}

std::size_t contiguous_scratch_floats(int n_ctx, int variant) {
  return kvc::cpu::attention_decode_scratch_floats(variant, n_ctx, kHeads, kKvHeads, kHeadDim);
}

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

double kv_bytes(int n_ctx) {
  return 2.0 * sizeof(float) * double(n_ctx) * double(kRowFloats);
}

void BM_Contiguous(benchmark::State& state) {
  const int n_ctx = int(state.range(0));
  const DecodeInputs& in = decode_inputs();
  std::vector<float> out(kHeads * kHeadDim);
  // Zero-filled up front so page faults on first touch stay out of the timing.
  std::vector<float> scores(contiguous_scratch_floats(n_ctx, 3));
  const kvc::bench::LoopTimer timer;
  for (auto _ : state) {
    run_contiguous(out.data(), in, n_ctx, scores.data(), 3, nullptr);
    benchmark::ClobberMemory();
  }
  kvc::bench::report_read_roof(state, kv_bytes(n_ctx), timer.seconds_per_iteration(state), 1);
}

void BM_Paged(benchmark::State& state, int variant) {
  const int block_size = int(state.range(0));
  const int n_ctx = int(state.range(1));
  const int threads = int(state.range(2));
  const int yardstick = contiguous_variant(variant);
  kvc::ThreadPool thread_pool(threads);
  const DecodeInputs& in = decode_inputs();
  const PagedInputs pool = scatter_into_pages(in, n_ctx, block_size);
  std::vector<float> out(kHeads * kHeadDim);
  std::vector<float> scratch(
      kvc::cpu::attention_decode_paged_scratch_floats(variant, n_ctx, kHeads, kKvHeads));
  std::vector<float> contiguous_scores(contiguous_scratch_floats(n_ctx, yardstick));

  double paged_seconds = 0.0, contiguous_seconds = 0.0;
  for (auto _ : state) {
    auto start = std::chrono::steady_clock::now();
    kvc::cpu::attention_decode_paged(variant, out.data(), in.q.data(), pool.k_pages.data(),
                                     pool.v_pages.data(), pool.block_table.data(), n_ctx,
                                     block_size, kHeads, kKvHeads, kHeadDim, scratch.data(),
                                     &thread_pool);
    benchmark::ClobberMemory();
    const double paged = seconds_since(start);
    state.SetIterationTime(paged);
    paged_seconds += paged;

    start = std::chrono::steady_clock::now();
    run_contiguous(out.data(), in, n_ctx, contiguous_scores.data(), yardstick, &thread_pool);
    benchmark::ClobberMemory();
    contiguous_seconds += seconds_since(start);
  }
  kvc::bench::report_read_roof(state, kv_bytes(n_ctx), paged_seconds / double(state.iterations()),
                               threads);
  state.counters["x_contiguous"] = paged_seconds / contiguous_seconds;
}

constexpr int kContexts[] = {1024, 4096, 8192, 16384, kMaxContext};
// Long enough for several interleaved steps even at 32K (about 40 s in all).
constexpr double kMinSeconds = 0.2;

void contiguous_cases(benchmark::internal::Benchmark* b) {
  b->ArgName("context")->Unit(benchmark::kMillisecond)->MinTime(kMinSeconds)->UseRealTime();
  for (int n_ctx : kContexts) b->Arg(n_ctx);
}

void paged_cases(benchmark::internal::Benchmark* b, std::vector<int> thread_counts) {
  b->ArgNames({"block", "context", "threads"})->Unit(benchmark::kMillisecond)->MinTime(kMinSeconds);
  b->UseManualTime();
  for (int block_size : {1, 8, 16, 32, 128}) {
    for (int n_ctx : kContexts) {
      for (int threads : thread_counts) b->Args({block_size, n_ctx, threads});
    }
  }
}
void one_thread(benchmark::internal::Benchmark* b) {
  paged_cases(b, {1});
}
void one_and_two_threads(benchmark::internal::Benchmark* b) {
  paged_cases(b, {1, 2});
}

BENCHMARK(BM_Contiguous)->Apply(contiguous_cases);
BENCHMARK_CAPTURE(BM_Paged, v1, 1)->Apply(one_thread);
BENCHMARK_CAPTURE(BM_Paged, v2, 2)->Apply(one_thread);
BENCHMARK_CAPTURE(BM_Paged, v3, 3)->Apply(one_and_two_threads);
BENCHMARK_CAPTURE(BM_Paged, v4, 4)->Apply(one_and_two_threads);

}  // namespace

// main(): benchmarks/cpu/bench_main.cpp (measures the read bandwidth first).
