// Chapter 05's demo as a user meets it: both rows, identical tokens, the JSON
// fields the issue names, the tree as DOT, and bad flags refused in one line.
#include <gtest/gtest.h>

#include <filesystem>

#include "tests/support/cli_expectations.hpp"

namespace kvc::testing {
namespace {

class Ch05Cli : public ::testing::Test {
 protected:
  CommandResult run(const std::string& args) const {
    return run_command(program_path("ch05_prefix_cache") + " " + model_file("stories260K.bin") +
                       " -z " + model_file("tok512.bin") + " --repeats 1 " + args);
  }
};

TEST_F(Ch05Cli, PrintsBothRowsWritesJsonAndTheTree) {
  const std::string json = temp_path("ch05.json");
  const std::string dot = temp_path("ch05.dot");
  const auto r = run("--requests 12 --max-new-tokens 8 --json " + json + " --dot " + dot);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("on (radix)"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("off (chapter 04)"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("tokens identical with the cache on and off: yes"), std::string::npos);
  const std::string report = read_file(json);
  for (const char* field : {"\"cache_on\"", "\"cache_off\"", "\"prefill_tokens_computed\"",
                            "\"prefill_tokens_skipped\"", "\"hit_rate\"", "\"peak_kv_bytes\"",
                            "\"tokens_per_second\"", "\"tokens_identical\": true"}) {
    EXPECT_NE(report.find(field), std::string::npos) << field << " in " << report;
  }
  EXPECT_EQ(read_file(dot).rfind("digraph", 0), 0u);
  std::filesystem::remove(json);
  std::filesystem::remove(dot);
}

TEST_F(Ch05Cli, EveryWorkloadAndBothCachesKeepTheTokens) {
  for (const char* args : {"--workload chat --requests 6 --turns 2 --cache hash",
                           "--workload few-shot --requests 9 --order lpm --kv-blocks 30",
                           "--workload none --requests 6"}) {
    const auto r = run(std::string(args) + " --max-new-tokens 6");
    EXPECT_EQ(r.exit_code, 0) << args << ": " << r.err;
    EXPECT_NE(r.out.find("tokens identical with the cache on and off: yes"), std::string::npos)
        << args << ": " << r.out;
  }
}

TEST_F(Ch05Cli, BadFlagsAreOneLineErrors) {
  expect_one_line_error(run("--workload poems"), "--workload");
  expect_one_line_error(run("--cache tree"), "--cache");
  expect_one_line_error(run("--requests 0"), "--requests");
  expect_one_line_error(run("--kv-blocks 2"), "but the pool has only 2");
  expect_one_line_error(run("--max-new-tokens 600"), "more than the model's context");
  expect_one_line_error(run("--cache hash --requests 2 --dot " + temp_path("hash.dot")),
                        "--dot draws the radix tree");
}

}  // namespace
}  // namespace kvc::testing
