// Decode attention on the GPU against the memory roofline.
//
// Decode reads every cached key and value once per token, so its speed limit is
// memory bandwidth. This program first measures what the GPU's own
// device-to-device cudaMemcpy achieves (bytes read + bytes written per second),
// then times each decode attention variant over a batch of sequences of one
// context length and reports
//   read_GBps:  KV-cache bytes read per second
//   of_copy_bw: read_GBps as a fraction of the measured copy bandwidth
// Shapes: 32 query heads, head_dim 128, fp16 cache, 1 KV head (MQA), 8 (GQA,
// Llama-3-8B) and 32 (MHA, Llama-2-7B), contexts 1K..128K, batch 1..64, batch x context up
// to 2M tokens. Target: of_copy_bw >= 0.8 once batch x context >= 256K tokens,
// where the cache no longer fits in L2 (smaller shapes can read partly from L2).
//
// Paged decode (chapter 04) runs on the same bytes: the contiguous cache cut into
// blocks handed out in a random order, read through block tables. paged/v2 at
// block size 16 covers every shape; v1, and v2 at block sizes 1 and 128, the GQA
// ones; paged/v3 (split-K) at block size 16 the single sequences (batch 1), where
// v2 has one block per KV head. paged read_GBps / decode read_GBps of one shape is
// the price of paging.
//
// Paged prefill from an offset (chapter 05: the suffix after a prefix-cache hit):
// one sequence, `cached` positions already in the pool, a chunk of `suffix` new
// tokens at positions cached.. (GQA 32/8, block size 16). paged_prefill/v1 is the
// query-tiled kernel; paged_prefill/decode_fallback runs the chunk as one paged
// decode query per token (attention_decode_paged, best variant), as chapter 04
// does. Both report context_GBps: the K and V bytes of the context read once,
// per second (the fallback reads them once per token, so it falls behind as the
// suffix grows); the ratio of the two times is the speed-up.
//
//   build/bin/bench_cuda_attention                              # everything
//   build/bin/bench_cuda_attention --benchmark_filter='decode/v3'  # one variant
//   build/bin/bench_cuda_attention --benchmark_filter='kv_heads:8/batch:16/context:16384'
//                                                  # one shape, contiguous and paged
//   build/bin/bench_cuda_attention --benchmark_filter='paged_prefill'  # chapter 05's rows
//   build/bin/bench_cuda_attention --benchmark_filter='paged/v[23]/block:16/kv_heads:8/batch:1/'
//                                                  # split-K against v2, one sequence
//   build/bin/bench_cuda_attention --benchmark_out=decode.json  # for pytorch_sdpa.py
#include <benchmark/benchmark.h>

#include <cuda_runtime_api.h>

#include <algorithm>
#include <cstdio>
#include <numeric>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "benchmarks/cuda/cuda_timing.hpp"
#include "common/check.hpp"
#include "common/cuda/cuda_check.hpp"
#include "common/cuda/device.hpp"
#include "common/cuda/device_buffer.hpp"
#include "kernels/cuda/attention.hpp"

