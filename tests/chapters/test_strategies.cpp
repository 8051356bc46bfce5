// End-to-end tests run against every KV strategy: llama2.c's reference text on
// the real model, identical tokens across strategies on a synthetic model, and
// batches of several sequences equal to each sequence run alone.
#include <gtest/gtest.h>

#include <cstring>

#include "chapters/stages.hpp"
#include "common/check.hpp"
#include "common/thread_pool.hpp"
#include "engine/forward.hpp"
#include "engine/generate.hpp"
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
  const Stage baseline = course_stages(/*max_seqs=*/2).front();
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

INSTANTIATE_TEST_SUITE_P(Chapters, EveryStrategy,
                         ::testing::ValuesIn(course_stages(/*max_seqs=*/2)), name_of);

}  // namespace
}  // namespace kvc::testing
