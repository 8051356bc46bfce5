// ch05_prefix_cache: a workload served with the prefix cache on and off, in one run.
//
//   ch05_prefix_cache model.bin -z tokenizer.bin
//                     [--workload system-prompt|chat|few-shot|none|zipf|idle-chat]
//                     [--cache radix|hash] [--order fcfs|lpm] [--requests N] [--turns N]
//                     [--max-new-tokens N] [--block-size N] [--kv-blocks N] [--max-running N]
//                     [--repeats N] [--trace] [--dot FILE] [--json FILE]
//
// Runs the same requests through chapter 04's scheduler over a pool whose
// block manager caches prefixes, and over a plain chapter 04 pool (the two
// alternate, --repeats times; each row is the median run). Prints both rows
// of prefill computed and skipped, hit rate, peak KV bytes, time to first
// token and throughput, and checks that every completion's tokens are
// identical (exit 1 if not).
#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstdio>
#include <iostream>

#include "chapters/05_radix_cache/prefix_caching_blocks.hpp"
#include "chapters/05_radix_cache/radix_cache.hpp"
#include "chapters/05_radix_cache/serve_flags.hpp"
#include "chapters/05_radix_cache/workloads.hpp"
#include "common/checkpoint.hpp"
#include "common/cli.hpp"
#include "common/output_file.hpp"
#include "common/report.hpp"
#include "common/thread_pool.hpp"
#include "common/tokenizer.hpp"

