#include "chapters/05_radix_cache/workloads.hpp"

#include <algorithm>
#include <cstdint>
#include <numeric>

#include "common/check.hpp"

namespace kvc::ch05 {
namespace {

const std::vector<std::string> kNames = {"Lily", "Tom", "Sam", "Mia", "Ben",
                                         "Anna", "Max", "Sue", "Tim", "Zoe"};
const std::vector<std::string> kThings = {"red ball",   "big tree",   "little dog", "blue car",
                                          "old boat",   "green frog", "soft bed",   "tall hill",
                                          "yellow sun", "small box"};

// Long shared instructions: what a deployment puts in front of every request.
std::string system_prompt() {
  return "You are a kind friend who tells short stories to children. Your stories are happy "
         "and simple. Every story has a good friend, a small problem and a happy end. You use "
         "easy words that a little child can read. You do not use sad or scary words. When the "
         "child asks about a thing, you tell a story about that thing. When the child asks "
         "about a friend, you tell a story about that friend. The friends in your stories like "
         "to play, to share and to help each other. At the end of each story, the friends are "
         "happy and they say thank you. Now the child asks you:";
}

// Three tasks, each with its worked examples (the shared part of a few-shot prompt).
const std::vector<std::string> kFewShotTasks = {
    "Say what the friend wants. Tom sees a cake. Tom wants the cake. Lily sees a kite. Lily "
    "wants the kite. Ben sees a dog. Ben wants the dog.",
    "Say where the thing is. The ball is in the box. The cat is on the bed. The bird is in the "
    "tree. The car is on the road.",
    "Say how the friend feels. Sue got a gift, so she is happy. Max lost his toy, so he is sad. "
    "Mia ate a cake, so she is full.",
};

std::string question(int r) {
  const std::string& name = kNames[r % kNames.size()];
  const std::string& thing = kThings[(r / kNames.size()) % kThings.size()];
  return " Tell me about " + name + " and the " + thing + ".";
}

std::vector<int> encode(const Tokenizer& tokenizer, const std::string& text, bool bos) {
  return tokenizer.encode(text, bos, /*eos=*/false);
}

ch04::Request request(std::vector<int> prompt, int r, const WorkloadOptions& o) {
  SamplerOptions sampling = o.sampling;
  sampling.seed = o.sampling.seed + 1000 * static_cast<std::uint64_t>(r);
  return {std::move(prompt), o.max_new_tokens, 1, sampling, 0};
}

int sessions(const WorkloadOptions& o) {
  return std::max(1, o.requests / std::max(1, o.turns));
}

// The user's line of chat session s at turn t.
std::string chat_line(int s, int t) {
  static const std::vector<std::string> kAsks = {"What did they do next?", "Where did they go?",
                                                 "Who came to help?", "How did it end?"};
  return " " + kAsks[static_cast<std::size_t>(t) % kAsks.size()] + " Tell me about " +
         kNames[static_cast<std::size_t>(s) % kNames.size()] + ".";
}

}  // namespace

Workload parse_workload(std::string_view name) {
  if (name == "system-prompt") return Workload::kSystemPrompt;
  if (name == "chat") return Workload::kChat;
  if (name == "few-shot") return Workload::kFewShot;
  if (name == "none") return Workload::kNone;
  KVC_FAIL("unknown workload '", name, "' (choose system-prompt, chat, few-shot or none)");
}

const char* workload_name(Workload workload) {
  switch (workload) {
    case Workload::kSystemPrompt:
      return "system-prompt";
    case Workload::kChat:
      return "chat";
    case Workload::kFewShot:
      return "few-shot";
    case Workload::kNone:
      return "none";
  }
  return "?";
}

double WorkloadRun::hit_rate() const {
  return prompt_tokens > 0 ? static_cast<double>(prompt_tokens_skipped) / prompt_tokens : 0.0;
}

double WorkloadRun::shared_hit_rate() const {
  return shared_prompt_tokens > 0
             ? static_cast<double>(prompt_tokens_skipped) / shared_prompt_tokens
             : 0.0;
}

double WorkloadRun::tokens_per_second() const {
  return wall_ms > 0 ? 1000.0 * tokens_sampled / wall_ms : 0.0;
}

std::vector<ch04::Request> first_round(const WorkloadOptions& o, const Tokenizer& tokenizer) {
  KVC_CHECK(o.requests >= 1, "a workload needs at least one request, got ", o.requests);
  std::vector<ch04::Request> requests;
  switch (o.workload) {
    case Workload::kSystemPrompt:
      for (int r = 0; r < o.requests; ++r) {
        requests.push_back(request(encode(tokenizer, system_prompt() + question(r), true), r, o));
      }
      break;
    case Workload::kFewShot:
      for (int r = 0; r < o.requests; ++r) {
        const std::string& task = kFewShotTasks[static_cast<std::size_t>(r) % kFewShotTasks.size()];
        requests.push_back(request(encode(tokenizer, task + question(r), true), r, o));
      }
      break;
    case Workload::kNone:
      // Each prompt starts differently, so no full block is shared.
      for (int r = 0; r < o.requests; ++r) {
        const std::string opening = kThings[static_cast<std::size_t>(r) % kThings.size()] + " " +
                                    std::to_string(r) + " " +
                                    kNames[static_cast<std::size_t>(r / 10) % kNames.size()];
        requests.push_back(request(encode(tokenizer, opening + question(r), true), r, o));
      }
      break;
    case Workload::kChat:
      for (int s = 0; s < sessions(o); ++s) {
        requests.push_back(request(
            encode(tokenizer, system_prompt().substr(0, 180) + chat_line(s, 0), true), s, o));
      }
      break;
  }
  return requests;
}

WorkloadRun run_workload(Engine& engine, ch04::PagedKVStrategy& kv, const Tokenizer& tokenizer,
                         const WorkloadOptions& o, const ch04::SchedulerOptions& scheduling) {
  const int rounds = o.workload == Workload::kChat ? std::max(1, o.turns) : 1;
  std::vector<ch04::Request> requests = first_round(o, tokenizer);
  WorkloadRun run;
  run.min_previous_turn_reuse = 1.0;
  double ttft_sum = 0;
  long long completions = 0;
  std::vector<std::vector<int>> seen;  // every earlier prompt, and every finished turn
  for (int round = 0; round < rounds; ++round) {
    for (const ch04::Request& r : requests) {
      std::size_t shared = 0;
      for (const std::vector<int>& other : seen) {
        const auto end =
            std::mismatch(r.prompt.begin(), r.prompt.end(), other.begin(), other.end());
        shared = std::max(shared, static_cast<std::size_t>(end.first - r.prompt.begin()));
      }
      run.shared_prompt_tokens += static_cast<long long>(shared);
      run.prompt_tokens += static_cast<long long>(r.prompt.size());
      seen.push_back(r.prompt);
    }
    const ch04::ServeResult served = ch04::serve(engine, kv, requests, scheduling);
    run.prefill_tokens_computed += served.prefill_tokens_computed;
    run.prefill_tokens_skipped += served.prefill_tokens_skipped;
    run.prompt_tokens_skipped += served.prompt_tokens_skipped;
    run.preemptions += served.preemptions;
    run.tokens_sampled += served.tokens_sampled;
    run.peak_blocks_in_use = std::max(run.peak_blocks_in_use, served.peak_blocks_in_use);
    run.wall_ms += served.wall_ms;
    for (const ch04::Completion& c : served.completions) {
      run.tokens.push_back(c.tokens);
      seen.push_back(c.tokens);
      ttft_sum += c.time_to_first_token_ms;
      ++completions;
      if (round > 0) {
        // The previous turn is this prompt minus the user's new line.
        const double previous =
            static_cast<double>(requests[c.request].prompt.size()) -
            static_cast<double>(encode(tokenizer, chat_line(c.request, round), false).size());
        run.min_previous_turn_reuse =
            std::min(run.min_previous_turn_reuse, c.cached_tokens / previous);
      }
    }
    if (round + 1 == rounds) break;
    // The next turn: everything so far, then the user's next line.
    for (const ch04::Completion& c : served.completions) {
      std::vector<int> prompt = c.tokens;
      const std::vector<int> line = encode(tokenizer, chat_line(c.request, round + 1), false);
      prompt.insert(prompt.end(), line.begin(), line.end());
      requests[c.request].prompt = std::move(prompt);
    }
  }
  if (rounds == 1) run.min_previous_turn_reuse = 0;
  run.mean_time_to_first_token_ms = completions > 0 ? ttft_sum / completions : 0.0;
  return run;
}

}  // namespace kvc::ch05
