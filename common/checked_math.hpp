// Size arithmetic on numbers that come from files and flags: a product or sum
// that does not fit its type is an error, never a silent wrap to a small size.
#pragma once

#include <string_view>
#include <type_traits>

#include "common/check.hpp"

namespace kvc {

// a * b in the type of `a` (b converts to it); throws kvc::Error
// "<what> overflows (a x b)" when it does not fit.
template <typename T>
T checked_mul(T a, std::type_identity_t<T> b, std::string_view what) {
  T product{};
  KVC_CHECK(!__builtin_mul_overflow(a, b, &product), what, " overflows (", a, " x ", b, ")");
  return product;
}

// a + b in the type of `a`; throws kvc::Error "<what> overflows (a + b)" when it does not fit.
template <typename T>
T checked_add(T a, std::type_identity_t<T> b, std::string_view what) {
  T sum{};
  KVC_CHECK(!__builtin_add_overflow(a, b, &sum), what, " overflows (", a, " + ", b, ")");
  return sum;
}

}  // namespace kvc
