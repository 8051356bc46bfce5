// ch04_serve's --prompts-file: one prompt per line.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace kvc::ch04 {

// Bounds that keep a wrong file (a checkpoint, /dev/zero) a one-line error.
inline constexpr std::size_t kMaxPromptsFileBytes = std::size_t{64} << 20;
inline constexpr std::size_t kMaxPromptBytes = std::size_t{1} << 20;
inline constexpr std::size_t kMaxPrompts = 1 << 16;

// The non-empty lines of `text` ("\n" or "\r\n" endings), each one prompt.
// Throws kvc::Error naming the line when a prompt is longer than
// kMaxPromptBytes or there are more than kMaxPrompts, and when there is none.
std::vector<std::string> parse_prompts(std::string_view text);

// parse_prompts on a file; throws kvc::Error naming the path when it cannot
// be read, is a directory or is larger than kMaxPromptsFileBytes.
std::vector<std::string> read_prompts_file(const std::string& path);

}  // namespace kvc::ch04
