// Single-sequence text generation with llama2.c's exact semantics, driving
// any KV strategy through the forward pass.
#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "common/sampler.hpp"
#include "common/tokenizer.hpp"
#include "engine/engine.hpp"
#include "engine/kv_strategy.hpp"

namespace kvc {

struct GenerationOptions {
  std::string prompt;  // empty: start from BOS alone
  int steps = 256;     // positions to run, prompt included; 0 = the model's whole context
  SamplerOptions sampling;
};

struct GenerationResult {
  std::vector<int> tokens;      // every position's token: the prompt, then what was sampled
  int num_prompt_tokens = 0;    // BOS included
  int num_cached_tokens = 0;    // prompt positions the strategy already held (a prefix-cache hit)
  int positions = 0;            // positions run through the model
  std::string text;             // exactly what was printed (llama2.c's safe_printf rule)
  double prefill_ms = 0;        // the first forward call: the whole prompt
  std::vector<double> step_ms;  // each later forward call: one new token
  std::size_t kv_bytes = 0;     // KV storage the strategy held at the end

  double total_ms() const;
  // Positions run per second of wall time, prefill included.
  double tokens_per_second() const;
  // Mean time of the first / last `fraction` of decode steps (how cost grows with length).
  double decode_ms_at_start(double fraction = 0.1) const;
  double decode_ms_at_end(double fraction = 0.1) const;
};

// Runs llama2.c's generation loop for one sequence (id 0): encode the prompt
// with BOS, feed it (one batched prefill), then sample one token at a time
// until `steps` positions or BOS. `on_text` receives each printable piece as
// soon as it is known. Strategies that keep no history are fed the whole
// sequence at every step; a strategy that already holds the prompt's first
// positions (a prefix cache) is fed the rest (see KVStrategy's lifecycle). Throws kvc::Error for a
// prompt longer than the context, or steps outside [0, seq_len].
GenerationResult generate(Engine& engine, const Tokenizer& tokenizer, KVStrategy& kv,
                          const GenerationOptions& options,
                          const std::function<void(std::string_view)>& on_text = {});

// The text llama2.c prints for `tokens` (BOS first): each token's piece after
// its predecessor, unprintable pieces skipped. Equals generate()'s result.text.
std::string text_of(const Tokenizer& tokenizer, const std::vector<int>& tokens);

}  // namespace kvc
