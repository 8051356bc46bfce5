// Size arithmetic on numbers a user or a file supplied: a product or sum that
// does not fit in 64 bits is a kvc::Error naming what was being computed,
// never a silent wrap into a small or negative size.
#pragma once

#include <cstdint>

#include "common/check.hpp"

namespace kvc {

// a * b; throws kvc::Error "<what> does not fit in 64 bits (a x b)" on overflow.
inline std::int64_t checked_mul(std::int64_t a, std::int64_t b, const char* what) {
  std::int64_t product = 0;
  KVC_CHECK(!__builtin_mul_overflow(a, b, &product), what, " does not fit in 64 bits (", a, " x ",
            b, ")");
  return product;
}

// a + b; throws kvc::Error "<what> does not fit in 64 bits (a + b)" on overflow.
inline std::int64_t checked_add(std::int64_t a, std::int64_t b, const char* what) {
  std::int64_t sum = 0;
  KVC_CHECK(!__builtin_add_overflow(a, b, &sum), what, " does not fit in 64 bits (", a, " + ", b,
            ")");
  return sum;
}

}  // namespace kvc
