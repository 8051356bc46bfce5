// ch06_pressure: the memory-pressure experiment — hit rate and throughput as the pool shrinks.
//
//   ch06_pressure model.bin -z tokenizer.bin [--workloads system-prompt,chat,zipf,idle-chat]
//                 [--policies lru,lfu,fifo,priority,slru] [--pools N | --pool-blocks A,B,...]
//                 [--documents N] [--zipf-s S] [--json FILE]
//                 [--requests N] [--turns N] [--max-new-tokens N] [-t T] [-s SEED]
//                 [--block-size N] [--max-running N] [--repeats N] [--device cpu|cuda]
//                 [--threads N]
//
// For each workload it first runs the requests over a pool big enough that
// nothing is ever evicted: that run's tokens are the reference, its peak is
// "fits everything", the longest request is "fits one request", and its
// block trace is what Belady's MIN (belady.hpp) sees. Then, at pool sizes
// spaced evenly on a log scale between the two, it runs the workload once
// per eviction policy and prints, per row: the hit rate, MIN's hit rate with
// the same number of blocks, prefill computed, blocks evicted, preemptions,
// throughput, and whether every completion's tokens equal the reference's
// (exit 1 if any differ: an evicted prefix must be recomputed, never corrupted).
#include <CLI/CLI.hpp>
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "chapters/05_radix_cache/prefix_caching_blocks.hpp"
#include "chapters/05_radix_cache/serve_flags.hpp"
#include "chapters/05_radix_cache/workloads.hpp"
#include "chapters/06_lru_eviction/belady.hpp"
#include "chapters/06_lru_eviction/eviction_policy.hpp"
#include "chapters/06_lru_eviction/policy_radix_cache.hpp"
#include "common/checkpoint.hpp"
#include "common/cli.hpp"
#include "common/output_file.hpp"
#include "common/report.hpp"
#include "common/thread_pool.hpp"
#include "common/tokenizer.hpp"

