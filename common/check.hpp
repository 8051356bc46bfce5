// Errors and checks shared by every layer.
//
// KVC_CHECK(cond, parts...) throws kvc::Error with a one-line message built from
// `parts`; executables catch it in main, print it and exit non-zero. Nothing in
// the engine calls exit() or abort() on bad input.
#pragma once

#include <sstream>
#include <stdexcept>
#include <string>

namespace kvc {

// Any user-facing failure: bad input, bad configuration, exhausted resources.
class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Thrown by exercise stubs until the learner fills them in.
class NotImplemented : public Error {
 public:
  explicit NotImplemented(const std::string& what)
      : Error("not implemented: " + what + " (see exercises/README.md)") {}
};

namespace detail {
template <typename... Parts>
[[noreturn]] void fail(const Parts&... parts) {
  std::ostringstream message;
  (message << ... << parts);
  throw Error(message.str());
}
}  // namespace detail

}  // namespace kvc

// KVC_CHECK(cond, parts...): throw kvc::Error("parts...") when cond is false.
#define KVC_CHECK(cond, ...)                       \
  do {                                             \
    if (!(cond)) ::kvc::detail::fail(__VA_ARGS__); \
  } while (0)

// KVC_FAIL(parts...): throw unconditionally.
#define KVC_FAIL(...) ::kvc::detail::fail(__VA_ARGS__)
