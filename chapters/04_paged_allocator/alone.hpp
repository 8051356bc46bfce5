// The scheduler's reference: each served completion run again by itself,
// through generate() on chapter 02's contiguous cache, with its own seed.
#pragma once

#include <string>
#include <vector>

#include "chapters/04_paged_allocator/scheduler.hpp"
#include "common/tokenizer.hpp"
#include "engine/generate.hpp"

namespace kvc::ch04 {

// prompts[r] is the text requests[r].prompt was encoded from. Returns one
// result per completion, in the same order; its tokens are what the
// completion must equal.
std::vector<GenerationResult> generate_each_alone(Engine& engine, const Tokenizer& tokenizer,
                                                  const std::vector<std::string>& prompts,
                                                  const std::vector<Request>& requests,
                                                  const std::vector<Completion>& completions);

}  // namespace kvc::ch04
