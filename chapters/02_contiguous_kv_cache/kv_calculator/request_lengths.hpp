// Request lengths for the fragmentation comparison, from a flag or a file.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace kvc {

// Positive integers separated by commas and/or whitespace; '#' starts a comment
// that runs to the end of the line. Throws kvc::Error naming the first token
// that is not a positive integer, or when there is none at all.
std::vector<int> parse_request_lengths(std::string_view text);

// parse_request_lengths on a file's contents; throws kvc::Error when the file
// cannot be read (the message names the path).
std::vector<int> read_request_lengths_file(const std::string& path);

}  // namespace kvc
