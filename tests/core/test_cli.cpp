// run_program and the shared validators: every failure is one line and a
// non-zero exit, whatever the body throws; ranges print short.
#include "common/cli.hpp"

#include <gtest/gtest.h>

#include <ios>
#include <stdexcept>
#include <string>
#include <system_error>
#include <vector>

#include "common/check.hpp"

namespace kvc {
namespace {

// The exit code and stderr of run_program over `argv` with `body`.
struct Outcome {
  int exit_code = 0;
  std::string err;
};
Outcome run(CLI::App& app, std::vector<std::string> args, const std::function<int()>& body) {
  std::vector<char*> argv;
  args.insert(args.begin(), "prog");
  for (std::string& arg : args) argv.push_back(arg.data());
  ::testing::internal::CaptureStderr();
  const int code = run_program(app, static_cast<int>(argv.size()), argv.data(), body);
  return {code, ::testing::internal::GetCapturedStderr()};
}

TEST(RunProgram, EveryExceptionIsOneLineAndExitOne) {
  const std::vector<std::function<int()>> bodies = {
      []() -> int { throw Error("bad input"); },
      []() -> int { throw std::ios_base::failure("basic_filebuf::underflow: Is a directory"); },
      []() -> int {
        throw std::system_error(std::make_error_code(std::errc::resource_unavailable_try_again));
      },
      []() -> int { throw std::bad_alloc(); },
      []() -> int { throw std::out_of_range("vector::at"); },
  };
  for (const auto& body : bodies) {
    CLI::App app;
    const Outcome outcome = run(app, {}, body);
    EXPECT_EQ(outcome.exit_code, 1);
    EXPECT_EQ(outcome.err.rfind("error: ", 0), 0u) << outcome.err;
    EXPECT_EQ(outcome.err.find('\n'), outcome.err.size() - 1) << outcome.err;
  }
}

TEST(Validators, RangesPrintShortAndRefuseWhatWouldWrap) {
  CLI::App app;
  long long seed = 0;
  float temperature = 0;
  int threads = 0;
  app.add_option("-s,--seed", seed)->check(integer_in(0, kMaxSeed));
  app.add_option("-t,--temperature", temperature)->check(number_in(0, kMaxTemperature));
  add_threads_option(app, threads);
  const auto error_for = [&](const std::vector<std::string>& args) {
    return run(app, args, [] { return 0; }).err;
  };
  EXPECT_EQ(error_for({"-s", "-5"}),
            "error: --seed: must be an integer from 0 to 9223372036854775807, got -5 (run with "
            "--help for usage)\n");
  for (const char* bad : {"1e30", "0x10", "99999999999999999999", "", "5 ", "abc"}) {
    EXPECT_NE(error_for({"-s", bad}).find("must be an integer"), std::string::npos) << bad;
  }
  EXPECT_EQ(error_for({"-t", "nan"}),
            "error: --temperature: must be a number from 0 to 1000, got nan (run with --help for "
            "usage)\n");
  for (const char* bad : {"inf", "-inf", "-1e-45", "1e400", "1001", "0.5x"}) {
    EXPECT_NE(error_for({"-t", bad}).find("must be a number from 0 to 1000"), std::string::npos)
        << bad;
  }
  EXPECT_NE(error_for({"--threads", "1025"}).find("from 0 to 1024"), std::string::npos);
  EXPECT_EQ(error_for({"-s", "9223372036854775807", "-t", "1e-45", "--threads", "1024"}), "");
  EXPECT_EQ(seed, 9223372036854775807);
  EXPECT_EQ(threads, 1024);
}

}  // namespace
}  // namespace kvc