namespace kvc::ch05 {
namespace {

struct Options {
  std::string checkpoint;
  std::string tokenizer = "tokenizer.bin";
  std::string workload = "system-prompt";
  std::string cache = "radix";
  std::string order = "fcfs";
  ServeFlags serve;
  int kv_blocks = 0;
  bool trace = false;
  std::string dot_path;
  std::string json_path;
};

struct Row {
  WorkloadRun run;
  PrefixCacheStats stats;  // cache on only
  SizeInfo cache_size;
  std::string dot;
};

int prefix_cache_main(const Options& o) {
  check_outputs({o.json_path, o.dot_path}, {o.checkpoint, o.tokenizer});
  KVC_CHECK(o.dot_path.empty() || o.cache == "radix",
            "--dot draws the radix tree: use --cache radix");
  const Model model = load_checkpoint(o.checkpoint);
  const Tokenizer tokenizer(o.tokenizer, model.config.vocab_size);
  ThreadPool pool(o.serve.threads);
  auto engine = make_engine(model, parse_device(o.serve.device), &pool);

  const WorkloadOptions w = o.serve.workload_options(parse_workload(o.workload));
  const std::vector<ch04::Request> requests = first_round(w, tokenizer);
  const bool chat = w.workload == Workload::kChat || w.workload == Workload::kIdleChat;
  ch04::validate_requests(requests, model.config, o.serve.max_running);
  const int kv_blocks =
      o.kv_blocks > 0 ? o.kv_blocks : default_pool_blocks(w, requests, o.serve.block_size);
  ch04::SchedulerOptions scheduling;
  scheduling.max_running = o.serve.max_running;
  scheduling.order = o.order == "lpm" ? ch04::AdmissionOrder::kLongestPrefixMatch
                                      : ch04::AdmissionOrder::kFirstComeFirstServed;

  std::vector<Row> on_runs, off_runs;
  for (int repeat = 0; repeat < o.serve.repeats; ++repeat) {
    for (const bool cached : {true, false}) {
      auto kv = cached ? make_prefix_cached_pool(model.config, engine->context(), o.cache,
                                                 kv_blocks, o.serve.block_size)
                       : ch04::make_paged_cache(model.config, engine->context(), kv_blocks,
                                                o.serve.block_size);
      ch04::SchedulerOptions s = scheduling;
      const bool trace = o.trace && cached && repeat == 0;
      const auto* manager =
          cached ? &static_cast<const PrefixCachingBlockManager&>(kv->blocks()) : nullptr;
      PrefixCacheStats seen;
      if (trace) {
        s.on_step = [&](const ch04::StepRecord& step) {
          const PrefixCacheStats& now = manager->stats();
          std::printf("step %4d: running %3d, batch %4d tokens, blocks %4d/%d (%d cached only)",
                      step.step, step.running, step.batch_tokens, step.blocks_used, kv_blocks,
                      step.blocks_reclaimable);
          for (std::size_t i = 0; i < step.joined.size(); ++i) {
            std::printf(i == 0 ? ", joined %d(+%d cached)" : " %d(+%d cached)", step.joined[i],
                        step.joined_cached[i]);
          }
          if (now.inserted_blocks > seen.inserted_blocks) {
            std::printf(", cached %lld blocks", now.inserted_blocks - seen.inserted_blocks);
          }
          if (now.evicted_blocks > seen.evicted_blocks) {
            std::printf(", evicted %lld", now.evicted_blocks - seen.evicted_blocks);
          }
          std::printf("\n");
          seen = now;
        };
      }
      Row row{run_workload(*engine, *kv, tokenizer, w, s), {}, {}, {}};
      if (manager) {
        row.stats = manager->stats();
        row.cache_size = manager->cache().size_info();
        if (const auto* radix = dynamic_cast<const RadixCache*>(&manager->cache())) {
          row.dot = radix->to_dot();
        }
      }
      (cached ? on_runs : off_runs).push_back(std::move(row));
    }
  }
  auto median = [](std::vector<Row>& rows) -> const Row& {
    std::sort(rows.begin(), rows.end(), [](const Row& a, const Row& b) {
      return a.run.tokens_per_second() < b.run.tokens_per_second();
    });
    return rows[rows.size() / 2];
  };
  const Row& on = median(on_runs);
  const Row& off = median(off_runs);
  const bool identical = on.run.tokens == off.run.tokens;

  const double bytes_per_block =
      2.0 * model.config.n_layers * o.serve.block_size * model.config.kv_dim() * sizeof(float);
  Table table({"prefix cache", "prefill computed", "prefill skipped", "hit rate",
               "of shared skipped", "preempted", "peak KV in use", "mean TTFT", "tok/s"});
  for (const auto& [label, row] : {std::pair<std::string, const Row*>{"on (" + o.cache + ")", &on},
                                   std::pair<std::string, const Row*>{"off (chapter 04)", &off}}) {
    table.add_row({label, format_thousands(row->run.prefill_tokens_computed),
                   format_thousands(row->run.prefill_tokens_skipped),
                   format_percent(row->run.hit_rate()), format_percent(row->run.shared_hit_rate()),
                   std::to_string(row->run.preemptions),
                   format_bytes(row->run.peak_blocks_in_use * bytes_per_block),
                   format_fixed(row->run.mean_time_to_first_token_ms, 2) + " ms",
                   format_fixed(row->run.tokens_per_second(), 1)});
  }
  std::printf(
      "workload %s: %zu completions, block size %d, pool %d blocks, order %s, median of %d\n\n",
      o.workload.c_str(), on.run.tokens.size(), o.serve.block_size, kv_blocks, o.order.c_str(),
      o.serve.repeats);
  table.print(std::cout);
  const double speedup = on.run.tokens_per_second() / off.run.tokens_per_second();
  std::printf("\nthroughput on/off: %.3fx; tokens identical with the cache on and off: %s\n",
              speedup, identical ? "yes" : "NO");
  std::printf("cache at the end: %d blocks evictable, %d protected; %lld of %lld lookups hit\n",
              on.cache_size.evictable_blocks, on.cache_size.protected_blocks, on.stats.hits,
              on.stats.lookups);
  if (chat) {
    std::printf("chat: every later turn found at least %s of the previous turn cached\n",
                format_percent(on.run.min_previous_turn_reuse).c_str());
  }

  if (!o.dot_path.empty()) {
    OutputFile dot(o.dot_path);
    dot.write(on.dot);
    dot.commit();
  }
  if (!o.json_path.empty()) {
    auto fields = [&](const Row& row) {
      JsonObject j;
      j.add("prefill_tokens_computed", row.run.prefill_tokens_computed)
          .add("prefill_tokens_skipped", row.run.prefill_tokens_skipped)
          .add("prompt_tokens", row.run.prompt_tokens)
          .add("prompt_tokens_skipped", row.run.prompt_tokens_skipped)
          .add("hit_rate", row.run.hit_rate())
          .add("preemptions", row.run.preemptions)
          .add("shared_prompt_tokens", row.run.shared_prompt_tokens)
          .add("shared_hit_rate", row.run.shared_hit_rate())
          .add("peak_kv_bytes", row.run.peak_blocks_in_use * bytes_per_block)
          .add("mean_time_to_first_token_ms", row.run.mean_time_to_first_token_ms)
          .add("tokens_sampled", row.run.tokens_sampled)
          .add("tokens_per_second", row.run.tokens_per_second());
      return j;
    };
    JsonObject json;
    json.add("workload", o.workload)
        .add("cache", o.cache)
        .add("order", o.order)
        .add("completions", on.run.tokens.size())
        .add("block_size", o.serve.block_size)
        .add("kv_blocks", kv_blocks)
        .add("repeats", o.serve.repeats)
        .add("cache_on", fields(on))
        .add("cache_off", fields(off))
        .add("throughput_ratio_on_off", speedup)
        .add("tokens_identical", identical);
    if (chat) {
      json.add("min_previous_turn_reuse", on.run.min_previous_turn_reuse);
    }
    json.save(o.json_path);
  }
  return identical ? 0 : 1;
}

}  // namespace
}  // namespace kvc::ch05

int main(int argc, char** argv) {
  CLI::App app("Chapter 05: a workload served with the prefix cache on and off");
  kvc::ch05::Options o;
  kvc::add_model_options(app, o.checkpoint, o.tokenizer);
  app.add_option("--workload", o.workload, "what the requests share")
      ->check(CLI::IsMember(kvc::ch05::workload_names()))
      ->capture_default_str();
  app.add_option("--cache", o.cache, "radix tree (SGLang) or hash chain (vLLM)")
      ->check(CLI::IsMember({"radix", "hash"}))
      ->capture_default_str();
  app.add_option("--order", o.order, "admission: first come first served, or longest prefix match")
      ->check(CLI::IsMember({"fcfs", "lpm"}))
      ->capture_default_str();
  kvc::ch05::add_serve_flags(app, o.serve);
  app.add_option("--kv-blocks", o.kv_blocks,
                 "blocks in the pool (default: a round's requests at their longest, twice)")
      ->check(kvc::integer_in(1, kvc::ch04::kMaxPoolBlocks));
  app.add_flag("--trace", o.trace, "print one line per step of the first cached run");
  app.add_option("--dot", o.dot_path, "write the radix tree at the end as Graphviz DOT");
  app.add_option("--json", o.json_path, "write both rows as JSON to this file");
  return kvc::run_program(app, argc, argv, [&] { return kvc::ch05::prefix_cache_main(o); });
}
