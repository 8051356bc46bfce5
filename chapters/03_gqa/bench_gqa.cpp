// ch03_bench_gqa: one decode step's attention for one layer, MHA vs GQA-8 vs
// MQA at the same 32 query heads x 128 dims (fp32), each run by the three
// decode kernels that give the same bits:
//   ReRead  - cpu::attention_decode, llama2.c's way: every query head reads
//             its KV head, so a KV head is read g times.
//   Repeat  - cpu::attention_decode_repeat_kv, the framework way: copy K/V out
//             to one head per query head, then read the copy.
//   Grouped - cpu::attention_decode_grouped: each K/V row read once for its group.
//   Fast    - cpu::attention_decode_variant 4: Grouped vectorized and threaded
//             (on 1 and 2 threads), still the same bits.
//   Split   - cpu::attention_decode_variant 5: split-context flash decoding
//             (on 1 and 2 threads); rounds its own way (FMA, a vector exp).
//
//   build/bin/ch03_bench_gqa [--benchmark_filter=Grouped]
//
// Counters: kv_bytes is the cache's own size (K and V); bytes_moved is what
// the kernel reads and writes to do the step (g x kv_bytes for ReRead,
// (1 + 2g) x kv_bytes for Repeat, kv_bytes for Grouped); bytes_per_second is
// kv_bytes per second, the rate the step consumes the cache at; of_read_bw is
// bytes_moved per second over the streaming-read rate measured at start-up on
// the same number of threads (above 1 when the bytes fit in the CPU caches).
#include <benchmark/benchmark.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "benchmarks/cpu/decode_inputs.hpp"
#include "benchmarks/cpu/roofline_counters.hpp"
#include "common/thread_pool.hpp"
#include "kernels/cpu/ops.hpp"

namespace {

using kvc::bench::DecodeInputs;

constexpr int kHeads = 32;
constexpr int kHeadDim = 128;
constexpr int kMaxContext = 32768;

// Query and cache contents, shared by every case: a case with n_kv_heads KV
// heads and n_ctx positions reads the first n_ctx * n_kv_heads * kHeadDim
// floats of each cache as its [n_ctx][n_kv_heads][kHeadDim] layout.
const DecodeInputs& decode_inputs() {
  static const DecodeInputs inputs = kvc::bench::make_decode_inputs(
      kHeads, kHeadDim, std::size_t(kMaxContext) * kHeads * kHeadDim);
  return inputs;
}

enum class Kernel { ReRead, Repeat, Grouped, Fast, Split };

std::size_t scratch_floats(Kernel kernel, int n_kv_heads, int n_ctx) {
  switch (kernel) {
    case Kernel::ReRead:
      return std::size_t(n_ctx);  // one head's scores
    case Kernel::Repeat:
      return kvc::cpu::attention_decode_repeat_kv_scratch_floats(n_ctx, kHeads, kHeadDim);
    case Kernel::Grouped:
      return kvc::cpu::attention_decode_grouped_scratch_floats(n_ctx, kHeads, n_kv_heads);
    case Kernel::Fast:
      return kvc::cpu::attention_decode_scratch_floats(4, n_ctx, kHeads, n_kv_heads, kHeadDim);
    case Kernel::Split:
      return kvc::cpu::attention_decode_scratch_floats(5, n_ctx, kHeads, n_kv_heads, kHeadDim);
  }
  return 0;
}

void BM_Decode(benchmark::State& state, Kernel kernel) {
  const int n_kv_heads = int(state.range(0));
  const int n_ctx = int(state.range(1));
  const int threads = int(state.range(2));
  kvc::ThreadPool pool(threads);
  const int group = kHeads / n_kv_heads;
  const DecodeInputs& in = decode_inputs();
  std::vector<float> out(kHeads * kHeadDim);
  // Zero-filled up front so page faults on first touch stay out of the timing.
  std::vector<float> scratch(scratch_floats(kernel, n_kv_heads, n_ctx));

  const kvc::bench::LoopTimer timer;
  for (auto _ : state) {
    switch (kernel) {
      case Kernel::ReRead:
        kvc::cpu::attention_decode(out.data(), in.q.data(), in.k_cache.data(), in.v_cache.data(),
                                   n_ctx, kHeads, n_kv_heads, kHeadDim, scratch.data());
        break;
      case Kernel::Repeat:
        kvc::cpu::attention_decode_repeat_kv(out.data(), in.q.data(), in.k_cache.data(),
                                             in.v_cache.data(), n_ctx, kHeads, n_kv_heads, kHeadDim,
                                             scratch.data());
        break;
      case Kernel::Grouped:
        kvc::cpu::attention_decode_grouped(out.data(), in.q.data(), in.k_cache.data(),
                                           in.v_cache.data(), n_ctx, kHeads, n_kv_heads, kHeadDim,
                                           scratch.data());
        break;
      case Kernel::Fast:
      case Kernel::Split:
        kvc::cpu::attention_decode_variant(kernel == Kernel::Fast ? 4 : 5, out.data(), in.q.data(),
                                           in.k_cache.data(), in.v_cache.data(), n_ctx, kHeads,
                                           n_kv_heads, kHeadDim, scratch.data(), &pool);
        break;
    }
    benchmark::ClobberMemory();
  }
  const double seconds = timer.seconds_per_iteration(state);

  const double kv_bytes = 2.0 * sizeof(float) * n_ctx * n_kv_heads * kHeadDim;
  const double moved_per_kv_byte = kernel == Kernel::ReRead   ? group
                                   : kernel == Kernel::Repeat ? 1 + 2 * group
                                                              : 1;
  const double bytes_moved = moved_per_kv_byte * kv_bytes;
  state.SetBytesProcessed(std::int64_t(double(state.iterations()) * kv_bytes));
  state.counters["kv_bytes"] = kv_bytes;
  state.counters["bytes_moved"] = bytes_moved;
  kvc::bench::report_read_roof(state, bytes_moved, seconds, threads);
}

// MHA (32 KV heads), GQA-8 (8 KV heads) and MQA (1 KV head), at 1K to 32K
// positions, on each of `thread_counts` threads.
void cases(benchmark::internal::Benchmark* b, std::vector<int> thread_counts) {
  b->ArgNames({"kv_heads", "context", "threads"})->Unit(benchmark::kMillisecond)->MinTime(0.05);
  b->UseRealTime();
  for (int n_kv_heads : {kHeads, 8, 1}) {
    for (int n_ctx : {1024, 4096, 8192, 16384, kMaxContext}) {
      for (int threads : thread_counts) b->Args({n_kv_heads, n_ctx, threads});
    }
  }
}
void one_thread(benchmark::internal::Benchmark* b) {
  cases(b, {1});
}
void one_and_two_threads(benchmark::internal::Benchmark* b) {
  cases(b, {1, 2});
}
BENCHMARK_CAPTURE(BM_Decode, ReRead, Kernel::ReRead)->Apply(one_thread);
BENCHMARK_CAPTURE(BM_Decode, Repeat, Kernel::Repeat)->Apply(one_thread);
BENCHMARK_CAPTURE(BM_Decode, Grouped, Kernel::Grouped)->Apply(one_thread);
BENCHMARK_CAPTURE(BM_Decode, Fast, Kernel::Fast)->Apply(one_and_two_threads);
BENCHMARK_CAPTURE(BM_Decode, Split, Kernel::Split)->Apply(one_and_two_threads);

}  // namespace

// main(): benchmarks/cpu/bench_main.cpp (measures the read bandwidth first).
