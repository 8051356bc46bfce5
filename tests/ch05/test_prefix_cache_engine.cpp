// Chapter 05 end to end on the real model: the prefix cache skips the shared
// prefill and changes no token — through generate(), the scheduler's joins,
// preemptions and parallel-sampling forks, and both admission orders.
#include <gtest/gtest.h>

#include <set>
#include <string>
#include <vector>

#include "chapters/04_paged_allocator/paged_kv_cache.hpp"
#include "chapters/05_radix_cache/prefix_caching_blocks.hpp"
#include "chapters/05_radix_cache/workloads.hpp"
#include "engine/generate.hpp"
#include "tests/support/test_support.hpp"

namespace kvc::ch05 {
namespace {

using testing::load_real_model;

std::unique_ptr<ch04::PagedKVStrategy> pool(Engine& engine, bool cached, int num_blocks,
                                            int block_size = 16,
                                            const std::string& kind = "radix") {
  const ModelConfig& c = engine.config();
  if (cached) return make_prefix_cached_pool(c, engine.context(), kind, num_blocks, block_size);
  return ch04::make_paged_cache(c, engine.context(), num_blocks, block_size);
}

// Two generations sharing a prompt: the second starts past the shared blocks,
// and both give chapter 04's tokens (greedy and seeded sampling).
TEST(Ch05Generate, ASecondPromptWithTheSamePrefixSkipsItAndGivesTheSameTokens) {
  const auto real = load_real_model();
  CpuEngine engine(real.model, nullptr);
  for (const float temperature : {0.0f, 1.0f}) {
    auto cached = make_strategy(real.model.config, engine.context(), "radix", 16, 1);
    auto plain = ch04::make_strategy(real.model.config, engine.context(), 16, 1);
    const std::string shared = "Once upon a time, there was a little girl named Lily. She loved to";
    int hits = 0;
    for (const std::string& prompt : {shared + " play", shared + " sing with her mom"}) {
      GenerationOptions options{prompt, 120, SamplerOptions{temperature, 0.9f, 7}};
      const GenerationResult on = generate(engine, real.tokenizer, *cached, options);
      const GenerationResult off = generate(engine, real.tokenizer, *plain, options);
      EXPECT_EQ(on.tokens, off.tokens) << prompt;
      EXPECT_EQ(on.text, off.text);
      EXPECT_EQ(off.num_cached_tokens, 0);
      hits += on.num_cached_tokens;
      EXPECT_EQ(on.num_cached_tokens % 16, 0);
    }
    EXPECT_GE(hits, 16) << "the second prompt shares at least one full block";
  }
}

struct Served {
  WorkloadRun run;
  int max_distinct_first_blocks = 0;  // over steps: distinct ids among running tables' block 0
};

Served serve_workload(Engine& engine, const Tokenizer& tokenizer, const WorkloadOptions& w,
                      bool cached, int num_blocks, ch04::SchedulerOptions scheduling = {}) {
  auto kv = pool(engine, cached, num_blocks);
  Served served;
  scheduling.on_step = [&](const ch04::StepRecord&) {
    kv->blocks().check_invariants();
    std::set<int> first_blocks;
    for (int id = 0; id < 4 * w.requests; ++id) {
      const ch04::BlockTable* t = kv->blocks().table(id);
      if (t && !t->blocks.empty()) first_blocks.insert(t->blocks[0]);
    }
    served.max_distinct_first_blocks =
        std::max(served.max_distinct_first_blocks, static_cast<int>(first_blocks.size()));
  };
  served.run = run_workload(engine, *kv, tokenizer, w, scheduling);
  return served;
}

// Workload (a): the system prompt is computed once and held once.
TEST(Ch05Serve, ASharedSystemPromptIsComputedOnceHeldOnceAndChangesNoToken) {
  const auto real = load_real_model();
  CpuEngine engine(real.model, nullptr);
  WorkloadOptions w;
  w.workload = Workload::kSystemPrompt;
  w.requests = 24;
  w.max_new_tokens = 12;
  const Served on = serve_workload(engine, real.tokenizer, w, true, 2000);
  const Served off = serve_workload(engine, real.tokenizer, w, false, 2000);
  EXPECT_EQ(on.run.tokens, off.run.tokens);
  EXPECT_GE(on.run.shared_hit_rate(), 0.95);
  EXPECT_EQ(off.run.prefill_tokens_skipped, 0);
  EXPECT_EQ(on.run.prefill_tokens_computed + on.run.prefill_tokens_skipped,
            off.run.prefill_tokens_computed);
  EXPECT_EQ(on.max_distinct_first_blocks, 1) << "every running request shares block 0";
  EXPECT_GT(off.max_distinct_first_blocks, 1);
  EXPECT_LT(on.run.peak_blocks_in_use * 3, off.run.peak_blocks_in_use);
}

// Workload (b): each turn finds its previous turn cached.
TEST(Ch05Serve, EveryChatTurnReusesItsPreviousTurn) {
  const auto real = load_real_model();
  CpuEngine engine(real.model, nullptr);
  WorkloadOptions w;
  w.workload = Workload::kChat;
  w.requests = 16;  // 4 sessions x 4 turns, the demo's turns and answer length
  w.turns = 4;
  w.max_new_tokens = 32;
  const Served on = serve_workload(engine, real.tokenizer, w, true, 800);
  const Served off = serve_workload(engine, real.tokenizer, w, false, 800);
  EXPECT_EQ(on.run.tokens, off.run.tokens);
  EXPECT_GE(on.run.min_previous_turn_reuse, 0.9);
}

// A pool too small for everyone: preempted sequences recompute (and find their
// own prefix cached), forks share the prompt, and no token changes; the same
// under longest-prefix-match admission and with the hash cache.
TEST(Ch05Serve, PreemptionForksAndBothOrdersGiveTheSameTokens) {
  const auto real = load_real_model();
  CpuEngine engine(real.model, nullptr);
  WorkloadOptions w;
  w.workload = Workload::kFewShot;
  w.requests = 12;
  w.max_new_tokens = 40;
  w.sampling = SamplerOptions{1.0f, 0.9f, 3};
  const Served off = serve_workload(engine, real.tokenizer, w, false, 400);
  for (const auto order :
       {ch04::AdmissionOrder::kFirstComeFirstServed, ch04::AdmissionOrder::kLongestPrefixMatch}) {
    ch04::SchedulerOptions scheduling;
    scheduling.order = order;
    const Served tight = serve_workload(engine, real.tokenizer, w, true, 24, scheduling);
    EXPECT_EQ(tight.run.tokens, off.run.tokens);
    EXPECT_GT(tight.run.prefill_tokens_skipped, 0);
  }

  // Parallel sampling: 3 completions per request, forked after the prompt.
  std::vector<ch04::Request> requests = first_round(w, real.tokenizer);
  for (ch04::Request& r : requests) r.num_completions = 3;
  std::vector<std::vector<int>> tokens[2];
  int preemptions = 0;
  for (const bool cached : {true, false}) {
    auto kv = pool(engine, cached, cached ? 40 : 400);
    const ch04::ServeResult served = ch04::serve(engine, *kv, requests);
    for (const ch04::Completion& c : served.completions) tokens[cached].push_back(c.tokens);
    if (cached) preemptions = served.preemptions;
    kv->blocks().check_invariants();
  }
  EXPECT_EQ(tokens[1], tokens[0]);
  EXPECT_GT(preemptions, 0) << "the tight pool should preempt";
}

}  // namespace
}  // namespace kvc::ch05
