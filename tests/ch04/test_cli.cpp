// Chapter 04's programs as a user meets them: ch04_serve's batched text equals
// each completion alone, and too-small pools or too-long requests are refused
// up front in one line.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "tests/support/cli_expectations.hpp"

namespace kvc::testing {
namespace {

class Ch04Cli : public ::testing::Test {
 protected:
  void SetUp() override {
    checkpoint_ = model_file("stories260K.bin");
    tokenizer_ = model_file("tok512.bin");
  }
  CommandResult run(const std::string& program, const std::string& args) const {
    return run_command(program_path(program) + " " + checkpoint_ + " -z " + tokenizer_ + " " +
                       args);
  }

  std::string checkpoint_, tokenizer_;
};

TEST_F(Ch04Cli, ServeMatchesEachCompletionAloneEvenWhenPreempting) {
  const std::string json = temp_path("serve.json");
  const auto r = run("ch04_serve",
                     "--completions 2 --max-new-tokens 80 --block-size 8 "
                     "--kv-blocks 40 --threads 1 --trace --compare --json " +
                         json);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("--- request 7, completion 1"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("step    0: running  "), std::string::npos) << "the --trace timeline";
  EXPECT_NE(r.out.find("preempted ["), std::string::npos) << "40 blocks cannot hold 16 completions";
  EXPECT_NE(r.out.find("tokens identical to each completion alone: yes"), std::string::npos);
  const std::string report = read_file(json);
  for (const char* key :
       {"\"completions\": 16", "\"kv_blocks\": 40", "\"identical_to_alone\": true", "\"speedup\"",
        "\"batched_tokens_per_second\""}) {
    EXPECT_NE(report.find(key), std::string::npos) << key << " missing in " << report;
  }
  EXPECT_EQ(report.find("\"preemptions\": 0,"), std::string::npos) << report;
  std::filesystem::remove(json);
}

// --kernel picks the fp32 pool's decode attention as in ch04_paged_allocator;
// --compare runs the same kernel alone, so even split's own rounding gives
// each completion's sampled tokens exactly.
TEST_F(Ch04Cli, ServeKernelsMatchTheSameKernelAlone) {
  for (const std::string kernel : {"fast", "split"}) {
    const std::string json = temp_path("serve-" + kernel + ".json");
    const auto r = run("ch04_serve", "--kernel " + kernel +
                                         " --completions 2 --max-new-tokens 60 --block-size 8 "
                                         "--kv-blocks 40 --threads 2 --compare --json " +
                                         json);
    ASSERT_EQ(r.exit_code, 0) << kernel << ": " << r.err;
    EXPECT_NE(r.out.find("tokens identical to each completion alone: yes"), std::string::npos)
        << kernel << ": " << r.out;
    const std::string report = read_file(json);
    EXPECT_NE(report.find("\"kernel\": \"" + kernel + "\""), std::string::npos) << report;
    std::filesystem::remove(json);
  }
  expect_one_line_error(run("ch04_serve", "--kernel split --kv-dtype int8"),
                        "--kernel split runs over the fp32 pool");
  expect_one_line_error(run("ch04_serve", "--kernel bogus"), "--kernel");
}

TEST_F(Ch04Cli, PromptsComeFromFlagsAndFiles) {
  const std::string prompts = temp_path("prompts.txt");
  std::ofstream(prompts) << "Once upon a time\n\nThe cat\n";
  const auto r = run("ch04_serve", "-i 'A bird' --prompts-file " + prompts +
                                       " -t 0 --max-new-tokens 20 --threads 1");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("--- request 2, completion 0"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("--- request 3"), std::string::npos) << "blank lines are not prompts";
  EXPECT_NE(r.out.find("\nA bird"), std::string::npos) << r.out;
  std::filesystem::remove(prompts);
}

TEST_F(Ch04Cli, BadRequestsAndPoolsAreOneLineErrors) {
  expect_one_line_error(run("ch04_serve", "--kv-blocks 3 --max-new-tokens 100"),
                        "needs up to 7 blocks of 16 tokens, but the pool has only 3");
  expect_one_line_error(run("ch04_serve", "--max-new-tokens 600"), "more than the model's context");
  expect_one_line_error(run("ch04_serve", "--completions 0"), "--completions");
  expect_one_line_error(run("ch04_serve", "--block-size 0"), "--block-size");
  expect_one_line_error(run("ch04_serve", "--prompts-file /nonexistent/prompts.txt"),
                        "/nonexistent/prompts.txt");
  // Checked before a GPU is started, so every machine says the same.
  expect_one_line_error(run("ch04_serve", "--kv-dtype int4 --device cuda"),
                        "--kv-dtype int4 runs on the CPU only");
  expect_one_line_error(run("ch04_paged_allocator", "--kv-blocks 4 -n 100"),
                        "--kv-blocks 4 holds 64 positions, but this run needs up to 100");
  expect_one_line_error(run("ch04_paged_allocator", "--block-size 0"), "--block-size");
}

}  // namespace
}  // namespace kvc::testing
