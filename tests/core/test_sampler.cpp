// Sampler: the xorshift64* stream, and greedy / multinomial / top-p picks on
// small distributions whose answers are worked out by hand in each test.
#include "common/sampler.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <utility>
#include <vector>

#include "common/check.hpp"

namespace {

using kvc::Sampler;
using kvc::SamplerOptions;
using kvc::Xorshift64;

// xorshift64* written independently: the multiply goes through 128 bits and
// keeps bits 32..63, which equals the 64-bit wrapping product shifted by 32.
std::vector<std::uint32_t> reference_stream(std::uint64_t state, int count) {
  constexpr unsigned __int128 kMultiplier = 0x2545F4914F6CDD1Dull;
  std::vector<std::uint32_t> values;
  for (int i = 0; i < count; ++i) {
    state ^= state >> 12;
    state ^= state << 25;
    state ^= state >> 27;
    const unsigned __int128 product = static_cast<unsigned __int128>(state) * kMultiplier;
    values.push_back(static_cast<std::uint32_t>((product >> 32) & 0xFFFFFFFFu));
  }
  return values;
}

// The coins a sampler seeded with `seed` draws: the top 24 bits over 2^24.
std::vector<float> reference_coins(std::uint64_t seed, int count) {
  std::vector<float> coins;
  for (const std::uint32_t value : reference_stream(seed, count)) {
    coins.push_back(std::ldexp(static_cast<float>(value >> 8), -24));
  }
  return coins;
}

bool throws_error(int vocab_size, SamplerOptions options) {
  try {
    Sampler sampler(vocab_size, options);
  } catch (const kvc::Error&) {
    return true;
  }
  return false;
}

TEST(Xorshift64, MatchesTheFormulaForSeed42) {
  const std::vector<std::uint32_t> expected = reference_stream(42, 100);
  Xorshift64 rng(42);
  for (std::size_t i = 0; i < expected.size(); ++i) EXPECT_EQ(rng.next_u32(), expected[i]) << i;
}

TEST(Xorshift64, FloatsAreTheTop24BitsInUnitInterval) {
  const std::vector<float> expected = reference_coins(42, 1000);
  Xorshift64 rng(42);
  for (std::size_t i = 0; i < expected.size(); ++i) {
    const float coin = rng.next_f32();
    EXPECT_EQ(coin, expected[i]) << i;
    EXPECT_GE(coin, 0.0f);
    EXPECT_LT(coin, 1.0f);
  }
}

TEST(Xorshift64, EqualSeedsGiveEqualStreamsAndOtherSeedsDiffer) {
  Xorshift64 first(7), second(7), other(8);
  int differences = 0;
  for (int i = 0; i < 64; ++i) {
    const std::uint32_t value = first.next_u32();
    EXPECT_EQ(value, second.next_u32());
    differences += value != other.next_u32();
  }
  EXPECT_GT(differences, 60);
}

TEST(Argmax, FirstMaximumWins) {
  const std::vector<float> values = {1.0f, 3.0f, -2.0f, 3.0f, 2.0f};
  EXPECT_EQ(kvc::argmax(values.data(), static_cast<int>(values.size())), 1);
  const std::vector<float> single = {-5.0f};
  EXPECT_EQ(kvc::argmax(single.data(), 1), 0);
}

TEST(SampleMultinomial, CoinFallsIntoTheCumulativeBuckets) {
  // Buckets [0, 0.25) [0.25, 0.5) [0.5, 1): every boundary is exact in float.
  const std::vector<float> probs = {0.25f, 0.25f, 0.5f};
  const int size = static_cast<int>(probs.size());
  EXPECT_EQ(kvc::sample_multinomial(probs.data(), size, 0.0f), 0);
  EXPECT_EQ(kvc::sample_multinomial(probs.data(), size, 0.2499f), 0);
  EXPECT_EQ(kvc::sample_multinomial(probs.data(), size, 0.25f), 1);
  EXPECT_EQ(kvc::sample_multinomial(probs.data(), size, 0.4999f), 1);
  EXPECT_EQ(kvc::sample_multinomial(probs.data(), size, 0.5f), 2);
  EXPECT_EQ(kvc::sample_multinomial(probs.data(), size, 0.9999f), 2);
}

TEST(SampleMultinomial, MassShortOfTheCoinPicksTheLastToken) {
  const std::vector<float> probs = {0.3f, 0.3f, 0.0f};
  EXPECT_EQ(kvc::sample_multinomial(probs.data(), 3, 0.99f), 2);
}

TEST(SampleTopP, DrawsOnlyWithinTheNucleus) {
  // Sorted: 0.4 (token 1), 0.3 (3), 0.15 (4), 0.13 (2), 0.02 (0, below the
  // cutoff 0.2/4). Mass passes 0.8 at token 4, so the nucleus is {1, 3, 4} with
  // mass 0.85, and the coin splits at 0.4/0.85 = 0.47 and 0.7/0.85 = 0.82.
  const std::vector<float> probs = {0.02f, 0.4f, 0.13f, 0.3f, 0.15f};
  std::vector<std::pair<float, int>> scratch;
  auto pick = [&](float coin) { return kvc::sample_top_p(probs.data(), 5, 0.8f, coin, scratch); };
  EXPECT_EQ(pick(0.0f), 1);
  EXPECT_EQ(pick(0.45f), 1);
  EXPECT_EQ(pick(0.5f), 3);
  EXPECT_EQ(pick(0.8f), 3);
  EXPECT_EQ(pick(0.85f), 4);
  EXPECT_EQ(pick(0.9999f), 4);
  for (int step = 0; step < 1000; ++step) {
    const int token = pick(static_cast<float>(step) / 1000.0f);
    EXPECT_TRUE(token == 1 || token == 3 || token == 4) << "coin " << step / 1000.0;
  }
}

TEST(SampleTopP, EqualProbabilitiesKeepIndexOrder) {
  // Sorted stably: (0.3, 0) (0.3, 2) (0.2, 1) (0.2, 3).
  const std::vector<float> probs = {0.3f, 0.2f, 0.3f, 0.2f};
  std::vector<std::pair<float, int>> scratch;
  // top_p 0.5: nucleus {0, 2}, mass 0.6; the coin splits at 0.3/0.6 = 0.5.
  EXPECT_EQ(kvc::sample_top_p(probs.data(), 4, 0.5f, 0.4f, scratch), 0);
  EXPECT_EQ(kvc::sample_top_p(probs.data(), 4, 0.5f, 0.6f, scratch), 2);
  // top_p 0.9: all four, in the order 0, 2, 1, 3.
  EXPECT_EQ(kvc::sample_top_p(probs.data(), 4, 0.9f, 0.7f, scratch), 1);
  EXPECT_EQ(kvc::sample_top_p(probs.data(), 4, 0.9f, 0.9f, scratch), 3);
}

TEST(SampleTopP, ManyEqualProbabilitiesKeepIndexOrder) {
  // 40 tokens of 1/40 (enough that an unstable sort would shuffle them), top_p
  // 0.49: the nucleus is tokens 0..19, mass 0.5, and the coin (k + 0.5) / 20
  // lands in the middle of the k-th one.
  const std::vector<float> probs(40, 0.025f);
  std::vector<std::pair<float, int>> scratch;
  for (int k = 0; k < 20; ++k) {
    const float coin = (static_cast<float>(k) + 0.5f) / 20.0f;
    EXPECT_EQ(kvc::sample_top_p(probs.data(), 40, 0.49f, coin, scratch), k);
  }
}

TEST(SampleTopP, EmptyNucleusFallsBackToTheMostLikelyToken) {
  // top_p 0.4 < 1/2: the cutoff 0.6 drops both tokens.
  const std::vector<float> probs = {0.5f, 0.5f};
  std::vector<std::pair<float, int>> scratch;
  EXPECT_EQ(kvc::sample_top_p(probs.data(), 2, 0.4f, 0.9f, scratch), 0);
  const std::vector<float> one = {1.0f};
  EXPECT_EQ(kvc::sample_top_p(one.data(), 1, 0.5f, 0.9f, scratch), 0);
}

TEST(Sampler, GreedyIsArgmaxAndLeavesLogitsAlone) {
  Sampler sampler(4, {.temperature = 0.0f, .top_p = 0.9f, .seed = 1});
  std::vector<float> logits = {0.5f, 2.0f, 2.0f, -1.0f};
  const std::vector<float> before = logits;
  EXPECT_EQ(sampler.sample(logits.data()), 1);
  EXPECT_EQ(logits, before);
}

TEST(Sampler, TemperatureScalesLogitsBeforeSoftmax) {
  Sampler sampler(3, {.temperature = 0.5f, .top_p = 0.0f, .seed = 3});
  std::vector<float> logits = {1.0f, 2.0f, 3.0f};
  sampler.sample(logits.data());
  // softmax({2, 4, 6}) in double precision.
  const double total = std::exp(2.0) + std::exp(4.0) + std::exp(6.0);
  EXPECT_NEAR(logits[0], std::exp(2.0) / total, 1e-6);
  EXPECT_NEAR(logits[1], std::exp(4.0) / total, 1e-6);
  EXPECT_NEAR(logits[2], std::exp(6.0) / total, 1e-6);
}

TEST(Sampler, MultinomialOnUniformLogitsIsTheCoinTimesFour) {
  // Equal logits give probabilities of exactly 1/4, so token = floor(4 * coin).
  const std::vector<float> coins = reference_coins(42, 200);
  Sampler sampler(4, {.temperature = 0.7f, .top_p = 1.0f, .seed = 42});
  for (std::size_t i = 0; i < coins.size(); ++i) {
    std::vector<float> logits(4, 1.5f);
    EXPECT_EQ(sampler.sample(logits.data()), static_cast<int>(4.0f * coins[i])) << i;
  }
}

TEST(Sampler, TopPOnUniformLogitsUsesTheFirstThreeTokens) {
  // p = 1/4 each, top_p 0.5: mass exceeds 0.5 at the third token, so the coin
  // scaled by 0.75 picks among tokens 0, 1, 2 in quarters.
  const std::vector<float> coins = reference_coins(9, 200);
  Sampler sampler(4, {.temperature = 1.0f, .top_p = 0.5f, .seed = 9});
  for (std::size_t i = 0; i < coins.size(); ++i) {
    std::vector<float> logits(4, 0.0f);
    const float target = coins[i] * 0.75f;
    const int expected = target < 0.25f ? 0 : target < 0.5f ? 1 : 2;
    EXPECT_EQ(sampler.sample(logits.data()), expected) << i;
  }
}

TEST(Sampler, EqualSeedsGiveEqualTokens) {
  const SamplerOptions options = {.temperature = 1.0f, .top_p = 0.9f, .seed = 1234};
  Sampler first(16, options), second(16, options);
  for (int step = 0; step < 100; ++step) {
    std::vector<float> logits(16), copy(16);
    for (int i = 0; i < 16; ++i)
      logits[i] = copy[i] = std::sin(0.7f * static_cast<float>(i + step));
    EXPECT_EQ(first.sample(logits.data()), second.sample(copy.data())) << step;
  }
}

TEST(Sampler, InvalidOptionsThrow) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  EXPECT_TRUE(throws_error(4, {.temperature = -0.1f, .top_p = 0.9f, .seed = 1}));
  EXPECT_TRUE(throws_error(4, {.temperature = nan, .top_p = 0.9f, .seed = 1}));
  EXPECT_TRUE(throws_error(4, {.temperature = 1.0f, .top_p = -0.1f, .seed = 1}));
  EXPECT_TRUE(throws_error(4, {.temperature = 1.0f, .top_p = 1.1f, .seed = 1}));
  EXPECT_TRUE(throws_error(4, {.temperature = 1.0f, .top_p = nan, .seed = 1}));
  EXPECT_TRUE(throws_error(0, {.temperature = 1.0f, .top_p = 0.9f, .seed = 1}));
  EXPECT_FALSE(throws_error(4, {.temperature = 0.0f, .top_p = 0.0f, .seed = 1}));
  EXPECT_FALSE(throws_error(4, {.temperature = 2.0f, .top_p = 1.0f, .seed = 1}));
}

}  // namespace

