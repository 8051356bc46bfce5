#include "chapters/04_paged_allocator/alone.hpp"

#include "chapters/02_contiguous_kv_cache/contiguous_kv_cache.hpp"

namespace kvc::ch04 {

std::vector<GenerationResult> generate_each_alone(Engine& engine, const Tokenizer& tokenizer,
                                                  const std::vector<std::string>& prompts,
                                                  const std::vector<Request>& requests,
                                                  const std::vector<Completion>& completions) {
  auto contiguous = ch02::make_strategy(engine.config(), engine.context(), 1);
  std::vector<GenerationResult> results;
  for (const Completion& c : completions) {
    const Request& request = requests.at(c.request);
    GenerationOptions alone;
    alone.prompt = prompts.at(c.request);
    // generate() runs `steps` positions and returns the token sampled at the last one.
    alone.steps = static_cast<int>(request.prompt.size()) + request.max_new_tokens - 1;
    alone.sampling = request.sampling;
    alone.sampling.seed += c.index;
    results.push_back(generate(engine, tokenizer, *contiguous, alone));
  }
  return results;
}

}  // namespace kvc::ch04
