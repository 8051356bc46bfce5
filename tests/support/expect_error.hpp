// What every library call of the course promises on a caller's mistake, as a
// GoogleTest check: a kvc::Error whose message is one line.
#pragma once

#include <gtest/gtest.h>

#include <string>

#include "common/check.hpp"

namespace kvc::testing {

template <typename Action>
void expect_one_line_kvc_error(Action action) {
  try {
    action();
    ADD_FAILURE() << "no kvc::Error thrown";
  } catch (const Error& error) {
    EXPECT_EQ(std::string(error.what()).find('\n'), std::string::npos) << error.what();
  }
}

}  // namespace kvc::testing
