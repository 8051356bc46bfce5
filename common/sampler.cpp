#include "common/sampler.hpp"

#include <algorithm>
#include <cmath>

#include "common/check.hpp"

namespace kvc {

namespace {

// llama2.c's softmax, step for step (max, expf, sum in index order, divide), so
// the probabilities round the same and seeded runs pick the same tokens.
void softmax_in_place(float* values, int size) {
  float max_value = values[0];
  for (int i = 1; i < size; ++i) max_value = std::max(max_value, values[i]);
  float sum = 0.0f;
  for (int i = 0; i < size; ++i) {
    values[i] = std::exp(values[i] - max_value);
    sum += values[i];
  }
  for (int i = 0; i < size; ++i) values[i] /= sum;
}

}  // namespace

std::uint32_t Xorshift64::next_u32() {
  state_ ^= state_ >> 12;
  state_ ^= state_ << 25;
  state_ ^= state_ >> 27;
  return static_cast<std::uint32_t>((state_ * 0x2545F4914F6CDD1Dull) >> 32);
}

float Xorshift64::next_f32() {
  // The top 24 bits fit a float's mantissa exactly.
  return static_cast<float>(next_u32() >> 8) / 16777216.0f;
}

Sampler::Sampler(int vocab_size, SamplerOptions options)
    : vocab_size_(vocab_size), options_(options), rng_(options.seed) {
  KVC_CHECK(vocab_size > 0, "sampler: vocab_size must be positive, got ", vocab_size);
  // Written so that NaN fails the checks too.
  KVC_CHECK(options.temperature >= 0.0f && std::isfinite(options.temperature),
            "sampler: temperature must be a finite number >= 0, got ", options.temperature);
  KVC_CHECK(options.top_p >= 0.0f && options.top_p <= 1.0f,
            "sampler: top_p must be in [0, 1], got ", options.top_p);
  candidates_.reserve(static_cast<std::size_t>(vocab_size));
}

int Sampler::sample(float* logits) {
  if (options_.temperature < kGreedyBelowTemperature) return argmax(logits, vocab_size_);
  for (int i = 0; i < vocab_size_; ++i) logits[i] /= options_.temperature;
  softmax_in_place(logits, vocab_size_);
  const float coin = rng_.next_f32();
  if (options_.top_p <= 0.0f || options_.top_p >= 1.0f) {
    return sample_multinomial(logits, vocab_size_, coin);
  }
  return sample_top_p(logits, vocab_size_, options_.top_p, coin, candidates_);
}

int argmax(const float* values, int size) {
  int best = 0;
  for (int i = 1; i < size; ++i) {
    if (values[i] > values[best]) best = i;
  }
  return best;
}

int sample_multinomial(const float* probs, int size, float coin) {
  float cdf = 0.0f;
  for (int i = 0; i < size; ++i) {
    cdf += probs[i];
    if (coin < cdf) return i;
  }
  return size - 1;  // the probabilities summed to a little under the coin
}

int sample_top_p(const float* probs, int size, float top_p, float coin,
                 std::vector<std::pair<float, int>>& scratch) {
  if (size == 1) return 0;
  // A token below this probability can never be needed to reach top_p, so it
  // is dropped before the sort (usually most of the vocabulary).
  const float cutoff = (1.0f - top_p) / static_cast<float>(size - 1);
  scratch.clear();
  for (int i = 0; i < size; ++i) {
    if (probs[i] >= cutoff) scratch.emplace_back(probs[i], i);
  }
  // Only when top_p < 1/size can every token fall below the cutoff (llama2.c
  // then reads out of bounds); the nucleus is at least the most likely token.
  if (scratch.empty()) return argmax(probs, size);

  // Stable, like glibc's merge-sort qsort: equal probabilities keep index order.
  std::stable_sort(scratch.begin(), scratch.end(),
                   [](const auto& a, const auto& b) { return a.first > b.first; });

  // The nucleus: the shortest prefix whose mass exceeds top_p.
  float nucleus_mass = 0.0f;
  std::size_t last = scratch.size() - 1;
  for (std::size_t i = 0; i < scratch.size(); ++i) {
    nucleus_mass += scratch[i].first;
    if (nucleus_mass > top_p) {
      last = i;
      break;
    }
  }

  // Draw within the nucleus, its mass rescaled to the coin.
  const float target = coin * nucleus_mass;
  float cdf = 0.0f;
  for (std::size_t i = 0; i <= last; ++i) {
    cdf += scratch[i].first;
    if (target < cdf) return scratch[i].second;
  }
  return scratch[last].second;  // rounding left the target just past the last cdf
}

}  // namespace kvc
