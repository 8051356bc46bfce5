// llama2.c's sampler: greedy, multinomial and top-p (nucleus) sampling with a
// seeded xorshift64* generator, so seeded runs reproduce llama2.c's text.
#pragma once

#include <cstdint>
#include <utility>
#include <vector>

namespace kvc {

// xorshift64*: state ^= state >> 12; ^= << 25; ^= >> 27; u32 = (state * 0x2545F4914F6CDD1D) >> 32.
class Xorshift64 {
 public:
  explicit Xorshift64(std::uint64_t seed) : state_(seed) {}
  std::uint32_t next_u32();
  // (u32 >> 8) / 16777216.0f: uniform in [0, 1).
  float next_f32();

 private:
  std::uint64_t state_;
};

// Below this temperature sampling is greedy (argmax). It is the limit of
// softmax(logits / t) as t -> 0, and the only sane answer for a tiny t: for
// t = 1e-45 the scaled logits overflow to inf, the softmax to NaN, and
// llama2.c's sampler then returns garbage. Above it, any two logits 1e-3
// apart already differ in probability by e^100, so nothing visible changes.
inline constexpr float kGreedyBelowTemperature = 1e-5f;

struct SamplerOptions {
  float temperature = 1.0f;  // 0 (or below kGreedyBelowTemperature) = greedy (argmax)
  float top_p = 0.9f;        // <= 0 or >= 1: plain multinomial
  std::uint64_t seed = 1;
};

class Sampler {
 public:
  // Throws kvc::Error for vocab_size <= 0, a temperature that is negative or
  // not finite, or top_p outside [0, 1] (NaN included).
  Sampler(int vocab_size, SamplerOptions options);

  // Picks the next token from `logits` (vocab_size values). Modifies logits in
  // place (temperature scaling and softmax), exactly as llama2.c does.
  int sample(float* logits);

  const SamplerOptions& options() const { return options_; }

 private:
  int vocab_size_;
  SamplerOptions options_;
  Xorshift64 rng_;
  std::vector<std::pair<float, int>> candidates_;  // top-p scratch: (prob, token), reused
};

// Index of the first maximum.
int argmax(const float* values, int size);
// Draws from a probability vector with one uniform coin in [0, 1).
int sample_multinomial(const float* probs, int size, float coin);
// Nucleus sampling over `probs` as llama2.c's sample_topp(), for top_p in
// (0, 1); `scratch` holds the (prob, token) candidates between calls.
int sample_top_p(const float* probs, int size, float top_p, float coin,
                 std::vector<std::pair<float, int>>& scratch);

}  // namespace kvc
