// Teacher-forced negative log-likelihood and perplexity (engine/perplexity.hpp).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <numeric>
#include <random>
#include <sstream>
#include <vector>

#include "chapters/02_contiguous_kv_cache/contiguous_kv_cache.hpp"
#include "common/check.hpp"
#include "common/thread_pool.hpp"
#include "engine/perplexity.hpp"
#include "tests/support/test_support.hpp"
#include "tools/synthetic_model.hpp"

namespace kvc {
namespace {

const KVStrategyFactory kContiguousCache = [](const ModelConfig& config,
                                              const DeviceContext& device) {
  return ch02::make_strategy(config, device);
};

// Text files are read with a bound: an endless file is an error, not a read until memory runs out.
TEST(TokenizeTexts, EndlessFileIsOneLineError) {
  const Tokenizer tokenizer(testing::model_file("tok512.bin"), 512);
  const std::string message =
      testing::error_of([&] { tokenize_texts({"/dev/zero"}, tokenizer, 512); });
  EXPECT_NE(message.find("text file '/dev/zero': larger than the limit"), std::string::npos)
      << message;
}

TEST(LogProbability, OfAKnownDistribution) {
  const std::vector<double> probs = {0.1, 0.2, 0.3, 0.4};
  std::vector<float> logits;
  for (double p : probs) logits.push_back(static_cast<float>(std::log(p) + 7.0));  // any shift
  for (int i = 0; i < 4; ++i) EXPECT_NEAR(log_probability(logits, i), std::log(probs[i]), 1e-6);
}

TEST(LogProbability, LargeLogitsDoNotOverflow) {
  const std::vector<float> logits = {1000.0f, 1000.0f, -1000.0f};
  EXPECT_NEAR(log_probability(logits, 0), std::log(0.5), 1e-12);
  EXPECT_TRUE(std::isfinite(log_probability(logits, 2)));
}

class TeacherForced : public ::testing::Test {
 protected:
  ThreadPool pool_{2};
};

// All-zero weights give all-zero logits at every position: a uniform guess.
TEST_F(TeacherForced, ZeroModelHasPerplexityVocabSize) {
  ModelConfig c = find_synthetic_preset("tiny").config;
  const Model zero = make_model(c);
  CpuEngine engine(zero, &pool_);
  const std::vector<int> tokens = {1, 5, 300, 7, 7, 42};
  const NegativeLogLikelihood nll = teacher_forced_nll(engine, kContiguousCache, tokens);
  EXPECT_EQ(nll.num_scored, 5);
  EXPECT_NEAR(nll.mean(), std::log(c.vocab_size), 1e-9);
  EXPECT_NEAR(nll.perplexity(), c.vocab_size, 1e-6);
}

// The one-batch path equals feeding one token at a time through a cache, as generate() does.
TEST_F(TeacherForced, BatchedEqualsTokenByToken) {
  const ModelConfig c = find_synthetic_preset("tiny").config;
  const Model model = make_synthetic_model(c, /*seed=*/21);
  std::mt19937 rng(4);
  std::vector<int> tokens = {kBosToken};
  for (int i = 0; i < 60; ++i) tokens.push_back(3 + static_cast<int>(rng() % (c.vocab_size - 3)));

  CpuEngine engine(model, &pool_);
  const NegativeLogLikelihood batched = teacher_forced_nll(engine, kContiguousCache, tokens);

  auto kv = kContiguousCache(c, engine.context());
  double stepwise_sum = 0;
  for (std::size_t p = 0; p + 1 < tokens.size(); ++p) {
    Batch batch;
    batch.add(tokens[p], 0, static_cast<int>(p), true);
    const float* logits = engine.forward(batch, *kv);
    stepwise_sum -=
        log_probability({logits, static_cast<std::size_t>(c.vocab_size)}, tokens[p + 1]);
  }
  EXPECT_EQ(batched.num_scored, 60);
  EXPECT_NEAR(batched.sum, stepwise_sum, 1e-6 * std::abs(stepwise_sum));
}

TEST_F(TeacherForced, PoolingWeighsEveryTokenEqually) {
  NegativeLogLikelihood a{6.0, 3}, b{1.0, 1};
  a += b;
  EXPECT_EQ(a.num_scored, 4);
  EXPECT_DOUBLE_EQ(a.mean(), 7.0 / 4);
  EXPECT_DOUBLE_EQ(a.perplexity(), std::exp(7.0 / 4));
}

TEST_F(TeacherForced, RejectsTooFewTokensAndMoreThanTheContext) {
  ModelConfig c = find_synthetic_preset("tiny").config;
  c.seq_len = 8;
  const Model model = make_synthetic_model(c, 1);
  CpuEngine engine(model, &pool_);
  EXPECT_THROW(teacher_forced_nll(engine, kContiguousCache, std::vector<int>{1}), Error);
  EXPECT_THROW(teacher_forced_nll(engine, kContiguousCache, std::vector<int>(9, 1)), Error);
  EXPECT_NO_THROW(teacher_forced_nll(engine, kContiguousCache, std::vector<int>(8, 1)));
}

// The real model predicts its own greedy story far better than the same tokens shuffled.
TEST_F(TeacherForced, Stories260KKnowsItsOwnStoryFromShuffledTokens) {
  const auto real = testing::load_real_model();
  const std::string story = testing::reference_dir() + "/greedy_empty_256.txt";
  const Model& model = real.model;
  const Tokenizer& tokenizer = real.tokenizer;
  std::ifstream in(story);
  ASSERT_TRUE(in) << story << " is missing";
  std::ostringstream text;
  text << in.rdbuf();
  std::vector<int> tokens = tokenizer.encode(text.str(), /*bos=*/true, /*eos=*/false);
  tokens.resize(std::min<std::size_t>(tokens.size(), model.config.seq_len));
  ASSERT_GT(tokens.size(), 100u);

  CpuEngine engine(model, &pool_);
  const double own = teacher_forced_nll(engine, kContiguousCache, tokens).perplexity();
  std::shuffle(tokens.begin() + 1, tokens.end(), std::mt19937(8));
  const double shuffled = teacher_forced_nll(engine, kContiguousCache, tokens).perplexity();
  EXPECT_LT(own, 3.0);
  EXPECT_LT(2 * own, shuffled) << "own story " << own << ", shuffled " << shuffled;
}

}  // namespace
}  // namespace kvc
