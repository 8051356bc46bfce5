// ch04_serve's --prompts-file parser: lines, limits and one-line errors.
#include "chapters/04_paged_allocator/prompts_file.hpp"

#include <gtest/gtest.h>

#include <filesystem>
#include <string>
#include <vector>

#include "common/check.hpp"
#include "tests/support/test_support.hpp"

namespace kvc::ch04 {
namespace {

using testing::error_of;

TEST(PromptsFile, OnePromptPerNonEmptyLine) {
  EXPECT_EQ(parse_prompts("Once upon a time\n\nThe dog\r\nlast line without newline"),
            (std::vector<std::string>{"Once upon a time", "The dog", "last line without newline"}));
  EXPECT_EQ(parse_prompts("  spaces kept  \n"), (std::vector<std::string>{"  spaces kept  "}));
}

TEST(PromptsFile, NoPromptsIsAnError) {
  for (const char* text : {"", "\n", "\r\n\n\r\n"}) {
    EXPECT_NE(error_of([&] { parse_prompts(text); }).find("no prompts"), std::string::npos);
  }
}

TEST(PromptsFile, OverlongLineIsNamedByNumber) {
  const std::string text = "ok\n\n" + std::string(kMaxPromptBytes + 1, 'x') + "\n";
  const std::string message = error_of([&] { parse_prompts(text); });
  EXPECT_NE(message.find("line 3"), std::string::npos) << message;
  EXPECT_NE(message.find("more than the limit"), std::string::npos) << message;
  EXPECT_EQ(parse_prompts(std::string(kMaxPromptBytes, 'x')).size(), 1u);
}

TEST(PromptsFile, TooManyPrompts) {
  std::string text;
  for (std::size_t i = 0; i <= kMaxPrompts; ++i) text += "p\n";
  EXPECT_NE(error_of([&] { parse_prompts(text); }).find("more than"), std::string::npos);
}

TEST(PromptsFile, DirectoryMissingAndEndlessFiles) {
  const std::string directory = std::filesystem::temp_directory_path().string();
  EXPECT_NE(error_of([&] { read_prompts_file(directory); }).find("is a directory"),
            std::string::npos);
  EXPECT_NE(error_of([] { read_prompts_file("/nonexistent/p.txt"); }).find("/nonexistent/p.txt"),
            std::string::npos);
  EXPECT_NE(error_of([] { read_prompts_file("/dev/zero"); }).find("larger than the limit"),
            std::string::npos);
}

}  // namespace
}  // namespace kvc::ch04
