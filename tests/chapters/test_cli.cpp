// The chapter demos as a user meets them: llama2.c's command line, and bad
// input answered with one line on stderr and a non-zero exit.
#include <gtest/gtest.h>

#include <filesystem>

#include "tests/support/cli_expectations.hpp"

namespace kvc::testing {
namespace {

const char* const kPrograms[] = {"ch01_naive_attention", "ch02_contiguous_kv_cache", "ch03_gqa",
                                 "ch04_paged_allocator"};

class ChapterCli : public ::testing::TestWithParam<const char*> {
 protected:
  void SetUp() override {
    checkpoint_ = model_file("stories260K.bin");
    tokenizer_ = model_file("tok512.bin");
  }
  CommandResult run(const std::string& args) const {
    return run_command(program_path(GetParam()) + " " + args);
  }
  std::string model_args() const { return checkpoint_ + " -z " + tokenizer_; }

  std::string checkpoint_, tokenizer_;
};

TEST_P(ChapterCli, GreedyRunPrintsReferenceTextAndTokensPerSecond) {
  const auto cases = reference_cases();
  const ReferenceCase& c = cases.front();
  const auto r = run(model_args() + " -t " + std::to_string(c.temperature) + " -p " +
                     std::to_string(c.top_p) + " -s " + std::to_string(c.seed) + " -n " +
                     std::to_string(c.steps) + " -i '" + c.prompt + "'");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, c.expected_stdout);
  EXPECT_NE(r.err.find("achieved tok/s: "), std::string::npos);
}

TEST_P(ChapterCli, WritesJsonReport) {
  const std::string json = temp_path("report.json");
  const auto r = run(model_args() + " -t 0 -n 32 --threads 1 --json " + json);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::string text = read_file(json);
  for (const char* key : {"\"tokens_per_second\"", "\"prefill_ms\"", "\"decode_ms\"",
                          "\"kv_bytes\"", "\"steps\": 32", "\"tokens\": [1,"}) {
    EXPECT_NE(text.find(key), std::string::npos) << key << " missing in " << text;
  }
  std::filesystem::remove(json);
}

TEST_P(ChapterCli, BadInputIsOneLineError) {
  expect_one_line_error(run(model_args() + " --no-such-flag"), "no-such-flag");
  expect_one_line_error(run("/nonexistent/model.bin -z " + tokenizer_), "/nonexistent/model.bin");
  expect_one_line_error(run(checkpoint_ + " -z /nonexistent/tok.bin"), "/nonexistent/tok.bin");
  expect_one_line_error(run(model_args() + " -t -0.5"), "temperature");
  expect_one_line_error(run(model_args() + " -p 1.5"), "top-p");
  expect_one_line_error(run(model_args() + " -n 513"), "context");
  expect_one_line_error(run(model_args() + " -n -1"), "steps");
  expect_one_line_error(run(model_args() + " -m chat"), "chat");
  expect_one_line_error(run(model_args() + " --device tpu"), "tpu");

  std::string long_prompt;
  for (int i = 0; i < 200; ++i) long_prompt += "Once upon a time ";
  expect_one_line_error(run(model_args() + " -i '" + long_prompt + "'"), "longer than");

  // A truncated checkpoint: the header promises more bytes than the file has.
  const std::string truncated = temp_path("truncated.bin");
  std::filesystem::copy_file(checkpoint_, truncated);
  std::filesystem::resize_file(truncated, 5000);
  expect_one_line_error(run(truncated + " -z " + tokenizer_), "truncated");
  std::filesystem::remove(truncated);
}

INSTANTIATE_TEST_SUITE_P(Chapters, ChapterCli, ::testing::ValuesIn(kPrograms),
                         [](const auto& info) { return std::string(info.param); });

}  // namespace
}  // namespace kvc::testing
