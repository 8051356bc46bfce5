// End-to-end tests run against every KV strategy: llama2.c's reference text on
// the real model, identical tokens across strategies on a synthetic model, and
// batches of several sequences equal to each sequence run alone.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "chapters/stages.hpp"
#include "common/check.hpp"
#include "common/thread_pool.hpp"
#include "engine/forward.hpp"
#include "engine/generate.hpp"
#include "engine/perplexity.hpp"
#include "tests/support/test_support.hpp"
#include "tools/synthetic_model.hpp"

namespace kvc {
// Test names show the stage, not the bytes of the struct.
void PrintTo(const Stage& stage, std::ostream* out) {
  *out << stage.name;
}
}  // namespace kvc

namespace kvc::testing {
namespace {

class EveryStrategy : public ::testing::TestWithParam<Stage> {
 protected:
  ThreadPool pool_{2};
  const DeviceContext cpu_{Device::kCpu, &pool_, nullptr};
};

std::string name_of(const ::testing::TestParamInfo<Stage>& info) {
  return "ch" + info.param.name;
}

// The whole reference set, so a case added to cases.tsv is tested without a code change.
TEST_P(EveryStrategy, MatchesLlama2cReferenceText) {
  const auto real = load_real_model();
  const auto cases = reference_cases();

  const Model& model = real.model;
  const Tokenizer& tokenizer = real.tokenizer;
  for (const ReferenceCase& c : cases) {
    SCOPED_TRACE(c.name);
    auto kv = GetParam().make(model.config, cpu_);
    GenerationOptions options;
    options.prompt = c.prompt;
    options.steps = c.steps > model.config.seq_len ? 0 : c.steps;
    options.sampling = {c.temperature, c.top_p, c.seed};
    CpuEngine engine(model, &pool_);
    const GenerationResult result = generate(engine, tokenizer, *kv, options);
    EXPECT_EQ(result.text + "\n", c.expected_stdout);
  }
}

// Cached and uncached generation agree token for token, greedy and sampled.
TEST_P(EveryStrategy, SameTokensAsChapter01OnSyntheticModel) {
  ModelConfig config = find_synthetic_preset("tiny").config;
  const Model model = make_synthetic_model(config, /*seed=*/7);
  const Tokenizer tokenizer = make_synthetic_tokenizer(config.vocab_size);
  const Stage baseline = exact_stages(/*max_seqs=*/2).front();
  for (const SamplerOptions sampling :
       {SamplerOptions{0.0f, 0.9f, 1}, SamplerOptions{1.0f, 0.9f, 3},
        SamplerOptions{0.8f, 0.0f, 5}}) {
    GenerationOptions options{"Once upon a time", 96, sampling};
    auto expected_kv = baseline.make(config, cpu_);
    auto kv = GetParam().make(config, cpu_);
    CpuEngine engine(model, &pool_);
    const auto expected = generate(engine, tokenizer, *expected_kv, options);
    const auto actual = generate(engine, tokenizer, *kv, options);
    EXPECT_EQ(actual.tokens, expected.tokens) << "temperature " << sampling.temperature;
    EXPECT_GT(actual.tokens.size(), 10u);
  }
}

// Two sequences in one batch (prefill chunks side by side) give bit-identical
// logits to each sequence run alone: the forward pass is batched from day one.
TEST_P(EveryStrategy, BatchOfTwoSequencesEqualsEachAlone) {
  const ModelConfig config = find_synthetic_preset("tiny").config;
  const Model model = make_synthetic_model(config, /*seed=*/11);
  const std::vector<std::vector<int>> prompts = {{1, 300, 301, 302, 310}, {1, 400, 20, 5}};

  std::vector<std::vector<float>> alone;
  for (std::size_t s = 0; s < prompts.size(); ++s) {
    auto kv = GetParam().make(config, cpu_);
    Batch batch;
    for (std::size_t p = 0; p < prompts[s].size(); ++p) {
      batch.add(prompts[s][p], 0, static_cast<int>(p), p + 1 == prompts[s].size());
    }
    Activations acts;
    forward(model, batch, *kv, acts, &pool_);
    alone.push_back(acts.logits);
  }

  auto kv = GetParam().make(config, cpu_);
  Batch batch;
  for (std::size_t s = 0; s < prompts.size(); ++s) {
    for (std::size_t p = 0; p < prompts[s].size(); ++p) {
      batch.add(prompts[s][p], static_cast<int>(s), static_cast<int>(p),
                p + 1 == prompts[s].size());
    }
  }
  Activations acts;
  forward(model, batch, *kv, acts, &pool_);
  const std::size_t vocab = config.vocab_size;
  for (std::size_t s = 0; s < prompts.size(); ++s) {
    EXPECT_EQ(0, std::memcmp(&acts.logits[s * vocab], alone[s].data(), vocab * sizeof(float)))
        << "sequence " << s;
  }
}

TEST_P(EveryStrategy, RejectsPromptLongerThanContextAndStepsBeyondIt) {
  ModelConfig config = find_synthetic_preset("tiny").config;
  config.seq_len = 16;
  const Model model = make_synthetic_model(config, 1);
  const Tokenizer tokenizer = make_synthetic_tokenizer(config.vocab_size);
  auto kv = GetParam().make(config, cpu_);
  CpuEngine engine(model, &pool_);
  std::string long_prompt;
  for (int i = 0; i < 8; ++i) long_prompt += "the quick brown fox jumps over the lazy dog ";
  GenerationOptions options{long_prompt, 0, {0.0f, 0.9f, 1}};
  EXPECT_THROW(generate(engine, tokenizer, *kv, options), Error);
  options = {"hi", 17, {0.0f, 0.9f, 1}};
  EXPECT_THROW(generate(engine, tokenizer, *kv, options), Error);
  options = {"hi", 16, {0.0f, 0.9f, 1}};
  EXPECT_EQ(generate(engine, tokenizer, *kv, options).positions, 16);
}

INSTANTIATE_TEST_SUITE_P(Chapters, EveryStrategy, ::testing::ValuesIn(exact_stages(/*max_seqs=*/2)),
                         name_of);

// A lossy stage (chapter 07's int8 cache) against fp32, teacher-forced on
// llama2.c's reference stories: the stated tolerance is perplexity within
// 0.5% and the same next-token choice at >= 95% of positions (measured:
// +0.1% and 97.8%, ch07_quality). The exact stages meet both trivially.
class LossyStage : public EveryStrategy {};

TEST_P(LossyStage, TeacherForcedStaysWithinToleranceOfFp32) {
  const auto real = load_real_model();
  CpuEngine engine(real.model, &pool_);
  const Stage fp32 = exact_stages().back();
  const int vocab = real.model.config.vocab_size;
  NegativeLogLikelihood lossy_nll, fp32_nll;
  long long positions = 0, same_choice = 0;
  for (const std::vector<int>& tokens :
       tokenize_texts(reference_text_paths(), real.tokenizer, real.model.config.seq_len)) {
    const std::vector<float> want = teacher_forced_logits(engine, fp32.make, tokens);
    const std::vector<float> got = teacher_forced_logits(engine, GetParam().make, tokens);
    fp32_nll += score_logits(want, tokens, vocab);
    lossy_nll += score_logits(got, tokens, vocab);
    for (std::size_t row = 0; row + 1 < tokens.size(); ++row) {
      const auto w = want.begin() + static_cast<std::ptrdiff_t>(row * vocab);
      const auto g = got.begin() + static_cast<std::ptrdiff_t>(row * vocab);
      same_choice += std::max_element(w, w + vocab) - w == std::max_element(g, g + vocab) - g;
      ++positions;
    }
  }
  ASSERT_GT(positions, 500);
  EXPECT_LT(std::abs(lossy_nll.perplexity() / fp32_nll.perplexity() - 1.0), 0.005)
      << lossy_nll.perplexity() << " vs " << fp32_nll.perplexity();
  EXPECT_GE(static_cast<double>(same_choice) / positions, 0.95);
}

std::vector<Stage> lossy_stages() {
  std::vector<Stage> stages = course_stages(/*max_seqs=*/2);
  std::erase_if(stages, [](const Stage& s) { return s.exact; });
  return stages;
}

INSTANTIATE_TEST_SUITE_P(Chapters, LossyStage, ::testing::ValuesIn(lossy_stages()), name_of);

}  // namespace
}  // namespace kvc::testing
