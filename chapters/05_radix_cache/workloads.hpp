// Chapter 05: the workloads a prefix cache is for, and one run of each.
//
//   system-prompt  every request starts with the same long instructions, then
//                  asks its own question (an assistant behind one system prompt)
//   chat           several sessions, each turn's prompt = the previous turn's
//                  prompt + its answer + the user's next line
//   few-shot       three tasks, each a fixed set of worked examples, then a
//                  query; requests of the tasks arrive interleaved
//   none           nothing shared but BOS: the cache can only cost
// NEW (ch06), for the memory-pressure experiment:
//   zipf           many distinct documents, each request asks about one;
//                  popularity ~ Zipf(s): a few are hot, most are rare
//   idle-chat      chat whose sessions go quiet for a while and come back:
//                  each round only some sessions speak (seeded), so how
//                  recently a session spoke decides whether its history is
//                  still cached
//
// The same requests run twice through chapter 04's scheduler: over a pool
// whose block manager caches prefixes (chapter 05) and over a plain one.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "chapters/04_paged_allocator/scheduler.hpp"
#include "common/tokenizer.hpp"

namespace kvc::ch05 {

enum class Workload { kSystemPrompt, kChat, kFewShot, kNone, kZipf, kIdleChat };

// "system-prompt", "chat", "few-shot", "none", "zipf" or "idle-chat"; throws
// kvc::Error for anything else.
Workload parse_workload(std::string_view name);
const char* workload_name(Workload workload);
// Every workload's name, in the order above (for a CLI's choices).
const std::vector<std::string>& workload_names();

struct WorkloadOptions {
  Workload workload = Workload::kSystemPrompt;
  int requests = 100;  // system-prompt, few-shot, none, zipf: requests;
                       // chat, idle-chat: sessions x turns
  int turns = 4;       // chat, idle-chat: turns per session
  int max_new_tokens = 32;
  SamplerOptions sampling;  // request r samples with seed sampling.seed + 1000 r
  // zipf: the number of distinct documents and the exponent s (document of
  // popularity rank k is asked for with probability ~ 1 / k^s)
  int documents = 24;
  double zipf_s = 1.0;
  // zipf and idle-chat draw the document / the speaking sessions from this seed
  std::uint64_t workload_seed = 7;
};

// What one run of a workload did, summed over its rounds (chat runs one round per turn).
struct WorkloadRun {
  std::vector<std::vector<int>> tokens;  // every completion's tokens, round by round
  std::vector<int> prompt_sizes;         // [tokens] the prompt's part of each
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
  int peak_blocks_used = 0;  // a prefix cache's blocks included
  double wall_ms = 0;
  double mean_time_to_first_token_ms = 0;
  // chat, idle-chat: per turn after the first, cached tokens / tokens of the
  // session's previous turn, the lowest
  double min_previous_turn_reuse = 0;

  // Prompt positions the cache held at first admission, of all prompt positions.
  double hit_rate() const;
  // The same, of the prompt positions an earlier request shared.
  double shared_hit_rate() const;
  double tokens_per_second() const;
};

// The prompts of a workload's first round (chat, idle-chat: each session's
// first turn), as token ids.
std::vector<ch04::Request> first_round(const WorkloadOptions& options, const Tokenizer& tokenizer);

// A pool for every request of the first round at its longest at once (a
// chat's last turn included), twice over, so the shared prompts stay cached.
// Throws kvc::Error when that is more blocks than a pool may have.
int default_pool_blocks(const WorkloadOptions& options,
                        const std::vector<ch04::Request>& first_round, int block_size);

// Which sessions speak in each round: chat, every session every round
// (`turns` rounds); idle-chat, each session that has turns left speaks with
// probability 1/2 (at least one per round, seeded), until every session has
// spoken `turns` times. Other workloads: one round of every request.
std::vector<std::vector<int>> speaking_sessions(const WorkloadOptions& options);

// Runs every round of the workload through the scheduler over `kv` (which
// keeps its cache between rounds). Throws kvc::Error for a request the
// scheduler refuses (e.g. a chat that outgrows the model's context).
WorkloadRun run_workload(Engine& engine, ch04::PagedKVStrategy& kv, const Tokenizer& tokenizer,
                         const WorkloadOptions& options,
                         const ch04::SchedulerOptions& scheduling = {});

}  // namespace kvc::ch05
