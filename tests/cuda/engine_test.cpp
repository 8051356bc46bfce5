// The whole engine on the GPU: every stage's tokens on the real model equal
// the CPU's, and the demos' --device cuda either runs or says why it cannot.
#include <gtest/gtest.h>

#include "chapters/stages.hpp"
#include "common/thread_pool.hpp"
#include "engine/cuda/cuda_engine.hpp"
#include "engine/generate.hpp"
#include "tests/cuda/cuda_test_helpers.hpp"
#include "tests/support/test_support.hpp"
#include "tools/synthetic_model.hpp"

namespace kvc {
void PrintTo(const Stage& stage, std::ostream* out) {
  *out << stage.name;
}
}  // namespace kvc

namespace kvc::testing {
namespace {

class EveryStageOnCuda : public ::testing::TestWithParam<Stage> {};

GenerationResult run_on(Engine& engine, const Stage& stage, const Tokenizer& tokenizer,
                        const GenerationOptions& options) {
  auto kv = stage.make(engine.config(), engine.context());
  return generate(engine, tokenizer, *kv, options);
}

// fp32 weights: greedy and seeded-sampling tokens equal the CPU's, token for token.
TEST_P(EveryStageOnCuda, SameTokensAsCpuOnRealModel) {
  KVC_SKIP_WITHOUT_GPU();
  const auto real = load_real_model();
  const Model& model = real.model;
  const Tokenizer& tokenizer = real.tokenizer;
  ThreadPool pool(0);
  CpuEngine cpu(model, &pool);
  cuda::CudaEngine gpu(model, NumberFormat::fp32);
  for (const GenerationOptions& options :
       {GenerationOptions{"", 256, {0.0f, 0.9f, 1}},
        GenerationOptions{"Lily and Tom went to the beach", 200, {0.0f, 0.9f, 1}},
        GenerationOptions{"The cat", 0, {0.0f, 0.9f, 1}}}) {
    SCOPED_TRACE(options.prompt);
    const auto expected = run_on(cpu, GetParam(), tokenizer, options);
    const auto actual = run_on(gpu, GetParam(), tokenizer, options);
    EXPECT_EQ(actual.tokens, expected.tokens);
    EXPECT_EQ(actual.text, expected.text);
  }
}

// Half-precision weights change the math on purpose: most greedy tokens still
// agree with fp32 on a synthetic model, and the run completes.
TEST_P(EveryStageOnCuda, HalfPrecisionWeightsRun) {
  KVC_SKIP_WITHOUT_GPU();
  const ModelConfig config = find_synthetic_preset("tiny").config;
  const Model model = make_synthetic_model(config, 3);
  const Tokenizer tokenizer = make_synthetic_tokenizer(config.vocab_size);
  const GenerationOptions options{"Once upon a time", 64, {1.0f, 0.9f, 5}};
  for (NumberFormat dtype : {NumberFormat::fp16, NumberFormat::bf16}) {
    cuda::CudaEngine gpu(model, dtype);
    const auto result = run_on(gpu, GetParam(), tokenizer, options);
    EXPECT_EQ(result.positions, 64) << format_name(dtype);
  }
}

INSTANTIATE_TEST_SUITE_P(Chapters, EveryStageOnCuda, ::testing::ValuesIn(exact_stages()),
                         [](const auto& info) { return "ch" + info.param.name; });

// The demo with --device cuda: llama2.c's greedy text on a GPU, or one line saying why not.
TEST(CudaCli, DeviceCudaRunsOrExplains) {
  const auto checkpoint = model_file("stories260K.bin");
  const auto tokenizer_path = model_file("tok512.bin");
  const auto cases = reference_cases();
  for (const char* program :
       {"ch01_naive_attention", "ch02_contiguous_kv_cache", "ch03_gqa", "ch04_paged_allocator"}) {
    const auto r = run_command(program_path(program) + " " + checkpoint + " -z " + tokenizer_path +
                               " --device cuda -t 0 -n 200 -i 'Lily and Tom went to the beach'");
    std::string why;
    if (!cuda::cuda_device_available(&why)) {
      EXPECT_NE(r.exit_code, 0);
      EXPECT_EQ(r.err.rfind("error: --device cuda: ", 0), 0u) << r.err;
      EXPECT_EQ(r.err.find('\n'), r.err.size() - 1) << r.err;
      continue;
    }
    ASSERT_EQ(r.exit_code, 0) << r.err;
    for (const ReferenceCase& c : cases) {
      if (c.name == "greedy_beach_200") {
        EXPECT_EQ(r.out, c.expected_stdout) << program;
      }
    }
  }
}

}  // namespace
}  // namespace kvc::testing
