#include "engine/generate.hpp"

#include <algorithm>
#include <chrono>
#include <numeric>
#include <span>

#include "common/check.hpp"
#include "common/timing.hpp"

namespace kvc {
namespace {

double mean(std::vector<double>::const_iterator begin, std::vector<double>::const_iterator end) {
  return begin == end ? 0.0 : std::accumulate(begin, end, 0.0) / static_cast<double>(end - begin);
}

// How many of `size` steps make up `fraction` of them: at least one, at most all.
std::ptrdiff_t steps_in_fraction(std::size_t size, double fraction) {
  const auto wanted = std::max<std::ptrdiff_t>(1, static_cast<std::ptrdiff_t>(size * fraction));
  return std::min<std::ptrdiff_t>(wanted, static_cast<std::ptrdiff_t>(size));
}

}  // namespace

double GenerationResult::total_ms() const {
  return prefill_ms + std::accumulate(step_ms.begin(), step_ms.end(), 0.0);
}

double GenerationResult::tokens_per_second() const {
  const double ms = total_ms();
  return ms > 0 ? 1000.0 * positions / ms : 0.0;
}

double GenerationResult::decode_ms_at_start(double fraction) const {
  return mean(step_ms.begin(), step_ms.begin() + steps_in_fraction(step_ms.size(), fraction));
}

double GenerationResult::decode_ms_at_end(double fraction) const {
  return mean(step_ms.end() - steps_in_fraction(step_ms.size(), fraction), step_ms.end());
}

std::string text_of(const Tokenizer& tokenizer, const std::vector<int>& tokens) {
  std::string text;
  for (std::size_t i = 1; i < tokens.size(); ++i) {
    const std::string piece = tokenizer.decode(tokens[i - 1], tokens[i]);
    if (Tokenizer::is_printable_piece(piece)) text += piece;
  }
  return text;
}

GenerationResult generate(Engine& engine, const Tokenizer& tokenizer, KVStrategy& kv,
                          const GenerationOptions& options,
                          const std::function<void(std::string_view)>& on_text) {
  const ModelConfig& c = engine.config();
  KVC_CHECK(options.steps >= 0 && options.steps <= c.seq_len, "steps (-n) is ", options.steps,
            " but must be in [0, ", c.seq_len, "] (the model's context; 0 means all of it)");
  const int steps = options.steps == 0 ? c.seq_len : options.steps;

  GenerationResult result;
  result.tokens = tokenizer.encode(options.prompt, /*bos=*/true, /*eos=*/false);
  const int num_prompt = static_cast<int>(result.tokens.size());
  result.num_prompt_tokens = num_prompt;
  KVC_CHECK(num_prompt <= c.seq_len, "the prompt is ", num_prompt,
            " tokens, longer than the model's context of ", c.seq_len);
  Sampler sampler(c.vocab_size, options.sampling);

  // Print the piece for `next` after `prev`; llama2.c stops at BOS without printing it.
  auto emit = [&](int prev, int next) {
    const std::string piece = tokenizer.decode(prev, next);
    if (!Tokenizer::is_printable_piece(piece)) return;
    result.text += piece;
    if (on_text) on_text(piece);
  };

  Batch batch;
  float* logits = nullptr;  // the engine's buffer; the sampler may scale it in place
  // Feed positions [first, last] of the sequence, asking for the logits of `last`
  // only when a token will be sampled from them.
  auto feed = [&](int first, int last, bool wants_logits) {
    batch.clear();
    for (int p = first; p <= last; ++p) {
      batch.add(result.tokens[p], /*seq_id=*/0, p, wants_logits && p == last);
    }
    logits = engine.forward(batch, kv);
  };

  // Prefill: the prompt in one forward call (or its first `steps` positions),
  // from the first position the strategy does not already hold.
  const int num_prefill = std::min(num_prompt, steps);
  const bool samples = num_prompt <= steps;
  const int cached = kv.begin_sequence(
      /*seq_id=*/0,
      std::span<const int>(result.tokens).first(static_cast<std::size_t>(num_prefill)));
  result.num_cached_tokens = cached;
  auto start = std::chrono::steady_clock::now();
  feed(cached, num_prefill - 1, samples);
  result.prefill_ms = ms_since(start);
  for (int p = 1; p <= std::min(num_prompt - 1, steps); ++p)
    emit(result.tokens[p - 1], result.tokens[p]);

  // Decode: sample from the last logits, print, feed the new token, repeat.
  int pos = num_prompt - 1;
  while (samples) {
    const int next = sampler.sample(logits);
    ++pos;
    if (next == kBosToken) break;
    emit(result.tokens.back(), next);
    result.tokens.push_back(next);
    if (pos >= steps) break;
    start = std::chrono::steady_clock::now();
    feed(kv.keeps_history() ? pos : 0, pos, /*wants_logits=*/true);
    result.step_ms.push_back(ms_since(start));
  }
  result.positions = samples ? pos : num_prefill;
  result.kv_bytes = kv.kv_bytes_reserved();
  kv.finish_sequence(0, result.tokens);
  return result;
}

}  // namespace kvc
