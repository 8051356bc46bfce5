#include "chapters/05_radix_cache/workloads.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <numeric>
#include <random>

#include "common/check.hpp"
#include "common/cli.hpp"

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
// Sessions past the tenth ask about a thing too: otherwise session s + 10
// would repeat session s word for word (and, greedy, answer for answer), and
// a cache would look better than it is. Unique for the first 110 sessions.
std::string chat_line(int s, int t) {
  static const std::vector<std::string> kAsks = {"What did they do next?", "Where did they go?",
                                                 "Who came to help?", "How did it end?"};
  const auto session = static_cast<std::size_t>(s);
  std::string subject = kNames[session % kNames.size()];
  if (session >= kNames.size()) {
    subject += " and the " + kThings[(session / kNames.size() - 1) % kThings.size()];
  }
  return " " + kAsks[static_cast<std::size_t>(t) % kAsks.size()] + " Tell me about " + subject +
         ".";
}

// Document k of the zipf workload: a few sentences that differ from every
// other document's from the first block on (its number comes first).
std::string document(int k) {
  const std::size_t n = kNames.size();
  const auto i = static_cast<std::size_t>(k);
  const std::string& name = kNames[i % n];
  const std::string& friend_name = kNames[(i * 7 + 3) % n];
  const std::string& thing = kThings[(i / n + i) % kThings.size()];
  const std::string& place = kThings[(i * 3 + 1) % kThings.size()];
  return "Book " + std::to_string(k) + ". " + name + " had a " + thing + ". Every day " + name +
         " played with the " + thing + " near the " + place + ". One day " + friend_name +
         " came to see the " + thing +
         " and they became good friends. They laughed and shared the " + place +
         " all day long, and at night " + name + " dreamed about the " + thing + ".";
}

// A uniform draw in [0, 1) from 53 random bits (the same on every platform,
// unlike std::uniform_real_distribution).
double uniform(std::mt19937_64& rng) {
  return static_cast<double>(rng() >> 11) * 0x1.0p-53;
}

// The popularity rank (0 = most popular) of n documents drawn ~ 1 / (rank + 1)^s.
std::vector<int> zipf_draws(int draws, int n, double s, std::uint64_t seed) {
  std::vector<double> cumulative(static_cast<std::size_t>(n));
  double total = 0;
  for (int k = 0; k < n; ++k) {
    total += 1.0 / std::pow(k + 1.0, s);
    cumulative[static_cast<std::size_t>(k)] = total;
  }
  std::mt19937_64 rng(seed);
  std::vector<int> ranks;
  for (int d = 0; d < draws; ++d) {
    const double u = uniform(rng) * total;
    const auto it = std::upper_bound(cumulative.begin(), cumulative.end(), u);
    ranks.push_back(static_cast<int>(std::min<std::ptrdiff_t>(it - cumulative.begin(), n - 1)));
  }
  return ranks;
}

}  // namespace

Workload parse_workload(std::string_view name) {
  if (name == "system-prompt") return Workload::kSystemPrompt;
  if (name == "chat") return Workload::kChat;
  if (name == "few-shot") return Workload::kFewShot;
  if (name == "none") return Workload::kNone;
  if (name == "zipf") return Workload::kZipf;
  if (name == "idle-chat") return Workload::kIdleChat;
  KVC_FAIL("unknown workload '", name,
           "' (choose system-prompt, chat, few-shot, none, zipf or idle-chat)");
}

const std::vector<std::string>& workload_names() {
  static const std::vector<std::string> names = {"system-prompt", "chat", "few-shot",
                                                 "none",          "zipf", "idle-chat"};
  return names;
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
    case Workload::kZipf:
      return "zipf";
    case Workload::kIdleChat:
      return "idle-chat";
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
    case Workload::kZipf: {
      KVC_CHECK(o.documents >= 1, "the zipf workload needs at least one document, got ",
                o.documents);
      const std::vector<int> docs = zipf_draws(o.requests, o.documents, o.zipf_s, o.workload_seed);
      for (int r = 0; r < o.requests; ++r) {
        requests.push_back(request(
            encode(tokenizer, document(docs[static_cast<std::size_t>(r)]) + question(r), true), r,
            o));
      }
      break;
    }
    case Workload::kChat:
    case Workload::kIdleChat:
      for (int s = 0; s < sessions(o); ++s) {
        requests.push_back(request(
            encode(tokenizer, system_prompt().substr(0, 180) + chat_line(s, 0), true), s, o));
      }
      break;
  }
  return requests;
}

