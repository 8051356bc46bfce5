// ch07_bench_quant: what a quantized KV cache saves decode attention. One
// decode step of one layer (32 query heads x 128 dims, 8 KV heads, blocks of
// 16 tokens in a shuffled pool) over the same K, V stored in each format:
//   Quant/<format>/variant:V/context:N/threads:T -
//       cpu::attention_decode_paged_quant variant V on T threads: 2 = the
//       bit-exact tile kernel (one thread), 3 = the split-context kernel that
//       reads every format's codes (packed int4 too) inside its dot products,
//       4 = the same with int8's products done in integers (int8 runs both;
//       for the other formats 4 is 3).
// Each case also times chapter 04's two fast fp32 kernels on the same step and
// the same T threads (cpu::attention_decode_paged 3, bit-exact, and 4,
// split-context), interleaved with it so all three see the same machine state:
//   x_fp32_best     the faster fp32 kernel's time / this case's time
//                   (2.0 = twice as fast as the best fp32 kernel)
//   GB_per_s        the format's own pool bytes (codes + scales) read per second
//   of_read_bw      that over the streaming-read rate measured at start-up on T
//                   threads (printed as read_GB/s_T_threads)
//   fp32_GB_per_s   the fp32 pool's bytes per second through the faster fp32 kernel
//
//   build/bin/ch07_bench_quant [--benchmark_filter=int8]
#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <initializer_list>
#include <memory>
#include <numeric>
#include <random>
#include <vector>

#include "benchmarks/cpu/decode_inputs.hpp"
#include "benchmarks/cpu/roofline_counters.hpp"
#include "chapters/07_quantization/quantized_paged_cache.hpp"
#include "common/thread_pool.hpp"
#include "kernels/cpu/ops.hpp"

