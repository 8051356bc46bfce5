// The scheduler's reference: each served completion run again by itself,
// through generate() on chapter 02's contiguous cache, with its own seed and
// the decode attention kernel the pool ran.
#pragma once

#include <string>
#include <vector>

#include "chapters/02_contiguous_kv_cache/attention_kernel.hpp"
#include "chapters/04_paged_allocator/scheduler.hpp"
#include "common/tokenizer.hpp"
#include "engine/generate.hpp"

namespace kvc::ch04 {

struct AloneRun {
  std::vector<GenerationResult> results;  // one per completion, in the same order
  double wall_ms = 0;                     // all of them, one after another
};

// prompts[r] is the text requests[r].prompt was encoded from. Each result's
// tokens are what its completion must equal.
AloneRun generate_each_alone(Engine& engine, const Tokenizer& tokenizer,
                             const std::vector<std::string>& prompts,
                             const std::vector<Request>& requests,
                             const std::vector<Completion>& completions,
                             ch02::AttentionKernel kernel = ch02::AttentionKernel::kLoop);

// Indices of the completions whose tokens differ from their run alone.
std::vector<int> differing_completions(const AloneRun& alone,
                                       const std::vector<Completion>& completions);

}  // namespace kvc::ch04