namespace kvc::ch06 {
namespace {

// Every eviction policy's name, for --policies.
std::vector<std::string> policy_names() {
  std::vector<std::string> names;
  for (EvictionPolicy p : kEvictionPolicies) names.emplace_back(eviction_policy_name(p));
  return names;
}

struct Options {
  std::string checkpoint;
  std::string tokenizer = "tokenizer.bin";
  std::vector<std::string> workloads = {"system-prompt", "chat", "zipf", "idle-chat"};
  // priority is left out by default: through chapter 05's interface every
  // request has the same priority, so it orders exactly as lru.
  std::vector<std::string> policies = {"lru", "lfu", "fifo", "slru"};
  int pools = 6;
  std::vector<int> pool_blocks;
  ch05::ServeFlags serve = {.requests = 48, .max_new_tokens = 24, .repeats = 1};
  int documents = 24;
  double zipf_s = 1.0;
  std::string json_path;
};

struct Measured {
  ch05::WorkloadRun run;
  long long evicted_blocks = 0;
};

// One run of the workload over a pool of `pool_blocks` whose cache evicts by `policy`.
Measured measure(Engine& engine, const ModelConfig& config, const Tokenizer& tokenizer,
                 const ch05::WorkloadOptions& w, const ch04::SchedulerOptions& scheduling,
                 const std::string& policy, int pool_blocks, int block_size) {
  auto blocks = std::make_unique<ch05::PrefixCachingBlockManager>(
      pool_blocks, block_size, make_evicting_cache(policy, block_size));
  const ch05::PrefixCachingBlockManager& manager = *blocks;
  auto kv = ch04::make_paged_cache(config, engine.context(), std::move(blocks));
  Measured m{ch05::run_workload(engine, *kv, tokenizer, w, scheduling), 0};
  m.evicted_blocks = manager.stats().evicted_blocks;
  return m;
}

// `points` pool sizes from `largest` down to `smallest`, evenly spaced on a log scale.
std::vector<int> pool_sizes(int largest, int smallest, int points) {
  std::vector<int> sizes;
  for (int k = 0; k < points; ++k) {
    const double t = points > 1 ? static_cast<double>(k) / (points - 1) : 0.0;
    const int size = static_cast<int>(std::lround(largest * std::pow(1.0 * smallest / largest, t)));
    if (sizes.empty() || size < sizes.back()) sizes.push_back(size);
  }
  return sizes;
}

// A workload run over a pool that fits it all: the reference tokens, the
// trace MIN reads, and the two ends of the sweep.
struct Baseline {
  std::string name;
  ch05::WorkloadOptions options;
  Measured reference;
  BlockTrace trace;
  int fits_everything = 0;  // the unbounded run's peak: nothing is ever evicted
  int fits_one = 1;         // the longest request at its longest
};

Baseline baseline(Engine& engine, const ModelConfig& config, const Tokenizer& tokenizer,
                  const ch04::SchedulerOptions& scheduling, const std::string& name,
                  const Options& o) {
  Baseline b;
  b.name = name;
  ch05::WorkloadOptions& w = b.options;
  w = o.serve.workload_options(ch05::parse_workload(name));
  w.documents = o.documents;
  w.zipf_s = o.zipf_s;
  const std::vector<ch04::Request> first = ch05::first_round(w, tokenizer);
  ch04::validate_requests(first, config, o.serve.max_running);
  b.reference =
      measure(engine, config, tokenizer, w, scheduling, "lru",
              ch05::default_pool_blocks(w, first, o.serve.block_size), o.serve.block_size);
  b.trace = block_trace(b.reference.run, o.serve.block_size, o.serve.max_new_tokens);
  b.fits_everything = b.reference.run.peak_blocks_used;
  for (int prompt : b.reference.run.prompt_sizes) {
    b.fits_one = std::max(
        b.fits_one, ch04::blocks_needed(prompt + o.serve.max_new_tokens - 1, o.serve.block_size));
  }
  return b;
}

int pressure_main(const Options& o) {
  check_outputs({o.json_path}, {o.checkpoint, o.tokenizer});
  const Model model = load_checkpoint(o.checkpoint);
  const Tokenizer tokenizer(o.tokenizer, model.config.vocab_size);
  ThreadPool pool(o.serve.threads);
  auto engine = make_engine(model, parse_device(o.serve.device), &pool);
  ch04::SchedulerOptions scheduling;
  scheduling.max_running = o.serve.max_running;

  // Every baseline first, so a pool too small for a workload is refused
  // before any table is printed.
  std::vector<Baseline> baselines;
  for (const std::string& name : o.workloads) {
    baselines.push_back(baseline(*engine, model.config, tokenizer, scheduling, name, o));
    for (int pool_blocks : o.pool_blocks) {
      KVC_CHECK(pool_blocks >= baselines.back().fits_one, "the longest request of ", name,
                " needs ", baselines.back().fits_one, " blocks but the pool has only ",
                pool_blocks);
    }
  }

  bool all_identical = true;
  std::vector<JsonObject> workload_reports;
  for (const Baseline& b : baselines) {
    const std::vector<int> pools =
        o.pool_blocks.empty() ? pool_sizes(b.fits_everything, b.fits_one, o.pools) : o.pool_blocks;
    std::printf(
        "workload %s: %zu completions, %d distinct blocks of %d tokens in the trace; fits "
        "everything: %d blocks, fits one request: %d\n\n",
        b.name.c_str(), b.reference.run.tokens.size(), b.trace.distinct_blocks, o.serve.block_size,
        b.fits_everything, b.fits_one);
    Table table({"pool blocks", "of everything", "policy", "hit rate", "Belady", "prefill computed",
                 "evicted", "preempted", "tok/s", "tokens same"});
    std::vector<JsonObject> rows;
    for (int pool_blocks : pools) {
      const double belady = belady_hit_rate(b.trace, pool_blocks);
      for (const std::string& policy : o.policies) {
        std::vector<Measured> runs;
        for (int r = 0; r < o.serve.repeats; ++r) {
          runs.push_back(measure(*engine, model.config, tokenizer, b.options, scheduling, policy,
                                 pool_blocks, o.serve.block_size));
        }
        std::sort(runs.begin(), runs.end(), [](const Measured& x, const Measured& y) {
          return x.run.tokens_per_second() < y.run.tokens_per_second();
        });
        const Measured& m = runs[runs.size() / 2];
        const bool identical = m.run.tokens == b.reference.run.tokens;
        all_identical = all_identical && identical;
        table.add_row({std::to_string(pool_blocks),
                       format_percent(static_cast<double>(pool_blocks) / b.fits_everything), policy,
                       format_percent(m.run.hit_rate()), format_percent(belady),
                       format_thousands(m.run.prefill_tokens_computed),
                       format_thousands(m.evicted_blocks), std::to_string(m.run.preemptions),
                       format_fixed(m.run.tokens_per_second(), 1), identical ? "yes" : "NO"});
        JsonObject row;
        row.add("pool_blocks", pool_blocks)
            .add("policy", policy)
            .add("hit_rate", m.run.hit_rate())
            .add("belady_hit_rate", belady)
            .add("prefill_tokens_computed", m.run.prefill_tokens_computed)
            .add("prefill_tokens_skipped", m.run.prefill_tokens_skipped)
            .add("evicted_blocks", m.evicted_blocks)
            .add("preemptions", m.run.preemptions)
            .add("tokens_sampled", m.run.tokens_sampled)
            .add("wall_ms", m.run.wall_ms)
            .add("tokens_per_second", m.run.tokens_per_second())
            .add("tokens_identical", identical);
        rows.push_back(std::move(row));
      }
    }
    table.print(std::cout);
    std::printf("\n");
    JsonObject report;
    report.add("workload", b.name)
        .add("completions", b.reference.run.tokens.size())
        .add("prompt_tokens", b.trace.prompt_tokens)
        .add("trace_distinct_blocks", b.trace.distinct_blocks)
        .add("fits_everything_blocks", b.fits_everything)
        .add("fits_one_request_blocks", b.fits_one)
        .add("unbounded_hit_rate", b.reference.run.hit_rate())
        .add("rows", rows);
    workload_reports.push_back(std::move(report));
  }
  std::printf("tokens identical to the unbounded run in every row: %s\n",
              all_identical ? "yes" : "NO");

  if (!o.json_path.empty()) {
    std::string policies;
    for (const std::string& p : o.policies) policies += (policies.empty() ? "" : ",") + p;
    JsonObject json;
    json.add("block_size", o.serve.block_size)
        .add("requests", o.serve.requests)
        .add("turns", o.serve.turns)
        .add("max_new_tokens", o.serve.max_new_tokens)
        .add("documents", o.documents)
        .add("zipf_s", o.zipf_s)
        .add("max_running", o.serve.max_running)
        .add("repeats", o.serve.repeats)
        .add("policies", policies)
        .add("workloads", workload_reports)
        .add("tokens_identical", all_identical);
    json.save(o.json_path);
  }
  return all_identical ? 0 : 1;
}

}  // namespace
}  // namespace kvc::ch06

