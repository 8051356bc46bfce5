// A GoogleTest predicate for "same bits", with a message that points at the
// first element that differs instead of printing two long vectors.
#pragma once

#include <gtest/gtest.h>

#include <bit>
#include <cstdint>
#include <iomanip>
#include <sstream>
#include <vector>

namespace kvc::testing {

// EXPECT_TRUE(bit_identical(actual, expected)): every float has the same bit
// pattern. On failure: the first differing index, both values to the last
// digit, and how many elements differ in all.
inline ::testing::AssertionResult bit_identical(const std::vector<float>& actual,
                                                const std::vector<float>& expected) {
  if (actual.size() != expected.size()) {
    return ::testing::AssertionFailure()
           << "sizes differ: " << actual.size() << " vs expected " << expected.size();
  }
  std::size_t first = actual.size(), count = 0;
  for (std::size_t i = 0; i < actual.size(); ++i) {
    if (std::bit_cast<std::uint32_t>(actual[i]) != std::bit_cast<std::uint32_t>(expected[i])) {
      if (count++ == 0) first = i;
    }
  }
  if (count == 0) return ::testing::AssertionSuccess();
  std::ostringstream message;
  message << std::setprecision(9) << "element " << first << " is " << actual[first]
          << " but expected " << expected[first] << " (" << count << " of " << actual.size()
          << " elements differ)";
  return ::testing::AssertionFailure() << message.str();
}

}  // namespace kvc::testing
