#include "chapters/04_paged_allocator/prompts_file.hpp"

#include "common/check.hpp"
#include "common/read_file.hpp"

namespace kvc::ch04 {

std::vector<std::string> parse_prompts(std::string_view text) {
  std::vector<std::string> prompts;
  std::size_t line = 0;
  while (!text.empty()) {
    ++line;
    const std::size_t end = text.find('\n');
    std::string_view prompt = text.substr(0, end);
    text.remove_prefix(end == std::string_view::npos ? text.size() : end + 1);
    if (!prompt.empty() && prompt.back() == '\r') prompt.remove_suffix(1);
    if (prompt.empty()) continue;
    KVC_CHECK(prompt.size() <= kMaxPromptBytes, "line ", line, ": prompt is ", prompt.size(),
              " bytes, more than the limit of ", kMaxPromptBytes);
    KVC_CHECK(prompts.size() < kMaxPrompts, "line ", line, ": more than ", kMaxPrompts, " prompts");
    prompts.emplace_back(prompt);
  }
  KVC_CHECK(!prompts.empty(), "no prompts (every line is empty)");
  return prompts;
}

std::vector<std::string> read_prompts_file(const std::string& path) {
  const std::string text = read_file_bounded(path, kMaxPromptsFileBytes, "prompts file");
  try {
    return parse_prompts(text);
  } catch (const Error& error) {
    KVC_FAIL("prompts file '", path, "': ", error.what());
  }
}

}  // namespace kvc::ch04