int main(int argc, char** argv) {
  CLI::App app("Chapter 06: hit rate and throughput per eviction policy as the KV pool shrinks");
  kvc::ch06::Options o;
  kvc::add_model_options(app, o.checkpoint, o.tokenizer);
  app.add_option("--workloads", o.workloads, "comma-separated workloads")
      ->delimiter(',')
      ->check(CLI::IsMember(kvc::ch05::workload_names()))
      ->capture_default_str();
  app.add_option("--policies", o.policies, "comma-separated eviction policies")
      ->delimiter(',')
      ->check(CLI::IsMember(kvc::ch06::policy_names()))
      ->capture_default_str();
  auto* pools = app.add_option("--pools", o.pools,
                               "pool sizes, from fits everything down to fits one request")
                    ->check(kvc::integer_in(1, 64))
                    ->capture_default_str();
  app.add_option("--pool-blocks", o.pool_blocks, "comma-separated pool sizes in blocks instead")
      ->delimiter(',')
      ->check(kvc::integer_in(1, kvc::ch04::kMaxPoolBlocks))
      ->excludes(pools);
  app.add_option("--documents", o.documents, "zipf: distinct documents")
      ->check(kvc::integer_in(1, 100000))
      ->capture_default_str();
  app.add_option("--zipf-s", o.zipf_s, "zipf: the exponent s (0 = uniform)")
      ->check(kvc::number_in(0, 10))
      ->capture_default_str();
  kvc::ch05::add_serve_flags(app, o.serve);
  app.add_option("--json", o.json_path, "write every row as JSON to this file");
  return kvc::run_program(app, argc, argv, [&] { return kvc::ch06::pressure_main(o); });
}
