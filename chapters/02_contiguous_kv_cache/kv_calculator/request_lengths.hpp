// Request lengths for the fragmentation comparison, from a flag or a file.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace kvc {

// Positive integers separated by commas and/or whitespace; '#' starts a comment
// that runs to the end of the line. Throws kvc::Error naming the line and the
// first token that is not a positive int, or when there is none at all.
std::vector<int> parse_request_lengths(std::string_view text);

// The most a lengths file may hold: a million lengths fit in a few MiB.
inline constexpr std::size_t kMaxRequestLengthsFileBytes = std::size_t{64} << 20;

// parse_request_lengths on a file's contents; throws kvc::Error naming the
// path when the file cannot be read, is a directory or is over the limit.
std::vector<int> read_request_lengths_file(const std::string& path);

}  // namespace kvc
