// What every program of the course promises on bad input, as a GoogleTest check.
#pragma once

#include <gtest/gtest.h>

#include <string>

#include "tests/support/test_support.hpp"

namespace kvc::testing {

// The error is one line, "error: ..." mentioning `must_mention`, with nothing
// on stdout and a non-zero exit.
inline void expect_one_line_error(const CommandResult& r, const std::string& must_mention) {
  EXPECT_NE(r.exit_code, 0);
  EXPECT_EQ(r.out, "");
  ASSERT_FALSE(r.err.empty());
  EXPECT_EQ(r.err.rfind("error: ", 0), 0u) << r.err;
  EXPECT_EQ(r.err.find('\n'), r.err.size() - 1) << "more than one line: " << r.err;
  EXPECT_NE(r.err.find(must_mention), std::string::npos) << r.err;
}

}  // namespace kvc::testing
