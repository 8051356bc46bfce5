// ch02_bench_decode: the cost of ONE decode step as the context grows,
// chapter 01 (recompute the whole sequence) vs chapter 02 (contiguous cache).
//
//   build/bin/ch02_bench_decode [--benchmark_filter=Cached]
//
// Model: the generated `tour` preset (3M params, 4 layers, 8 query / 4 KV heads).
// Counters: kv_bytes_read is what the cached step's attention reads from the
// cache (K and V of every earlier position, every layer); GB_per_s is that per
// second of the whole step and of_read_bw its fraction of the streaming-read
// bandwidth measured at start-up.
#include <benchmark/benchmark.h>

#include "benchmarks/cpu/roofline_counters.hpp"
#include "chapters/01_naive_attention/naive_attention.hpp"
#include "chapters/02_contiguous_kv_cache/contiguous_kv_cache.hpp"
#include "common/thread_pool.hpp"
#include "engine/forward.hpp"
#include "tools/synthetic_model.hpp"

namespace {

const kvc::Model& tour_model() {
  static const kvc::Model model =
      kvc::make_synthetic_model(kvc::find_synthetic_preset("tour").config, /*seed=*/42);
  return model;
}

// A sequence of `n` tokens (any ids will do: the cost does not depend on them).
kvc::Batch sequence(int first, int last, int vocab) {
  kvc::Batch batch;
  for (int p = first; p <= last; ++p) batch.add((p * 7919) % vocab, 0, p, p == last);
  return batch;
}

// Chapter 01: producing the token at position `context` re-runs all context + 1 positions.
void BM_DecodeStepNaive(benchmark::State& state) {
  const kvc::Model& model = tour_model();
  const int context = static_cast<int>(state.range(0));
  kvc::ThreadPool pool(1);
  kvc::ch01::NaiveAttention kv(model.config, &pool);
  kvc::Activations acts;
  const kvc::Batch batch = sequence(0, context, model.config.vocab_size);
  for (auto _ : state) kvc::forward(model, batch, kv, acts, &pool);
  state.counters["context"] = context;
}

// Chapter 02: the same step with positions 0..context-1 already cached.
void BM_DecodeStepCached(benchmark::State& state) {
  const kvc::Model& model = tour_model();
  const kvc::ModelConfig& c = model.config;
  const int context = static_cast<int>(state.range(0));
  kvc::ThreadPool pool(1);
  kvc::ch02::ContiguousKVCache kv(c, /*max_seqs=*/1, &pool);
  kvc::Activations acts;
  kvc::forward(model, sequence(0, context - 1, c.vocab_size), kv, acts, &pool);  // prefill
  const kvc::Batch step = sequence(context, context, c.vocab_size);
  // Each iteration rolls the cache back to `context` positions and runs the
  // same step again, rewriting the same row.
  const kvc::bench::LoopTimer timer;
  for (auto _ : state) {
    kv.truncate(0, context);
    kvc::forward(model, step, kv, acts, &pool);
  }
  const double seconds = timer.seconds_per_iteration(state);

  const double kv_bytes = 2.0 * c.n_layers * (context + 1) * c.kv_dim() * sizeof(float);
  state.counters["context"] = context;
  state.counters["kv_bytes_read"] = kv_bytes;
  kvc::bench::report_read_roof(state, kv_bytes, seconds, 1);
}

void contexts(benchmark::internal::Benchmark* b) {
  b->ArgName("context")->Unit(benchmark::kMillisecond)->UseRealTime();
  for (int context : {32, 64, 128, 256, 511}) b->Arg(context);
}
BENCHMARK(BM_DecodeStepNaive)->Apply(contexts);
BENCHMARK(BM_DecodeStepCached)->Apply(contexts);

}  // namespace

// main(): benchmarks/cpu/bench_main.cpp (measures the read bandwidth first).
