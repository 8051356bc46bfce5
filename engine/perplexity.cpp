#include "engine/perplexity.hpp"

#include <algorithm>
#include <cmath>

#include "common/check.hpp"

namespace kvc {

double NegativeLogLikelihood::perplexity() const {
  return std::exp(mean());
}

NegativeLogLikelihood& NegativeLogLikelihood::operator+=(const NegativeLogLikelihood& other) {
  sum += other.sum;
  num_scored += other.num_scored;
  return *this;
}

double log_probability(std::span<const float> logits, int token) {
  const double max_logit = *std::ranges::max_element(logits);
  double sum_exp = 0;
  for (float logit : logits) sum_exp += std::exp(logit - max_logit);
  return logits[token] - max_logit - std::log(sum_exp);
}

NegativeLogLikelihood teacher_forced_nll(Engine& engine, const KVStrategyFactory& make_strategy,
                                         std::span<const int> tokens) {
  const ModelConfig& c = engine.config();
  const int n = static_cast<int>(tokens.size());
  KVC_CHECK(n >= 2, "teacher-forced NLL needs at least 2 tokens, got ", n);
  KVC_CHECK(n <= c.seq_len, "teacher-forced NLL: ", n, " tokens exceed the model's context of ",
            c.seq_len);

  // Every position but the last predicts the token after it.
  Batch batch;
  for (int p = 0; p < n; ++p) batch.add(tokens[p], /*seq_id=*/0, p, /*wants_logits=*/p + 1 < n);
  auto kv = make_strategy(c, engine.context());
  const float* logits = engine.forward(batch, *kv);  // [n - 1][vocab_size]
  kv->release(0);

  NegativeLogLikelihood nll;
  const std::size_t vocab = c.vocab_size;
  for (int p = 0; p + 1 < n; ++p) {
    nll.sum -= log_probability({logits + p * vocab, vocab}, tokens[p + 1]);
    ++nll.num_scored;
  }
  return nll;
}

}  // namespace kvc
