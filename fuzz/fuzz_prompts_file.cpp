// ch04_serve's --prompts-file parser on arbitrary bytes: a list of non-empty,
// bounded, single-line prompts, or a kvc::Error.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "chapters/04_paged_allocator/prompts_file.hpp"
#include "common/check.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  try {
    const auto prompts =
        kvc::ch04::parse_prompts(std::string_view(reinterpret_cast<const char*>(data), size));
    if (prompts.empty() || prompts.size() > kvc::ch04::kMaxPrompts) __builtin_trap();
    for (const auto& prompt : prompts) {
      if (prompt.empty() || prompt.size() > kvc::ch04::kMaxPromptBytes ||
          prompt.find('\n') != std::string::npos) {
        __builtin_trap();
      }
    }
  } catch (const kvc::Error&) {
  }
  return 0;
}