int default_pool_blocks(const WorkloadOptions& o, const std::vector<ch04::Request>& requests,
                        int block_size) {
  const bool chat = o.workload == Workload::kChat || o.workload == Workload::kIdleChat;
  const std::int64_t later_turns = chat ? std::max(0, o.turns - 1) : 0;
  std::int64_t blocks = 0;
  for (const ch04::Request& r : requests) {
    const std::int64_t longest =
        std::int64_t{r.max_positions()} + later_turns * (o.max_new_tokens + 32);
    blocks += 2 * ch04::blocks_needed(static_cast<int>(std::min<std::int64_t>(longest, kMaxInt)),
                                      block_size);
  }
  KVC_CHECK(blocks <= ch04::kMaxPoolBlocks, "the default pool would need ", blocks,
            " blocks; give a smaller one with --kv-blocks");
  return static_cast<int>(blocks);
}

std::vector<std::vector<int>> speaking_sessions(const WorkloadOptions& o) {
  std::vector<std::vector<int>> rounds;
  const bool chat = o.workload == Workload::kChat || o.workload == Workload::kIdleChat;
  const int speakers = chat ? sessions(o) : o.requests;
  std::vector<int> all(static_cast<std::size_t>(speakers));
  std::iota(all.begin(), all.end(), 0);
  if (o.workload != Workload::kIdleChat) {
    rounds.assign(
        o.workload == Workload::kChat ? static_cast<std::size_t>(std::max(1, o.turns)) : 1, all);
    return rounds;
  }
  std::mt19937_64 rng(o.workload_seed);
  std::vector<int> turns_left(all.size(), std::max(1, o.turns));
  for (int left = speakers * std::max(1, o.turns); left > 0;) {
    std::vector<int> round;
    for (int s : all) {
      if (turns_left[static_cast<std::size_t>(s)] > 0 && (rng() & 1) != 0) round.push_back(s);
    }
    if (round.empty()) {
      round.push_back(static_cast<int>(
          std::find_if(turns_left.begin(), turns_left.end(), [](int t) { return t > 0; }) -
          turns_left.begin()));
    }
    for (int s : round) --turns_left[static_cast<std::size_t>(s)];
    left -= static_cast<int>(round.size());
    rounds.push_back(std::move(round));
  }
  return rounds;
}

WorkloadRun run_workload(Engine& engine, ch04::PagedKVStrategy& kv, const Tokenizer& tokenizer,
                         const WorkloadOptions& o, const ch04::SchedulerOptions& scheduling) {
  // One request per speaker (a chat session, or a single-round request); a
  // session's request grows by its answer and next line after each turn.
  std::vector<ch04::Request> speakers = first_round(o, tokenizer);
  std::vector<int> turns_done(speakers.size(), 0);
  WorkloadRun run;
  run.min_previous_turn_reuse = 1.0;
  bool later_turns = false;
  double ttft_sum = 0;
  long long completions = 0;
  std::vector<std::vector<int>> seen;  // every earlier prompt, and every finished turn
  for (const std::vector<int>& round : speaking_sessions(o)) {
    std::vector<ch04::Request> requests;
    for (int s : round) requests.push_back(speakers[static_cast<std::size_t>(s)]);
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
    run.peak_blocks_used = std::max(run.peak_blocks_used, served.peak_blocks_used);
    run.wall_ms += served.wall_ms;
    for (const ch04::Completion& c : served.completions) {
      const int s = round[static_cast<std::size_t>(c.request)];
      const int turn = turns_done[static_cast<std::size_t>(s)];
      run.tokens.push_back(c.tokens);
      run.prompt_sizes.push_back(c.num_prompt_tokens);
      seen.push_back(c.tokens);
      ttft_sum += c.time_to_first_token_ms;
      ++completions;
      if (turn > 0) {
        // The previous turn is this prompt minus the user's new line.
        const double previous =
            static_cast<double>(c.num_prompt_tokens) -
            static_cast<double>(encode(tokenizer, chat_line(s, turn), false).size());
        run.min_previous_turn_reuse =
            std::min(run.min_previous_turn_reuse, c.cached_tokens / previous);
        later_turns = true;
      }
      // The session's next turn: everything so far, then the user's next line.
      turns_done[static_cast<std::size_t>(s)] = turn + 1;
      std::vector<int> prompt = c.tokens;
      const std::vector<int> line = encode(tokenizer, chat_line(s, turn + 1), false);
      prompt.insert(prompt.end(), line.begin(), line.end());
      speakers[static_cast<std::size_t>(s)].prompt = std::move(prompt);
    }
  }
  if (!later_turns) run.min_previous_turn_reuse = 0;
  run.mean_time_to_first_token_ms = completions > 0 ? ttft_sum / completions : 0.0;
  return run;
}

}  // namespace kvc::ch05
