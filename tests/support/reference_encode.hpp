// llama2.c's encode(), kept as the oracle for Tokenizer::encode: the same
// steps as run.c, including its quadratic merge loop (after every merge,
// rescan all adjacent pairs; highest score wins, the first pair on ties).
// Slow on long texts by design: tests and fuzzers compare the fast encode
// against it.
#pragma once

#include <string_view>
#include <vector>

#include "common/tokenizer.hpp"

namespace kvc::testing {

std::vector<int> reference_encode(const Tokenizer& tokenizer, std::string_view text, bool bos,
                                  bool eos);

}  // namespace kvc::testing
