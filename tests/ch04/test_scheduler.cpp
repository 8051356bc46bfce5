// Chapter 04's continuous-batching loop: many sequences from one pool give
// each the tokens it gets alone (chapter 02's cache, one sequence at a time),
// through joins, preemptions, recomputation and parallel-sampling forks.
#include <gtest/gtest.h>

#include <algorithm>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "chapters/04_paged_allocator/alone.hpp"
#include "common/thread_pool.hpp"
#include "engine/generate.hpp"
#include "tests/support/test_support.hpp"
#include "tools/synthetic_model.hpp"

namespace kvc::ch04 {
namespace {

// The admission policy on plain numbers (see can_admit in scheduler.hpp).
TEST(Ch04CanAdmit, FitsAndLeavesOneFreeBlockPerSequence) {
  // need, joining, running, spare
  EXPECT_TRUE(can_admit(3, 1, 0, 3)) << "an empty batch takes whatever fits, watermark or not";
  EXPECT_FALSE(can_admit(4, 1, 0, 3)) << "does not fit even an empty batch";
  EXPECT_TRUE(can_admit(3, 1, 2, 6)) << "3 blocks + 3 sequences' watermark = 6";
  EXPECT_FALSE(can_admit(3, 1, 2, 5)) << "fits, but leaves less than the watermark";
  EXPECT_TRUE(can_admit(2, 4, 2, 8)) << "a group of 4 counts 4 sequences";
  EXPECT_FALSE(can_admit(2, 4, 2, 7)) << "a group of 4 counts 4 sequences";
  EXPECT_FALSE(can_admit(6, 1, 1, 6)) << "fits exactly, but no watermark left";
}

struct Prompt {
  std::string text;
  int max_new_tokens;
  int num_completions = 1;
  int arrival_step = 0;
};

std::vector<Request> make_requests(const Tokenizer& tokenizer, const std::vector<Prompt>& prompts,
                                   SamplerOptions sampling) {
  std::vector<Request> requests;
  for (std::size_t r = 0; r < prompts.size(); ++r) {
    const Prompt& p = prompts[r];
    sampling.seed = 1000 * (r + 1);
    requests.push_back({tokenizer.encode(p.text, true, false), p.max_new_tokens, p.num_completions,
                        sampling, p.arrival_step});
  }
  return requests;
}

// The tiny generated model with its tokenizer, on a single-threaded CPU engine.
struct TinyModel {
  explicit TinyModel(std::uint64_t seed)
      : config(find_synthetic_preset("tiny").config),
        model(make_synthetic_model(config, seed)),
        tokenizer(make_synthetic_tokenizer(config.vocab_size)),
        engine(model, nullptr) {}
  ModelConfig config;
  Model model;
  Tokenizer tokenizer;
  CpuEngine engine;
};

// Every completion against generate() on chapter 02's cache, alone, with the same seed.
void expect_same_as_alone(Engine& engine, const Tokenizer& tokenizer,
                          const std::vector<Prompt>& prompts, const std::vector<Request>& requests,
                          const ServeResult& served) {
  std::vector<std::string> texts;
  for (const Prompt& p : prompts) texts.push_back(p.text);
  const auto alone =
      generate_each_alone(engine, tokenizer, texts, requests, served.completions).results;
  ASSERT_EQ(alone.size(), served.completions.size());
  for (std::size_t i = 0; i < alone.size(); ++i) {
    const Completion& c = served.completions[i];
    EXPECT_EQ(c.tokens, alone[i].tokens) << "request " << c.request << " completion " << c.index;
    EXPECT_EQ(text_of(tokenizer, c.tokens), alone[i].text);
  }
}

TEST(Ch04Scheduler, ManyPromptsTogetherGiveEachItsTokensAloneOnRealModel) {
  const auto real = testing::load_real_model();
  ThreadPool pool(2);
  CpuEngine engine(real.model, &pool);
  const std::vector<Prompt> prompts = {
      {"Once upon a time", 120},         {"Lily and Tom went to the beach", 60},
      {"The little dog", 200, 3},        {"One day", 90},
      {"Sam had a red ball", 150, 1, 5}, {"The sun was", 40, 2, 20}};
  const auto requests = make_requests(real.tokenizer, prompts, {1.0f, 0.9f, 0});
  PagedKVCache kv(real.model.config, /*num_blocks=*/200, /*block_size=*/16, &pool);
  int max_running = 0;
  const ServeResult served = serve(engine, kv, requests, {64, [&](const StepRecord& step) {
                                                            max_running =
                                                                std::max(max_running, step.running);
                                                            kv.blocks().check_invariants();
                                                          }});
  EXPECT_EQ(served.completions.size(), 9u);
  EXPECT_EQ(served.preemptions, 0) << "the pool holds everything at once";
  EXPECT_EQ(max_running, 9);
  EXPECT_EQ(kv.blocks().allocator().num_used(), 0) << "every block returned";
  expect_same_as_alone(engine, real.tokenizer, prompts, requests, served);
}

// A pool far too small for the workload: sequences wait, get preempted and
// recomputed, and still produce exactly their tokens alone.
TEST(Ch04Scheduler, PreemptionAndRecomputeGiveTheSameTokens) {
  TinyModel tiny(11);
  auto& [config, model, tokenizer, engine] = tiny;
  std::vector<Prompt> prompts;
  for (int r = 0; r < 8; ++r) prompts.push_back({"prompt number " + std::to_string(r), 20 + 5 * r});
  prompts[2].num_completions = 3;
  const auto requests = make_requests(tokenizer, prompts, {1.0f, 0.0f, 0});
  PagedKVCache kv(config, /*num_blocks=*/24, /*block_size=*/4, nullptr);
  const ServeResult served = serve(engine, kv, requests, {64, [&](const StepRecord& step) {
                                                            EXPECT_LE(step.blocks_used, 24);
                                                            kv.blocks().check_invariants();
                                                          }});
  EXPECT_GT(served.preemptions, 0);
  EXPECT_GT(served.tokens_fed, served.tokens_sampled) << "recomputation re-feeds tokens";
  EXPECT_EQ(kv.blocks().allocator().num_used(), 0);
  expect_same_as_alone(engine, tokenizer, prompts, requests, served);
}

// n completions prefill their prompt once and share its blocks; each partial
// block is copied only when a completion writes to it.
TEST(Ch04Scheduler, ParallelSamplingSharesThePromptBlocks) {
  TinyModel tiny(13);
  auto& [config, model, tokenizer, engine] = tiny;
  const std::vector<Prompt> prompts = {{"a prompt long enough to fill blocks", 30, 4}};
  const auto requests = make_requests(tokenizer, prompts, {1.0f, 0.9f, 0});
  const int prompt_tokens = static_cast<int>(requests[0].prompt.size());
  const int block_size = 8;
  ASSERT_NE(prompt_tokens % block_size, 0) << "the test wants a shared partial block";
  PagedKVCache kv(config, /*num_blocks=*/64, block_size, nullptr);
  std::vector<StepRecord> steps;
  const ServeResult served =
      serve(engine, kv, requests, {64, [&](const StepRecord& step) { steps.push_back(step); }});
  ASSERT_GE(steps.size(), 2u);
  const int prompt_blocks = blocks_needed(prompt_tokens, block_size);
  EXPECT_EQ(steps[0].blocks_used, prompt_blocks) << "one prefill, four owners";
  EXPECT_EQ(steps[0].joined.size(), 4u);
  EXPECT_EQ(steps[1].blocks_used, prompt_blocks + 3)
      << "three of four writers copy the shared last block; the fourth keeps it";
  EXPECT_EQ(served.tokens_fed, prompt_tokens + 4 * (30 - 1));
  expect_same_as_alone(engine, tokenizer, prompts, requests, served);
}

TEST(Ch04Scheduler, RequestsJoinAndLeaveTheRunningBatch) {
  TinyModel tiny(17);
  auto& [config, model, tokenizer, engine] = tiny;
  const std::vector<Prompt> prompts = {
      {"first", 20}, {"second", 5, 1, 3}, {"third", 10, 1, 3}, {"late", 4, 1, 100}};
  const auto requests = make_requests(tokenizer, prompts, {0.0f, 0.9f, 0});
  PagedKVCache kv(config, 64, 16, nullptr);
  std::vector<StepRecord> steps;
  const ServeResult served =
      serve(engine, kv, requests, {/*max_running=*/2, [&](const StepRecord& s) {
                                     steps.push_back(s);
                                     EXPECT_LE(s.running, 2);
                                   }});
  const auto& c = served.completions;
  EXPECT_EQ(c[0].first_step, 0);
  EXPECT_EQ(c[1].first_step, 3) << "joins the running batch when it arrives";
  EXPECT_EQ(c[2].first_step, c[1].finish_step + 1) << "waits for a free place in the batch";
  EXPECT_EQ(c[3].first_step, 100) << "an idle scheduler skips ahead to the next arrival";
  EXPECT_EQ(c[3].finish_step, 103);
  EXPECT_EQ(served.steps, 104);
  EXPECT_LT(steps.size(), 40u) << "no forward passes while idle";
  expect_same_as_alone(engine, tokenizer, prompts, requests, served);
}

// The cap on the batch counts a group's forks before they exist.
TEST(Ch04Scheduler, ParallelSamplingGroupsRespectTheBatchCap) {
  TinyModel tiny(23);
  auto& [config, model, tokenizer, engine] = tiny;
  const std::vector<Prompt> prompts = {{"first group", 12, 2}, {"second group", 12, 2}};
  const auto requests = make_requests(tokenizer, prompts, {0.0f, 0.9f, 0});
  PagedKVCache kv(config, 64, 16, nullptr);
  const ServeResult served =
      serve(engine, kv, requests,
            {/*max_running=*/3, [&](const StepRecord& s) { EXPECT_LE(s.running, 3); }});
  const auto& c = served.completions;
  EXPECT_EQ(served.peak_running, 2) << "two groups of two never share a batch of three";
  EXPECT_EQ(c[2].first_step, std::max(c[0].finish_step, c[1].finish_step) + 1);
  expect_same_as_alone(engine, tokenizer, prompts, requests, served);
}

// Random workloads: prompt lengths, budgets, group sizes, arrivals, block
// sizes, pool sizes and batch caps drawn at random (fixed seed). Every step
// keeps the pool's invariants and its cap; every completion equals its run alone.
TEST(Ch04Scheduler, RandomWorkloadsKeepInvariantsAndTokens) {
  TinyModel tiny(29);
  auto& [config, model, tokenizer, engine] = tiny;
  std::mt19937 rng(2024);
  auto uniform = [&](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };
  int total_preemptions = 0;
  for (int trial = 0; trial < 12; ++trial) {
    SCOPED_TRACE("trial " + std::to_string(trial));
    std::vector<Prompt> prompts;
    const int num_requests = uniform(1, 6);
    for (int r = 0; r < num_requests; ++r) {
      prompts.push_back({std::string(uniform(1, 20), static_cast<char>('a' + r)), uniform(1, 40),
                         uniform(1, 3), uniform(0, 10)});
    }
    const auto requests = make_requests(tokenizer, prompts, {1.0f, 0.9f, 0});
    const int block_size = uniform(1, 16);
    int most_blocks = 0;
    for (const Request& r : requests) {
      most_blocks = std::max(most_blocks, blocks_needed(r.max_positions(), block_size));
    }
    const int max_running = uniform(3, 8);
    PagedKVCache kv(config, most_blocks + uniform(0, 3 * most_blocks), block_size, nullptr);
    const ServeResult served = serve(engine, kv, requests, {max_running, [&](const StepRecord& s) {
                                                              EXPECT_LE(s.running, max_running);
                                                              kv.blocks().check_invariants();
                                                            }});
    EXPECT_EQ(kv.blocks().allocator().num_used(), 0);
    total_preemptions += served.preemptions;
    expect_same_as_alone(engine, tokenizer, prompts, requests, served);
  }
  EXPECT_GT(total_preemptions, 0) << "the workloads should exercise preemption";
}

TEST(Ch04Scheduler, BadRequestsAreOneLineErrorsBeforeAnyWork) {
  TinyModel tiny(19);
  auto& [config, model, tokenizer, engine] = tiny;
  PagedKVCache kv(config, /*num_blocks=*/4, /*block_size=*/16, nullptr);
  auto request = [](int prompt, int new_tokens, int n = 1) {
    return Request{std::vector<int>(prompt, 300), new_tokens, n, {}, 0};
  };
  // clang 14 cannot capture a structured binding; an init-capture can refer to it.
  auto error_of = [&, &engine = engine](const Request& r) {
    try {
      serve(engine, kv, {request(3, 5), r});
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_EQ(error_of(request(0, 5)), "request 1: the prompt is empty (it needs at least BOS)");
  EXPECT_EQ(error_of(request(3, 5, 0)), "request 1: completions must be >= 1, got 0");
  EXPECT_EQ(error_of(request(3, 0)), "request 1: max new tokens must be >= 1, got 0");
  EXPECT_EQ(error_of(request(3, 5, 65)),
            "request 1: 65 completions run together, more than the 64 sequences a batch may hold");
  EXPECT_EQ(error_of({{1, 512}, 5, 1, {}, 0}),
            "request 1: token 512 is outside the model's vocabulary of 512");
  EXPECT_EQ(error_of(request(250, 10)),
            "request 1: 250 prompt tokens + 10 new tokens need 259 positions, more than the "
            "model's context of 256");
  EXPECT_EQ(error_of(request(60, 10)),
            "request 1 needs up to 5 blocks of 16 tokens, but the pool has only 4");
  // prompt + max new tokens - 1 wrapped around an int into a "valid" count.
  EXPECT_EQ(error_of(request(3, std::numeric_limits<int>::max())),
            "request 1: 3 prompt tokens + 2147483647 new tokens need 2147483649 positions, more "
            "than the model's context of 256");
  EXPECT_EQ(kv.blocks().allocator().num_used(), 0) << "nothing ran";
  // Callers that size a pool from the requests validate them first, without a pool.
  EXPECT_THROW(validate_requests({request(250, 10)}, config, 64), Error);
  EXPECT_NO_THROW(validate_requests({request(60, 10)}, config, 64));
}

}  // namespace
}  // namespace kvc::ch04
