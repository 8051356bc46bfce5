// Helpers shared by the kernel tests: seeded random inputs and an llm.c-style
// closeness check that reports only the first few mismatches.
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <cstddef>
#include <cstring>
#include <random>
#include <vector>

namespace kvc::test {

inline std::vector<float> random_floats(std::size_t size, unsigned seed, float lo = -1.0f,
                                        float hi = 1.0f) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(lo, hi);
  std::vector<float> values(size);
  for (float& value : values) value = dist(rng);
  return values;
}

// Expects |actual[i] - expected[i]| <= tol + |expected[i]| * eps for every i.
inline void expect_all_close(const std::vector<float>& actual, const std::vector<double>& expected,
                             double tol, double eps) {
  ASSERT_EQ(actual.size(), expected.size());
  constexpr int kMaxReported = 5;
  int mismatches = 0;
  for (std::size_t i = 0; i < actual.size(); ++i) {
    const double allowed = tol + std::abs(expected[i]) * eps;
    if (!(std::abs(actual[i] - expected[i]) <= allowed)) {
      if (mismatches < kMaxReported) {
        ADD_FAILURE() << "index " << i << ": got " << actual[i] << ", expected " << expected[i]
                      << " (allowed error " << allowed << ")";
      }
      ++mismatches;
    }
  }
  EXPECT_EQ(mismatches, 0) << "of " << actual.size() << " values";
}

// Expects the two buffers to hold the same bits (not just close values).
inline void expect_bit_identical(const float* actual, const float* expected, std::size_t size) {
  constexpr int kMaxReported = 5;
  int mismatches = 0;
  for (std::size_t i = 0; i < size; ++i) {
    if (std::memcmp(&actual[i], &expected[i], sizeof(float)) != 0) {
      if (mismatches < kMaxReported) {
        ADD_FAILURE() << "index " << i << ": got " << actual[i] << ", expected " << expected[i];
      }
      ++mismatches;
    }
  }
  EXPECT_EQ(mismatches, 0) << "of " << size << " values differ in their bits";
}

}  // namespace kvc::test
