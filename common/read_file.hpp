// Reading a whole input file with a bound: a directory, an unreadable path or
// a file larger than the bound (/dev/zero, a checkpoint passed as a prompts
// file) is a one-line kvc::Error, never an exception from the stream library
// or a read that runs until memory is gone.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace kvc {

// The bytes of `path`, at most `max_bytes` of them. `what` names the file in
// messages ("tokenizer file", "prompts file"): "<what> '<path>': is a directory".
std::string read_file_bounded(const std::string& path, std::size_t max_bytes,
                              std::string_view what);

}  // namespace kvc