namespace {

TEST(Sampler, TemperaturesBelowTheBoundAreGreedy) {
  // logits / 1e-45 overflows to inf and the softmax to NaN: the limit is argmax.
  for (const float temperature : {1e-45f, 1e-30f, kvc::kGreedyBelowTemperature / 2}) {
    for (const float top_p : {0.0f, 0.9f}) {
      Sampler sampler(4, SamplerOptions{temperature, top_p, 7});
      for (int draw = 0; draw < 20; ++draw) {
        std::vector<float> logits = {1.0f, 3.5f, 3.4f, -2.0f};
        EXPECT_EQ(sampler.sample(logits.data()), 1) << temperature;
      }
    }
  }
}

TEST(Sampler, NonFiniteOrNegativeOptionsAreRefused) {
  const float inf = std::numeric_limits<float>::infinity();
  const float nan = std::numeric_limits<float>::quiet_NaN();
  EXPECT_THROW(Sampler(4, SamplerOptions{inf, 0.9f, 1}), kvc::Error);
  EXPECT_THROW(Sampler(4, SamplerOptions{nan, 0.9f, 1}), kvc::Error);
  EXPECT_THROW(Sampler(4, SamplerOptions{-1e-45f, 0.9f, 1}), kvc::Error);
  EXPECT_THROW(Sampler(4, SamplerOptions{1.0f, nan, 1}), kvc::Error);
  EXPECT_THROW(Sampler(4, SamplerOptions{1.0f, inf, 1}), kvc::Error);
}

}  // namespace
