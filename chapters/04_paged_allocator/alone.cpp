#include "chapters/04_paged_allocator/alone.hpp"

#include <chrono>

#include "chapters/02_contiguous_kv_cache/contiguous_kv_cache.hpp"
#include "common/timing.hpp"

namespace kvc::ch04 {

AloneRun generate_each_alone(Engine& engine, const Tokenizer& tokenizer,
                             const std::vector<std::string>& prompts,
                             const std::vector<Request>& requests,
                             const std::vector<Completion>& completions,
                             ch02::AttentionKernel kernel) {
  auto contiguous = ch02::make_strategy(engine.config(), engine.context(), 1, kernel);
  AloneRun run;
  const auto start = std::chrono::steady_clock::now();
  for (const Completion& c : completions) {
    const Request& request = requests.at(c.request);
    GenerationOptions alone;
    alone.prompt = prompts.at(c.request);
    // generate() runs `steps` positions and returns the token sampled at the last one.
    alone.steps = request.max_positions();
    alone.sampling = request.sampling;
    alone.sampling.seed += c.index;
    run.results.push_back(generate(engine, tokenizer, *contiguous, alone));
  }
  run.wall_ms = ms_since(start);
  return run;
}

std::vector<int> differing_completions(const AloneRun& alone,
                                       const std::vector<Completion>& completions) {
  std::vector<int> differing;
  for (std::size_t i = 0; i < completions.size(); ++i) {
    if (alone.results.at(i).tokens != completions[i].tokens) differing.push_back(i);
  }
  return differing;
}

}  // namespace kvc::ch04
