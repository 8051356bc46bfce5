// ch07_bench_quant: what a quantized KV cache saves decode attention. One
// decode step of one layer (32 query heads x 128 dims, 8 KV heads, blocks of
// 16 tokens in a shuffled pool) over the same K, V stored in each format:
//   Quant/<format> - cpu::attention_decode_paged_quant (dequantize each
//                    block's rows into an L1 tile, then chapter 04's grouped
//                    loops over it).
// Each case also times two fp32 runs of the same step, interleaved so all
// three see the same machine state:
//   x_fp32_ch04      chapter 04's fp32 kernel (cpu::attention_decode_paged, its
//                    best variant, as it is in this tree) time / this format's
//                    time (2.0 = twice as fast)
//   x_fp32_same      this kernel over an fp32 pool, time / this format's time:
//                    the part of the gain that comes from the bytes alone
//   x_v1             this format through kernel variant 1, time / variant 0's
//   bytes_per_second the format's own pool bytes (codes + scales) read per second
//
//   build/bin/ch07_bench_quant [--benchmark_filter=int8]
#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <memory>
#include <numeric>
#include <random>
#include <vector>

#include "benchmarks/cpu/decode_inputs.hpp"
#include "chapters/07_quantization/quantized_paged_cache.hpp"
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

void BM_Quant(benchmark::State& state, const char* format) {
  const int n_ctx = int(state.range(0));
  const kvc::bench::DecodeInputs& in = decode_inputs();
  const Pool pool = make_pool(format, n_ctx);
  const Pool fp32 = make_pool("fp32", n_ctx);
  const kvc::cpu::QuantPagedLayer layer = pool.cache->layer_view(0);
  const kvc::cpu::QuantPagedLayer fp32_layer = fp32.cache->layer_view(0);
  // An fp32 pool's codes are chapter 04's pages: [num_blocks][kBlockSize][kKvHeads][kHeadDim].
  const auto* k_pages = reinterpret_cast<const float*>(fp32_layer.k.codes);
  const auto* v_pages = reinterpret_cast<const float*>(fp32_layer.v.codes);
  std::vector<float> out(kHeads * kHeadDim);
  std::vector<float> scratch(
      kvc::cpu::attention_decode_paged_quant_scratch_floats(0, n_ctx, kHeads, layer));
  std::vector<float> fp32_scratch(kvc::cpu::attention_decode_paged_scratch_floats(
      kvc::cpu::kBestPagedDecode, n_ctx, kHeads, kKvHeads));

  double quant_seconds = 0.0, fp32_seconds = 0.0, same_kernel_seconds = 0.0, v1_seconds = 0.0;
  for (auto _ : state) {
    auto start = std::chrono::steady_clock::now();
    kvc::cpu::attention_decode_paged_quant(0, out.data(), in.q.data(), layer,
                                           pool.block_table.data(), n_ctx, kHeads, scratch.data());
    benchmark::ClobberMemory();
    const double quant = seconds_since(start);
    state.SetIterationTime(quant);
    quant_seconds += quant;

    start = std::chrono::steady_clock::now();
    kvc::cpu::attention_decode_paged(kvc::cpu::kBestPagedDecode, out.data(), in.q.data(), k_pages,
                                     v_pages, fp32.block_table.data(), n_ctx, kBlockSize, kHeads,
                                     kKvHeads, kHeadDim, fp32_scratch.data());
    benchmark::ClobberMemory();
    fp32_seconds += seconds_since(start);

    start = std::chrono::steady_clock::now();
    kvc::cpu::attention_decode_paged_quant(0, out.data(), in.q.data(), fp32_layer,
                                           fp32.block_table.data(), n_ctx, kHeads, scratch.data());
    benchmark::ClobberMemory();
    same_kernel_seconds += seconds_since(start);

    start = std::chrono::steady_clock::now();
    kvc::cpu::attention_decode_paged_quant(1, out.data(), in.q.data(), layer,
                                           pool.block_table.data(), n_ctx, kHeads, scratch.data());
    benchmark::ClobberMemory();
    v1_seconds += seconds_since(start);
  }
  const kvc::KvPoolShape shape{1, kKvHeads, kHeadDim, kBlockSize};
  const double pool_bytes =
      kvc::kv_bytes_per_token(kvc::parse_kv_dtype(format, kHeadDim), shape) * n_ctx;
  state.SetBytesProcessed(std::int64_t(double(state.iterations()) * pool_bytes));
  state.counters["x_fp32_ch04"] = fp32_seconds / quant_seconds;
  state.counters["x_fp32_same"] = same_kernel_seconds / quant_seconds;
  state.counters["x_v1"] = v1_seconds / quant_seconds;
}

void cases(benchmark::internal::Benchmark* b) {
  b->ArgName("context")->Unit(benchmark::kMillisecond)->MinTime(1.0)->UseManualTime();
  for (int n_ctx : {4096, 16384, kMaxContext}) b->Arg(n_ctx);
}

BENCHMARK_CAPTURE(BM_Quant, fp32, "fp32")->Apply(cases);
BENCHMARK_CAPTURE(BM_Quant, fp16, "fp16")->Apply(cases);
BENCHMARK_CAPTURE(BM_Quant, bf16, "bf16")->Apply(cases);
BENCHMARK_CAPTURE(BM_Quant, int8, "int8")->Apply(cases);
BENCHMARK_CAPTURE(BM_Quant, fp8, "fp8")->Apply(cases);
BENCHMARK_CAPTURE(BM_Quant, int4_token, "int4-token")->Apply(cases);
BENCHMARK_CAPTURE(BM_Quant, int4, "int4")->Apply(cases);

}  // namespace

// main(): benchmarks/cpu/bench_main.cpp (measures the read bandwidth first).