namespace {

constexpr int kHeads = 32;
constexpr int kKvHeads = 8;
constexpr int kHeadDim = 128;
constexpr int kBlockSize = 16;
constexpr int kMaxContext = 32768;
constexpr std::size_t kRowFloats = std::size_t(kKvHeads) * kHeadDim;

const kvc::bench::DecodeInputs& decode_inputs() {
  static const kvc::bench::DecodeInputs inputs =
      kvc::bench::make_decode_inputs(kHeads, kHeadDim, kMaxContext * kRowFloats);
  return inputs;
}

kvc::ModelConfig one_layer() {
  kvc::ModelConfig c;
  c.dim = kHeads * kHeadDim;
  c.hidden_dim = 1;
  c.n_layers = 1;
  c.n_heads = kHeads;
  c.n_kv_heads = kKvHeads;
  c.vocab_size = 1;
  c.seq_len = kMaxContext;
  return c;
}

// n_ctx positions of the inputs stored in `format`, blocks in a shuffled order
// (the same order for every format).
struct Pool {
  std::unique_ptr<kvc::ch07::QuantizedPagedKVCache> cache;
  std::vector<int> block_table;
};

Pool make_pool(const char* format, int n_ctx) {
  const kvc::bench::DecodeInputs& in = decode_inputs();
  const int num_blocks = (n_ctx + kBlockSize - 1) / kBlockSize;
  Pool pool{
      std::make_unique<kvc::ch07::QuantizedPagedKVCache>(
          one_layer(), kvc::parse_kv_dtype(format, kHeadDim), num_blocks, kBlockSize, nullptr),
      std::vector<int>(num_blocks)};
  std::iota(pool.block_table.begin(), pool.block_table.end(), 0);
  std::shuffle(pool.block_table.begin(), pool.block_table.end(), std::mt19937(1234));
  for (int t = 0; t < n_ctx; ++t) {
    const std::int64_t slot =
        std::int64_t(pool.block_table[t / kBlockSize]) * kBlockSize + t % kBlockSize;
    const float* k = in.k_cache.data() + t * kRowFloats;
    const float* v = in.v_cache.data() + t * kRowFloats;
    pool.cache->store(0, slot, t, k, v);
  }
  return pool;
}

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// Seconds one call of `run` takes.
template <typename Run>
double time_one(Run run) {
  const auto start = std::chrono::steady_clock::now();
  run();
  benchmark::ClobberMemory();
  return seconds_since(start);
}

void BM_Quant(benchmark::State& state, const char* format) {
  const int variant = int(state.range(0));
  const int n_ctx = int(state.range(1));
  const int threads = int(state.range(2));
  kvc::ThreadPool thread_pool(threads);
  const kvc::bench::DecodeInputs& in = decode_inputs();
  const Pool pool = make_pool(format, n_ctx);
  const Pool fp32 = make_pool("fp32", n_ctx);
  const kvc::cpu::QuantPagedLayer layer = pool.cache->layer_view(0);
  // An fp32 pool's codes are chapter 04's pages: [num_blocks][kBlockSize][kKvHeads][kHeadDim].
  const kvc::cpu::QuantPagedLayer fp32_layer = fp32.cache->layer_view(0);
  const auto* k_pages = reinterpret_cast<const float*>(fp32_layer.k.codes);
  const auto* v_pages = reinterpret_cast<const float*>(fp32_layer.v.codes);
  std::vector<float> out(kHeads * kHeadDim);
  std::vector<float> scratch(
      kvc::cpu::attention_decode_paged_quant_scratch_floats(variant, n_ctx, kHeads, layer));
  std::vector<float> fp32_scratch(
      kvc::cpu::attention_decode_paged_scratch_floats(3, n_ctx, kHeads, kKvHeads));
  const auto run_fp32 = [&](int fp32_variant) {
    kvc::cpu::attention_decode_paged(fp32_variant, out.data(), in.q.data(), k_pages, v_pages,
                                     fp32.block_table.data(), n_ctx, kBlockSize, kHeads, kKvHeads,
                                     kHeadDim, fp32_scratch.data(), &thread_pool);
  };

  double quant_seconds = 0.0, fp32_v3_seconds = 0.0, fp32_v4_seconds = 0.0;
  for (auto _ : state) {
    const double quant = time_one([&] {
      kvc::cpu::attention_decode_paged_quant(variant, out.data(), in.q.data(), layer,
                                             pool.block_table.data(), n_ctx, kHeads, scratch.data(),
                                             {}, &thread_pool);
    });
    state.SetIterationTime(quant);
    quant_seconds += quant;
    fp32_v3_seconds += time_one([&] { run_fp32(3); });
    fp32_v4_seconds += time_one([&] { run_fp32(4); });
  }
  const double iterations = double(state.iterations());
  const kvc::KvPoolShape shape{1, kKvHeads, kHeadDim, kBlockSize};
  const double pool_bytes =
      kvc::kv_bytes_per_token(kvc::parse_kv_dtype(format, kHeadDim), shape) * n_ctx;
  const double fp32_seconds = std::min(fp32_v3_seconds, fp32_v4_seconds);
  kvc::bench::report_read_roof(state, pool_bytes, quant_seconds / iterations, threads);
  state.counters["x_fp32_best"] = fp32_seconds / quant_seconds;
  state.counters["fp32_GB_per_s"] =
      kvc::kv_bytes_per_token(kvc::parse_kv_dtype("fp32", kHeadDim), shape) * n_ctx * iterations /
      fp32_seconds / 1e9;
}

// Variant 2 on one thread, then the fast variants on 1 and 2.
void cases_of(benchmark::internal::Benchmark* b, std::initializer_list<int> fast_variants) {
  b->ArgNames({"variant", "context", "threads"})->Unit(benchmark::kMillisecond);
  b->MinTime(0.5)->UseManualTime();
  for (int n_ctx : {4096, 16384, kMaxContext}) {
    b->Args({2, n_ctx, 1});
    for (int variant : fast_variants) {
      for (int threads : {1, 2}) b->Args({variant, n_ctx, threads});
    }
  }
}
// Variant 4 is variant 3 except over int8, where both run.
void cases(benchmark::internal::Benchmark* b) {
  cases_of(b, {kvc::cpu::kFastPagedQuantDecode});
}
void int8_cases(benchmark::internal::Benchmark* b) {
  cases_of(b, {3, 4});
}

BENCHMARK_CAPTURE(BM_Quant, fp32, "fp32")->Apply(cases);
BENCHMARK_CAPTURE(BM_Quant, fp16, "fp16")->Apply(cases);
BENCHMARK_CAPTURE(BM_Quant, bf16, "bf16")->Apply(cases);
BENCHMARK_CAPTURE(BM_Quant, int8, "int8")->Apply(int8_cases);
BENCHMARK_CAPTURE(BM_Quant, fp8, "fp8")->Apply(cases);
BENCHMARK_CAPTURE(BM_Quant, int4_token, "int4-token")->Apply(cases);
BENCHMARK_CAPTURE(BM_Quant, int4, "int4")->Apply(cases);

}  // namespace

// main(): benchmarks/cpu/bench_main.cpp (measures the read bandwidth first).
