// Chapter 07 on the GPU: decode attention over an int8 and an fp8 paged pool
// against chapter 04's over an fp16 pool, at long context.
//
// Shape: 32 query heads x 128, 8 KV heads (Llama-3-8B's attention), blocks of
// 16 handed out in a random order; 8 sequences of 16K positions, and 1 of 32K.
// Each quantized case times its kernel (cuda::attention_decode_paged_quant,
// the best variant, and v1, v2, v3 by number: paged_quant/int8/v2/...) and, interleaved with it on
// the same shape, chapter 04's paged decode over fp16 pages at its best variant for the shape (what
// an fp16 engine runs). Counters:
//   x_fp16:     fp16 time / this time (2.0 = twice as fast)
//   pool_GBps:  the format's pool bytes for the context (codes and scales,
//               K and V) read once, per second
//   of_copy_bw: pool_GBps over the device-to-device copy bandwidth measured
//               at start-up (bytes read + written, as bandwidthTest counts)
// The fp16 rows time the fp16 kernel alone (x_fp16 = 1).
//
//   build/bin/bench_cuda_quant
//   build/bin/bench_cuda_quant --benchmark_filter='int8'
//   build/bin/bench_cuda_quant --benchmark_filter='/(fp16|int8/v[0-9])/batch:1/'  # variants
// Without a GPU it prints why and exits 0 (nothing to time).
#include <benchmark/benchmark.h>

#include <cuda_runtime_api.h>

#include <algorithm>
#include <cstdio>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "benchmarks/cuda/cuda_timing.hpp"
#include "common/check.hpp"
#include "common/cuda/device.hpp"
#include "common/cuda/device_buffer.hpp"
#include "common/kv_dtype.hpp"
#include "kernels/cuda/attention.hpp"
#include "kernels/cuda/attention_paged_quant.hpp"

