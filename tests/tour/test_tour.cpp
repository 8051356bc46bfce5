// The README's first command as a newcomer meets it: kvc_tour on the committed
// real model prints a story, then one line per stage, every stage with the same tokens.
#include <gtest/gtest.h>

#include "tests/support/test_support.hpp"

namespace kvc::testing {
namespace {

TEST(Tour, PrintsTheRealModelsStoryThenEveryStageWithTheSameTokens) {
  const auto tour = run_command(program_path("kvc_tour") + " --repeats 1 -n 64");
  ASSERT_EQ(tour.exit_code, 0) << tour.err;

  // The story is what chapter 02's demo prints for the same sampling options.
  const auto ch02 = run_command(program_path("ch02_contiguous_kv_cache") + " " +
                                model_file("stories260K.bin") + " -z " + model_file("tok512.bin") +
                                " -t 0.8 -p 0.9 -s 42 -n 64 -i 'Once upon a time'");
  ASSERT_EQ(ch02.exit_code, 0) << ch02.err;
  ASSERT_FALSE(ch02.out.empty());
  const std::string story = ch02.out.substr(0, ch02.out.size() - 1);  // without run's final newline
  ASSERT_EQ(story.rfind("Once upon a time", 0), 0u) << story;

  const auto story_at = tour.out.find(story);
  const auto table_at = tour.out.find("01_naive_attention");
  ASSERT_NE(story_at, std::string::npos) << tour.out;
  ASSERT_NE(table_at, std::string::npos) << tour.out;
  EXPECT_LT(story_at, table_at) << "the story comes before the table";
  for (const char* stage : {"02_contiguous_kv_cache", "03_gqa", "04_paged_allocator"}) {
    EXPECT_NE(tour.out.find(stage), std::string::npos) << stage;
  }
  EXPECT_EQ(tour.out.find(" NO"), std::string::npos) << "a stage printed other tokens:\n"
                                                     << tour.out;
  EXPECT_NE(tour.out.find("same tokens: yes"), std::string::npos) << tour.out;
}

TEST(Tour, RejectsAPresetTogetherWithAModel) {
  const auto r = run_command(program_path("kvc_tour") + " --preset tiny --model " +
                             model_file("stories260K.bin"));
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("error:"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace kvc::testing
