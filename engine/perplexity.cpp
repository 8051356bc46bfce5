#include "engine/perplexity.hpp"

#include <algorithm>
#include <cmath>
#include <filesystem>

#include "common/check.hpp"
#include "common/read_file.hpp"

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

std::vector<float> teacher_forced_logits(Engine& engine, const KVStrategyFactory& make_strategy,
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
  return {logits, logits + std::size_t(n - 1) * c.vocab_size};
}

NegativeLogLikelihood score_logits(std::span<const float> logits, std::span<const int> tokens,
                                   int vocab) {
  KVC_CHECK(logits.size() == (tokens.size() - 1) * vocab, "score_logits: ", logits.size(),
            " logits for ", tokens.size(), " tokens");
  NegativeLogLikelihood nll;
  for (std::size_t p = 0; p + 1 < tokens.size(); ++p) {
    nll.sum -= log_probability(logits.subspan(p * vocab, vocab), tokens[p + 1]);
    ++nll.num_scored;
  }
  return nll;
}

NegativeLogLikelihood teacher_forced_nll(Engine& engine, const KVStrategyFactory& make_strategy,
                                         std::span<const int> tokens) {
  const std::vector<float> logits = teacher_forced_logits(engine, make_strategy, tokens);
  return score_logits(logits, tokens, engine.config().vocab_size);
}

std::vector<std::string> reference_text_paths() {
  const std::filesystem::path dir = KVC_REFERENCE_DIR;
  std::vector<std::string> paths;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
    if (entry.path().extension() == ".txt") paths.push_back(entry.path().string());
  }
  KVC_CHECK(!paths.empty(), "no --text files given and no reference stories in ", dir.string());
  std::ranges::sort(paths);
  return paths;
}

std::vector<std::vector<int>> tokenize_texts(const std::vector<std::string>& paths,
                                             const Tokenizer& tokenizer, int seq_len) {
  std::vector<std::vector<int>> texts;
  for (const std::string& path : paths) {
    // Bounded like every input file: /dev/zero or a checkpoint is an error, not a long read.
    constexpr std::size_t kMaxTextFileBytes = 64u << 20;
    const std::string text = read_file_bounded(path, kMaxTextFileBytes, "text file");
    std::vector<int> tokens = tokenizer.encode(text, /*bos=*/true, /*eos=*/false);
    KVC_CHECK(tokens.size() >= 2, "text file '", path, "' has no tokens to score");
    if (tokens.size() > static_cast<std::size_t>(seq_len)) tokens.resize(seq_len);
    texts.push_back(std::move(tokens));
  }
  return texts;
}

}  // namespace kvc
