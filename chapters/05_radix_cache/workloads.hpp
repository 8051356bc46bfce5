// Chapter 05: the workloads a prefix cache is for, and one run of each.
//
//   system-prompt  every request starts with the same long instructions, then
//                  asks its own question (an assistant behind one system prompt)
//   chat           several sessions, each turn's prompt = the previous turn's
//                  prompt + its answer + the user's next line
//   few-shot       three tasks, each a fixed set of worked examples, then a
//                  query; requests of the tasks arrive interleaved
//   none           nothing shared but BOS: the cache can only cost
//
// The same requests run twice through chapter 04's scheduler: over a pool
// whose block manager caches prefixes (chapter 05) and over a plain one.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "chapters/04_paged_allocator/scheduler.hpp"
#include "common/tokenizer.hpp"

namespace kvc::ch05 {

enum class Workload { kSystemPrompt, kChat, kFewShot, kNone };

// "system-prompt", "chat", "few-shot" or "none"; throws kvc::Error for anything else.
Workload parse_workload(std::string_view name);
const char* workload_name(Workload workload);

struct WorkloadOptions {
  Workload workload = Workload::kSystemPrompt;
  int requests = 100;  // system-prompt, few-shot, none: requests; chat: sessions x turns
  int turns = 4;       // chat: turns per session
  int max_new_tokens = 32;
  SamplerOptions sampling;  // request r samples with seed sampling.seed + 1000 r
};

// What one run of a workload did, summed over its rounds (chat runs one round per turn).
struct WorkloadRun {
  std::vector<std::vector<int>> tokens;  // every completion's tokens, round by round
  long long prefill_tokens_computed = 0;
  long long prefill_tokens_skipped = 0;  // recomputes after preemption included
  long long prompt_tokens = 0;
  long long prompt_tokens_skipped = 0;  // at first admission
  int preemptions = 0;
  // Prompt tokens some earlier request (or turn) also had: what a perfect
  // cache could skip, less the first time each shared prefix is computed.
  long long shared_prompt_tokens = 0;
  long long tokens_sampled = 0;
  int peak_blocks_in_use = 0;
  double wall_ms = 0;
  double mean_time_to_first_token_ms = 0;
  // chat: per turn after the first, cached tokens / tokens of the previous turn, the lowest
  double min_previous_turn_reuse = 0;

  // Prompt positions the cache held at first admission, of all prompt positions.
  double hit_rate() const;
  // The same, of the prompt positions an earlier request shared.
  double shared_hit_rate() const;
  double tokens_per_second() const;
};

// The prompts of a workload's first round (chat: each session's first turn), as token ids.
std::vector<ch04::Request> first_round(const WorkloadOptions& options, const Tokenizer& tokenizer);

// Runs every round of the workload through the scheduler over `kv` (which
// keeps its cache between rounds). Throws kvc::Error for a request the
// scheduler refuses (e.g. a chat that outgrows the model's context).
WorkloadRun run_workload(Engine& engine, ch04::PagedKVStrategy& kv, const Tokenizer& tokenizer,
                         const WorkloadOptions& options,
                         const ch04::SchedulerOptions& scheduling = {});

}  // namespace kvc::ch05