namespace kvc::cuda {
namespace {

constexpr int kHeads = 32;
constexpr int kKvHeads = 8;
constexpr int kHeadDim = 128;
constexpr int kBlockSize = 16;

cudaStream_t g_stream = nullptr;
double g_copy_gbps = 0.0;

// One shape's pools: fp16 pages and 8-bit codes with their scales, all over
// the same random block tables. Values do not change the timing; they are
// finite in every format (0x3C: fp16 1.06 pairs, E4M3 1.5, int8 60).
struct Pools {
  DeviceBuffer<std::byte> k_f16, v_f16;          // [blocks][16][8][128] fp16
  DeviceBuffer<unsigned char> k_codes, v_codes;  // [blocks][16][8][128]
  DeviceBuffer<float> k_scales, v_scales;        // [blocks][16][8]
  DeviceBuffer<int> block_tables, table_rows, lengths;
  DeviceBuffer<float> q, out;  // [batch][32][128]
  DeviceBuffer<std::byte> workspace;
  PagedDecodeShape shape;
};

Pools make_pools(int batch, int context) {
  Pools p;
  const int blocks_per_seq = context / kBlockSize;
  const std::size_t rows = std::size_t(batch) * context * kKvHeads;
  const std::size_t values = rows * kHeadDim;
  p.k_f16 = DeviceBuffer<std::byte>(values * 2);
  p.v_f16 = DeviceBuffer<std::byte>(values * 2);
  p.k_codes = DeviceBuffer<unsigned char>(values);
  p.v_codes = DeviceBuffer<unsigned char>(values);
  p.k_scales = DeviceBuffer<float>(rows);
  p.v_scales = DeviceBuffer<float>(rows);
  for (auto* b : {&p.k_f16, &p.v_f16}) {
    KVC_CUDA_CHECK(cudaMemsetAsync(b->data(), 0x3C, b->bytes(), g_stream));
  }
  for (auto* b : {&p.k_codes, &p.v_codes}) {
    KVC_CUDA_CHECK(cudaMemsetAsync(b->data(), 0x3C, b->bytes(), g_stream));
  }
  for (auto* b : {&p.k_scales, &p.v_scales}) {
    KVC_CUDA_CHECK(cudaMemsetAsync(b->data(), 0x3C, b->bytes(), g_stream));
  }
  std::vector<int> tables(std::size_t(batch) * blocks_per_seq);
  std::iota(tables.begin(), tables.end(), 0);
  std::shuffle(tables.begin(), tables.end(), std::mt19937(1));
  std::vector<int> table_rows(batch);
  std::iota(table_rows.begin(), table_rows.end(), 0);
  p.block_tables = to_device(tables);
  p.table_rows = to_device(table_rows);
  p.lengths = to_device(std::vector<int>(batch, context));
  p.q = DeviceBuffer<float>(std::size_t(batch) * kHeads * kHeadDim);
  p.out = DeviceBuffer<float>(p.q.size());
  KVC_CUDA_CHECK(cudaMemsetAsync(p.q.data(), 0, p.q.bytes(), g_stream));
  p.shape = {.n_tokens = batch,
             .block_size = kBlockSize,
             .max_blocks_per_seq = blocks_per_seq,
             .n_heads = kHeads,
             .n_kv_heads = kKvHeads,
             .head_dim = kHeadDim,
             .cache_dtype = NumberFormat::fp16};
  std::size_t workspace = attention_decode_paged_workspace_bytes(kBestVariant, p.shape);
  for (int variant = kBestVariant; variant <= kPagedQuantDecodeVariants; ++variant)
    workspace = std::max(workspace, attention_decode_paged_quant_workspace_bytes(variant, p.shape));
  p.workspace = DeviceBuffer<std::byte>(workspace);
  return p;
}

void run_fp16(Pools& p) {
  attention_decode_paged(kBestVariant, p.out.data(), p.q.data(), p.k_f16.data(), p.v_f16.data(),
                         p.block_tables.data(), p.table_rows.data(), p.lengths.data(), p.shape,
                         p.workspace.data(), g_stream);
}

void run_quant(Pools& p, const KvDtype& dtype, int variant) {
  attention_decode_paged_quant(variant, dtype, p.out.data(), p.q.data(), p.k_codes.data(),
                               p.k_scales.data(), p.v_codes.data(), p.v_scales.data(),
                               p.block_tables.data(), p.table_rows.data(), p.lengths.data(),
                               p.shape, p.workspace.data(), g_stream);
}

// `format`: "fp16", or a KvDtype name the quantized kernel runs at `variant` (0: best).
void bench_format(benchmark::State& state, const std::string& format, int variant, int batch,
                  int context) {
  Pools p = make_pools(batch, context);
  const bool fp16 = format == "fp16";
  const KvDtype dtype = parse_kv_dtype(fp16 ? "int8" : format, kHeadDim);  // int8: unused
  const std::size_t rows = std::size_t(batch) * context * kKvHeads;
  const double pool_bytes = fp16 ? 2.0 * rows * kHeadDim * 2  // K and V
                                 : 2.0 * rows * (kHeadDim + sizeof(float));
  const auto run = [&] { fp16 ? run_fp16(p) : run_quant(p, dtype, variant); };
  run();  // warm up (and surface a failure before timing)
  run_fp16(p);
  KVC_CUDA_CHECK(cudaStreamSynchronize(g_stream));
  double seconds = 0.0, fp16_seconds = 0.0;
  for (auto _ : state) {
    const double s = time_on_stream(g_stream, run) * 1e-3;
    state.SetIterationTime(s);
    seconds += s;
    // Interleaved: the fp16 kernel on the same shape (manual time counts only `s`).
    fp16_seconds += fp16 ? s : time_on_stream(g_stream, [&] { run_fp16(p); }) * 1e-3;
  }
  const double gbps = pool_bytes * state.iterations() / seconds / 1e9;
  state.counters["x_fp16"] = fp16_seconds / seconds;
  state.counters["pool_GBps"] = gbps;
  state.counters["of_copy_bw"] = gbps / g_copy_gbps;
  state.SetLabel("fp16 best=v" + std::to_string(attention_decode_paged_best_variant(p.shape)) +
                 ", quantized best=v" +
                 std::to_string(attention_decode_paged_quant_best_variant(p.shape)));
}

void register_benchmarks() {
  struct Shape {
    int batch, context;
  };
  for (const Shape& s : {Shape{8, 16384}, Shape{1, 32768}})
    for (const char* format : {"fp16", "int8", "fp8"})
      for (int variant = kBestVariant; variant <= kPagedQuantDecodeVariants; ++variant) {
        const bool fp16 = std::string(format) == "fp16";
        if (fp16 && variant != kBestVariant)
          continue;  // chapter 04's kernels: bench_cuda_attention
        // The best variant keeps its old name (paged_quant/int8/batch:...); numbered ones add /vN.
        const std::string name = std::string("paged_quant/") + format +
                                 (variant == kBestVariant ? "" : "/v" + std::to_string(variant)) +
                                 "/batch:" + std::to_string(s.batch) +
                                 "/context:" + std::to_string(s.context);
        benchmark::RegisterBenchmark(name.c_str(), bench_format, std::string(format), variant,
                                     s.batch, s.context)
            ->UseManualTime()
            ->Unit(benchmark::kMicrosecond)
            ->MinTime(0.1);
      }
}

}  // namespace
}  // namespace kvc::cuda

int main(int argc, char** argv) {
  using namespace kvc::cuda;
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  std::string why;
  if (!cuda_device_available(&why)) {
    std::fprintf(stderr, "bench_cuda_quant: skipped, no GPU: %s\n", why.c_str());
    return kNoGpuExitCode;
  }
  try {
    KVC_CUDA_CHECK(cudaStreamCreate(&g_stream));
    g_copy_gbps = report_copy_bandwidth(g_stream);
    register_benchmarks();
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    KVC_CUDA_CHECK(cudaStreamDestroy(g_stream));
  } catch (const kvc::Error& error) {
    std::fprintf(stderr, "bench_cuda_quant: %s\n", error.what());
    return 1;
  }
  return 0;
}
