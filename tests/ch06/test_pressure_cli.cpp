// ch06_pressure as a user meets it: a table per workload, every row's tokens
// identical to the unbounded run, the JSON the plot reads, and bad flags
// refused in one line.
#include <gtest/gtest.h>

#include <filesystem>
#include <string>

#include "tests/support/cli_expectations.hpp"

namespace kvc::testing {
namespace {

class Ch06PressureCli : public ::testing::Test {
 protected:
  CommandResult run(const std::string& args) const {
    return run_command(program_path("ch06_pressure") + " " + model_file("stories260K.bin") +
                       " -z " + model_file("tok512.bin") + " " + args);
  }
};

// The number after `"key": ` at or after `from` in the JSON text.
double number_after(const std::string& json, const std::string& key, std::size_t from = 0) {
  const std::size_t at = json.find("\"" + key + "\": ", from);
  EXPECT_NE(at, std::string::npos) << key;
  return at == std::string::npos ? -1 : std::stod(json.substr(at + key.size() + 4));
}

TEST_F(Ch06PressureCli, SweepsThePoolAndWritesJson) {
  const std::string json_path = temp_path("ch06_pressure.json");
  const auto r =
      run("--workloads zipf,idle-chat --pools 3 --requests 12 --turns 3 "
          "--max-new-tokens 8 --json " +
          json_path);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("workload zipf:"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("workload idle-chat:"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("tokens identical to the unbounded run in every row: yes"),
            std::string::npos)
      << r.out;
  const std::string json = read_file(json_path);
  for (const char* field :
       {"\"workloads\": [", "\"rows\": [", "\"pool_blocks\"", "\"policy\": \"lru\"",
        "\"policy\": \"lfu\"", "\"policy\": \"fifo\"", "\"policy\": \"slru\"", "\"hit_rate\"",
        "\"belady_hit_rate\"", "\"prefill_tokens_computed\"", "\"evicted_blocks\"",
        "\"preemptions\"", "\"tokens_per_second\"", "\"fits_everything_blocks\"",
        "\"fits_one_request_blocks\"", "\"tokens_identical\": true"}) {
    EXPECT_NE(json.find(field), std::string::npos) << field << " in " << json;
  }
  // Each workload's first row is the pool that fits everything: nothing is
  // evicted, and no policy hits more than MIN, which there hits every block
  // an earlier request computed.
  for (std::size_t at = json.find("\"rows\""); at != std::string::npos;
       at = json.find("\"rows\"", at + 1)) {
    EXPECT_EQ(number_after(json, "pool_blocks", at),
              number_after(json, "fits_everything_blocks", json.rfind("\"workload\"", at)));
    EXPECT_EQ(number_after(json, "evicted_blocks", at), 0);
    EXPECT_LE(number_after(json, "hit_rate", at), number_after(json, "belady_hit_rate", at));
    EXPECT_GT(number_after(json, "hit_rate", at), 0.2);
  }
  std::filesystem::remove(json_path);
}

TEST_F(Ch06PressureCli, ExplicitPoolSizesAndPoliciesAreRunAsGiven) {
  const auto r =
      run("--workloads chat --pool-blocks 40,16 --requests 6 --turns 2 "
          "--max-new-tokens 6 --policies priority,lru");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find(" priority "), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find(" lfu "), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("\n40 "), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("\n16 "), std::string::npos) << r.out;
}

TEST_F(Ch06PressureCli, BadFlagsAreOneLineErrors) {
  expect_one_line_error(run("--workloads chat,poems"), "--workloads");
  expect_one_line_error(run("--policies mru"), "--policies");
  expect_one_line_error(run("--pools 0"), "--pools");
  expect_one_line_error(run("--pools 3 --pool-blocks 10"), "excludes");
  expect_one_line_error(run("--pool-blocks 10,0"), "--pool-blocks");
  expect_one_line_error(run("--zipf-s nan"), "--zipf-s");
  expect_one_line_error(run("--workloads none --requests 2 --pool-blocks 30,2"),
                        "the longest request of none needs 3 blocks but the pool has only 2");
  expect_one_line_error(run("--max-new-tokens 600"), "more than the model's context");
  expect_one_line_error(run("--json " + std::filesystem::temp_directory_path().string()),
                        "is a directory");
}

}  // namespace
}  // namespace kvc::testing
