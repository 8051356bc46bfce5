// Teacher-forced evaluation: how well a model predicts a given text.
//
// The whole token sequence goes through the model in ONE batch (positions
// 0..n-1, as a prompt would), and the logits at position p score the token at
// p + 1. The mean negative log-likelihood (NLL) of tokens[1..n) is the model's
// cross-entropy on the text, in nats per token; perplexity = exp(mean NLL) is
// how many tokens the model hesitates between on average: 1 for a model that
// is always sure and right, vocab_size for one that guesses uniformly.
#pragma once

#include <span>
#include <string>
#include <vector>

#include "common/tokenizer.hpp"

#include "engine/engine.hpp"
#include "engine/kv_strategy.hpp"

namespace kvc {

struct NegativeLogLikelihood {
  double sum = 0;      // -sum of log P(token | the tokens before it), in nats
  int num_scored = 0;  // tokens scored: n - 1 for a sequence of n

  double mean() const { return sum / num_scored; }
  double perplexity() const;
  // Pools several texts: the result weighs every scored token equally.
  NegativeLogLikelihood& operator+=(const NegativeLogLikelihood& other);
};

// log softmax(logits)[token], computed in double (with the max subtracted, so
// large logits cannot overflow).
double log_probability(std::span<const float> logits, int token);

// The logits at positions 0..n-2, [n - 1][vocab_size]: what the model predicts
// for tokens[1..n), through a fresh strategy from `make_strategy` (released
// afterwards). Throws kvc::Error for fewer than 2 tokens or more than the
// model's context.
std::vector<float> teacher_forced_logits(Engine& engine, const KVStrategyFactory& make_strategy,
                                         std::span<const int> tokens);

// The NLL of tokens[1..n) scored by teacher_forced_logits' rows ([n - 1][vocab]).
NegativeLogLikelihood score_logits(std::span<const float> logits, std::span<const int> tokens,
                                   int vocab);

// The NLL of tokens[1..n) given their prefixes, through a fresh strategy from
// `make_strategy` (released afterwards). Throws kvc::Error for fewer than 2
// tokens or more than the model's context.
NegativeLogLikelihood teacher_forced_nll(Engine& engine, const KVStrategyFactory& make_strategy,
                                         std::span<const int> tokens);

// llama2.c's reference stories committed with the project (tests/data/llama2c/*.txt),
// sorted. Throws kvc::Error when there are none.
std::vector<std::string> reference_text_paths();

// Each text file's tokens with BOS, cut to the model's context (seq_len).
// Throws kvc::Error for a file that cannot be read or has no tokens to score.
std::vector<std::vector<int>> tokenize_texts(const std::vector<std::string>& paths,
                                             const Tokenizer& tokenizer, int seq_len);

}  // namespace kvc