namespace kvc::cuda {
namespace {

constexpr int kHeads = 32;
constexpr int kHeadDim = 128;
constexpr NumberFormat kCacheDtype = NumberFormat::fp16;
constexpr long long kMaxTokens = 2LL << 20;  // batch x context cap: 32 GB of K+V at 32 KV heads

// Buffers sized for the largest shape, shared by every benchmark of the run.
struct Workbench {
  cudaStream_t stream = nullptr;
  double copy_gbps = 0.0;
  DeviceBuffer<std::byte> k_cache;  // [batch][context][n_kv_heads][head_dim] fp16, per shape
  DeviceBuffer<std::byte> v_cache;
  DeviceBuffer<float> q;  // [batch][n_heads][head_dim]
  DeviceBuffer<float> out;
  DeviceBuffer<int> lengths;  // [batch]
  DeviceBuffer<std::byte> workspace;
  // Paged decode: the cache above as a pool of blocks.
  DeviceBuffer<int> block_tables;  // [batch][context / block_size]
  DeviceBuffer<int> table_rows;    // [batch]: sequence b reads row b
};

Workbench& workbench() {
  static Workbench bench;
  return bench;
}

// Sizes q and out for `rows` query tokens.
void reserve_queries(Workbench& wb, int rows) {
  const std::size_t q_size = std::size_t(rows) * kHeads * kHeadDim;
  if (wb.q.size() < q_size) {
    wb.q = DeviceBuffer<float>(q_size);
    wb.out = DeviceBuffer<float>(q_size);
    KVC_CUDA_CHECK(cudaMemsetAsync(wb.q.data(), 0, wb.q.bytes(), wb.stream));
  }
}

// Sizes the workbench for `batch` sequences of `context` tokens; returns the bytes of K
// (and of V) that one decode step reads.
std::size_t prepare(Workbench& wb, int n_kv_heads, int batch, int context) {
  const std::size_t cache_bytes =
      std::size_t(batch) * context * n_kv_heads * kHeadDim * float_format_bytes(kCacheDtype);
  if (wb.k_cache.size() < cache_bytes) {
    wb.k_cache = {};  // free before allocating the larger one
    wb.v_cache = {};
    wb.k_cache = DeviceBuffer<std::byte>(cache_bytes);
    wb.v_cache = DeviceBuffer<std::byte>(cache_bytes);
    // 0x3C3C is fp16 1.0586: finite values (their size does not change the timing).
    KVC_CUDA_CHECK(cudaMemsetAsync(wb.k_cache.data(), 0x3C, cache_bytes, wb.stream));
    KVC_CUDA_CHECK(cudaMemsetAsync(wb.v_cache.data(), 0x3C, cache_bytes, wb.stream));
  }
  reserve_queries(wb, batch);
  wb.lengths = to_device(std::vector<int>(batch, context));
  return cache_bytes;
}

// The block tables of `n_seqs` sequences of `blocks_per_seq` blocks each, over a pool of
// n_seqs * blocks_per_seq blocks handed out in a random order; sequence b reads row b.
void prepare_tables(Workbench& wb, int n_seqs, int blocks_per_seq) {
  std::vector<int> block_tables(std::size_t(n_seqs) * blocks_per_seq);
  std::iota(block_tables.begin(), block_tables.end(), 0);
  std::shuffle(block_tables.begin(), block_tables.end(), std::mt19937(1));
  wb.block_tables = to_device(block_tables);
  std::vector<int> table_rows(n_seqs);
  std::iota(table_rows.begin(), table_rows.end(), 0);
  wb.table_rows = to_device(table_rows);
}

void reserve_workspace(Workbench& wb, std::size_t bytes) {
  if (wb.workspace.size() < bytes) wb.workspace = DeviceBuffer<std::byte>(bytes);
}

// Times `run` and reports the K and V bytes it reads per second.
template <typename Run>
void time_decode(benchmark::State& state, std::size_t cache_bytes, int batch, int context,
                 Run&& run) {
  Workbench& wb = workbench();
  run();  // warm up (and surface a failure before timing)
  KVC_CUDA_CHECK(cudaStreamSynchronize(wb.stream));
  double total_seconds = 0.0;
  for (auto _ : state) {
    const double seconds = time_on_stream(wb.stream, run) * 1e-3;
    state.SetIterationTime(seconds);
    total_seconds += seconds;
  }
  const double read_bytes = 2.0 * cache_bytes;  // K and V
  const double read_gbps = read_bytes * state.iterations() / total_seconds / 1e9;
  state.counters["read_GBps"] = read_gbps;
  state.counters["of_copy_bw"] = read_gbps / wb.copy_gbps;
  state.counters["tokens"] = double(batch) * context;
}

void bench_decode(benchmark::State& state, int variant, int n_kv_heads, int batch, int context) {
  Workbench& wb = workbench();
  const DecodeShape shape{batch, context, kHeads, n_kv_heads, kHeadDim, kCacheDtype};
  const std::size_t cache_bytes = prepare(wb, n_kv_heads, batch, context);
  reserve_workspace(wb, attention_decode_workspace_bytes(variant, shape));
  time_decode(state, cache_bytes, batch, context, [&] {
    attention_decode(variant, wb.out.data(), wb.q.data(), wb.k_cache.data(), wb.v_cache.data(),
                     wb.lengths.data(), shape, wb.workspace.data(), wb.stream);
  });
  state.SetLabel("best=v" + std::to_string(attention_decode_best_variant(shape)));
}

// The same cache as bench_decode, seen as a pool of batch * context / block_size blocks
// that the sequences' tables hand out in a random order.
void bench_paged_decode(benchmark::State& state, int variant, int block_size, int n_kv_heads,
                        int batch, int context) {
  Workbench& wb = workbench();
  const int blocks_per_seq = context / block_size;
  const PagedDecodeShape shape{.n_tokens = batch,
                               .block_size = block_size,
                               .max_blocks_per_seq = blocks_per_seq,
                               .n_heads = kHeads,
                               .n_kv_heads = n_kv_heads,
                               .head_dim = kHeadDim,
                               .cache_dtype = kCacheDtype};
  const std::size_t cache_bytes = prepare(wb, n_kv_heads, batch, context);
  prepare_tables(wb, batch, blocks_per_seq);
  reserve_workspace(wb, attention_decode_paged_workspace_bytes(variant, shape));
  time_decode(state, cache_bytes, batch, context, [&] {
    attention_decode_paged(variant, wb.out.data(), wb.q.data(), wb.k_cache.data(),
                           wb.v_cache.data(), wb.block_tables.data(), wb.table_rows.data(),
                           wb.lengths.data(), shape, wb.workspace.data(), wb.stream);
  });
  state.SetLabel("best=v" + std::to_string(attention_decode_paged_best_variant(shape)));
}

// A chunk of `suffix` tokens after `cached` positions of one sequence, all in the pool.
// variant 0: the chunk as `suffix` paged decode queries (context lengths cached + 1 ..
// cached + suffix), chapter 04's fallback; else attention_prefill_paged's variant.
void bench_paged_prefill(benchmark::State& state, int variant, int cached, int suffix) {
  constexpr int kKvHeads = 8;
  constexpr int kBlockSize = 16;
  Workbench& wb = workbench();
  const int context = cached + suffix;
  const int blocks = (context + kBlockSize - 1) / kBlockSize;
  const std::size_t cache_bytes = prepare(wb, kKvHeads, 1, blocks * kBlockSize);
  prepare_tables(wb, 1, blocks);
  reserve_queries(wb, suffix);
  const std::size_t context_bytes = cache_bytes / (blocks * kBlockSize) * context;
  if (variant == 0) {
    const PagedDecodeShape shape{.n_tokens = suffix,
                                 .block_size = kBlockSize,
                                 .max_blocks_per_seq = blocks,
                                 .n_heads = kHeads,
                                 .n_kv_heads = kKvHeads,
                                 .head_dim = kHeadDim,
                                 .cache_dtype = kCacheDtype};
    std::vector<int> lengths(suffix);
    std::iota(lengths.begin(), lengths.end(), cached + 1);
    wb.lengths = to_device(lengths);
    wb.table_rows = to_device(std::vector<int>(suffix, 0));
    reserve_workspace(wb, attention_decode_paged_workspace_bytes(kBestVariant, shape));
    time_decode(state, context_bytes, 1, context, [&] {
      attention_decode_paged(kBestVariant, wb.out.data(), wb.q.data(), wb.k_cache.data(),
                             wb.v_cache.data(), wb.block_tables.data(), wb.table_rows.data(),
                             wb.lengths.data(), shape, wb.workspace.data(), wb.stream);
    });
    state.SetLabel("decode best=v" + std::to_string(attention_decode_paged_best_variant(shape)));
  } else {
    const PagedPrefillShape shape{.n_tokens = suffix,
                                  .start = cached,
                                  .block_size = kBlockSize,
                                  .n_heads = kHeads,
                                  .n_kv_heads = kKvHeads,
                                  .head_dim = kHeadDim,
                                  .cache_dtype = kCacheDtype};
    time_decode(state, context_bytes, 1, context, [&] {
      attention_prefill_paged(variant, wb.out.data(), wb.q.data(), wb.k_cache.data(),
                              wb.v_cache.data(), wb.block_tables.data(), shape, wb.stream);
    });
  }
  // time_decode's read_GBps counts the context once: name it for what it is here.
  state.counters["context_GBps"] = state.counters["read_GBps"];
  state.counters.erase("read_GBps");
  state.counters["suffix_tokens"] = suffix;
}

template <typename... Args>
void register_timed(const std::string& name, Args&&... args) {
  benchmark::RegisterBenchmark(name.c_str(), std::forward<Args>(args)...)
      ->UseManualTime()
      ->Unit(benchmark::kMicrosecond)
      ->MinTime(0.05);
}

void register_benchmarks() {
  for (int n_kv_heads : {1, 8, 32})
    for (int batch : {1, 4, 16, 64})
      for (int context : {1024, 4096, 16384, 32768, 65536, 131072}) {
        if (static_cast<long long>(batch) * context > kMaxTokens) continue;
        const std::string shape = "/kv_heads:" + std::to_string(n_kv_heads) +
                                  "/batch:" + std::to_string(batch) +
                                  "/context:" + std::to_string(context);
        for (int variant = 1; variant <= kDecodeVariants; ++variant)
          register_timed("decode/v" + std::to_string(variant) + shape, bench_decode, variant,
                         n_kv_heads, batch, context);
        // Paged: v2 at the usual block size everywhere; the rest on the GQA shapes only,
        // to keep the run short.
        struct PagedConfig {
          int variant, block_size;
        };
        for (const PagedConfig& paged : {PagedConfig{2, 16}, PagedConfig{1, 16}, PagedConfig{2, 1},
                                         PagedConfig{2, 128}, PagedConfig{3, 16}}) {
          if (paged.variant == 3
                  ? batch != 1
                  : n_kv_heads != 8 && !(paged.variant == 2 && paged.block_size == 16))
            continue;
          register_timed("paged/v" + std::to_string(paged.variant) +
                             "/block:" + std::to_string(paged.block_size) + shape,
                         bench_paged_decode, paged.variant, paged.block_size, n_kv_heads, batch,
                         context);
        }
      }
  for (int cached : {0, 4096, 32768})
    for (int suffix : {16, 128, 1024})
      for (int variant = 0; variant <= kPagedPrefillVariants; ++variant) {
        std::string name = "paged_prefill/";
        name += variant == 0 ? std::string("decode_fallback")
                             : std::string("v").append(std::to_string(variant));
        name += "/cached:" + std::to_string(cached) + "/suffix:" + std::to_string(suffix);
        register_timed(name, bench_paged_prefill, variant, cached, suffix);
      }
}

}  // namespace
}  // namespace kvc::cuda

int main(int argc, char** argv) {
  using namespace kvc::cuda;
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  try {
    std::string why;
    if (!cuda_device_available(&why)) {
      std::fprintf(stderr, "bench_cuda_attention: skipped, no GPU: %s\n", why.c_str());
      return kNoGpuExitCode;
    }
    Workbench& wb = workbench();
    KVC_CUDA_CHECK(cudaStreamCreate(&wb.stream));
    wb.copy_gbps = report_copy_bandwidth(wb.stream);
    register_benchmarks();
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    KVC_CUDA_CHECK(cudaStreamDestroy(wb.stream));
    wb = Workbench{};  // free the device buffers while the CUDA context is still alive
  } catch (const kvc::Error& error) {
    std::fprintf(stderr, "bench_cuda_attention: %s\n", error.what());
    return 1;
  }
  return 0;
}
