// Chapter 04: many sequences at once from one paged pool — a continuous-batching loop.
//
// Every step the scheduler builds one batch from all running sequences (a
// prefill chunk for each newcomer, one token for each of the others), runs
// the engine once, and samples each sequence's next token. Between steps:
//   - a finished sequence leaves and its blocks return to the pool at once;
//   - waiting requests join, oldest first, while their blocks fit;
//   - when the running sequences' next tokens need more blocks than are free,
//     the newest sequence is preempted: its blocks are freed and it waits at
//     the front of the queue to be recomputed (its tokens re-fed as a prefill)
//     when memory returns.
// Parallel sampling: a request for n completions prefills its prompt once; the
// n sequences then fork from it, sharing the prompt's blocks (copy-on-write).
//
// The scheduler drives the KV strategy through its sequence lifecycle
// (kv_strategy.hpp): begin_sequence on admission (a prefix-cache hit starts
// the sequence past position 0), publish after its prompt is computed,
// finish_sequence when it ends or is preempted. Chapter 04's BlockManager
// caches nothing, so every hit is 0; chapter 05 plugs a prefix cache into the
// block manager and this same loop reuses prompts.
//
// Each completion samples with its own seeded sampler, and the CPU forward
// pass gives every token the same bits whatever else is in the batch, so each
// completion's tokens equal what generate() gives for it alone.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "chapters/04_paged_allocator/paged_kv_cache.hpp"
#include "common/sampler.hpp"
#include "engine/engine.hpp"

namespace kvc::ch04 {

struct Request {
  std::vector<int> prompt;  // token ids, BOS first
  int max_new_tokens = 0;   // sampled tokens per completion, at most (BOS ends one sooner)
  int num_completions = 1;  // n > 1: parallel sampling from one shared prompt
  SamplerOptions sampling;  // completion i samples with seed sampling.seed + i
  int arrival_step = 0;     // the step at which the request reaches the scheduler

  // Positions a completion runs through the model at most: its last sampled
  // token is returned, never fed, as in llama2.c.
  int max_positions() const { return static_cast<int>(prompt.size()) + max_new_tokens - 1; }
};

enum class FinishReason { kMaxTokens, kBos };

struct Completion {
  int request = 0;          // index into the requests
  int index = 0;            // which of the request's completions, 0..n-1
  std::vector<int> tokens;  // the prompt, then every sampled token
  int num_prompt_tokens = 0;
  FinishReason finish_reason = FinishReason::kMaxTokens;
  int preemptions = 0;    // times it was evicted and recomputed
  int first_step = 0;     // the step of its first forward pass
  int finish_step = 0;    // the step that sampled its last token
  int cached_tokens = 0;  // prompt positions a prefix cache held at its (last) admission
  double time_to_first_token_ms = 0;  // from its request's arrival to its first sampled token
};

// What one step did (for traces, tests and the lesson's timeline).
struct StepRecord {
  int step = 0;
  int running = 0;                 // sequences in the batch
  int batch_tokens = 0;            // tokens fed: prefill chunks plus one per decoding sequence
  int blocks_used = 0;             // after the step (a prefix cache's blocks included)
  int blocks_reclaimable = 0;      // of those, held by a prefix cache alone: free for the asking
  std::vector<int> joined;         // completions that started or resumed this step
  std::vector<int> joined_cached;  // [joined] positions of each a prefix cache already held
  std::vector<int> preempted;      // completions evicted before this step
  std::vector<int> finished;       // completions that ended this step
};

// Which waiting request joins first.
enum class AdmissionOrder {
  kFirstComeFirstServed,  // arrival order, no overtaking
  // SGLang's longest-prefix-match: the waiting requests with the longest
  // cached prefix first (more reuse, smaller prefills), falling back to arrival
  // order when the queue is longer than lpm_queue_limit (sorting costs more
  // than it saves there).
  kLongestPrefixMatch,
};

struct SchedulerOptions {
  int max_running = 64;  // sequences in one batch, at most
  // Called after every step, e.g. to print a timeline or check invariants.
  std::function<void(const StepRecord&)> on_step;
  AdmissionOrder order = AdmissionOrder::kFirstComeFirstServed;
  int lpm_queue_limit = 128;
};

struct ServeResult {
  std::vector<Completion> completions;  // request by request, completion by completion
  int steps = 0;
  int preemptions = 0;
  int peak_running = 0;
  int peak_blocks_used = 0;    // a prefix cache's blocks included
  int peak_blocks_in_use = 0;  // held by sequences (blocks_used - blocks_reclaimable)
  long long tokens_fed = 0;    // positions run through the model, recomputation included
  long long tokens_sampled = 0;
  long long prefill_tokens_computed = 0;  // prompt (and recomputed) positions run through the model
  long long prefill_tokens_skipped =
      0;  // positions a prefix cache already held, recomputes included
  long long prompt_tokens_skipped = 0;  // of those, at first admissions: prompt positions
  double wall_ms = 0;

  double sampled_tokens_per_second() const;
};

// Throws kvc::Error (one line) for a request with an empty prompt, a token
// outside the vocabulary, no completions or more than `max_running`, no tokens
// to sample, or more positions than the model's context. serve() calls it;
// a caller that sizes its pool from the requests calls it first.
void validate_requests(const std::vector<Request>& requests, const ModelConfig& config,
                       int max_running);

// Runs every request to completion over `kv`, a pool of any size that holds
// at least one completion at its longest. Requests whose prompts share a
// prefix that is not cached yet are not admitted in the same step when the
// pool shares prefixes (chapter 05): the first computes it, the others find it
// cached a step later. Throws kvc::Error (one line, before
// any work) for a request validate_requests refuses, or one that needs more
// blocks than the whole pool. The completions use
// sequence ids 0 .. (total completions - 1) of `kv`, which must be free.
ServeResult serve(Engine& engine, PagedKVStrategy& kv, const std::vector<Request>& requests,
                  const SchedulerOptions& options = {});

const char* finish_reason_name(FinishReason reason);

// ---- EXERCISE (exercises/04_paged_allocator/admission_ops.cpp) ---------------------------

// The admission policy: whether the sequence at the head of the waiting queue
// joins the next batch. In free blocks of the pool:
//   need:    what its next step takes (its prompt, or its recomputation)
//   spare:   what is free after the batch's running sequences take their next step
// and in sequences:
//   running: already in the next batch (those admitted this step included)
//   joining: what it brings (1, or n for a parallel-sampling group that forks)
// It joins when it fits (need <= spare) and, unless the batch is empty, the
// blocks left after it still cover a watermark of one free block per sequence
// in the batch it joins (running + joining). The watermark lets the batch grow
// a while before anyone must be preempted; without it a tight pool admits a
// sequence and preempts it again the next step. An empty batch takes a
// sequence whenever it fits: otherwise nothing would ever run.
bool can_admit(int need, int joining, int running, int spare);

}  // namespace kvc::ch04
