#include "common/cli.hpp"

#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <iostream>
#include <new>

#include "common/check.hpp"
#include "common/output_file.hpp"
#include "common/report.hpp"
#include "common/thread_pool.hpp"

namespace kvc {
namespace {

// Everything the program printed reached stdout; false when a write failed.
bool stdout_intact(std::string& reason) {
  std::cout.flush();
  errno = 0;
  const bool flushed = std::fflush(stdout) == 0;
  if (flushed && !std::ferror(stdout) && std::cout.good()) return true;
  reason = !flushed && errno != 0 ? std::strerror(errno) : "a write failed";
  return false;
}

// `exit_code`, unless what the program printed was lost: then one line, and a failure.
int checked_exit(int exit_code) {
  std::string reason;
  if (stdout_intact(reason)) return exit_code;
  std::fprintf(stderr, "error: cannot write standard output: %s\n", reason.c_str());
  return exit_code != 0 ? exit_code : 1;
}

int report_error(const char* what) {
  std::fflush(stdout);  // what was printed before the error stays before it
  std::fprintf(stderr, "error: %s\n", what);
  return 1;
}

}  // namespace

int run_program(CLI::App& app, int argc, char** argv, const std::function<int()>& body) {
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& help) {
    return checked_exit(app.exit(help));
  } catch (const CLI::ParseError& error) {
    std::fprintf(stderr, "error: %s (run with --help for usage)\n", error.what());
    return error.get_exit_code() != 0 ? error.get_exit_code() : 2;
  }
  int exit_code = 1;
  try {
    exit_code = body();
  } catch (const Error& error) {
    return report_error(error.what());
  } catch (const std::bad_alloc&) {
    return report_error("out of memory");
  } catch (const std::exception& error) {
    // Library failures (a stream error, no more threads): still one line.
    return report_error(error.what());
  }
  return checked_exit(exit_code);
}

CLI::Validator integer_in(long long lo, long long hi) {
  const std::string range = "from " + std::to_string(lo) + " to " + std::to_string(hi);
  return CLI::Validator(
      [lo, hi, range](std::string& text) -> std::string {
        long long value = 0;
        const char* end = text.data() + text.size();
        const auto [stop, error] = std::from_chars(text.data(), end, value);
        if (error != std::errc() || stop != end || value < lo || value > hi) {
          return "must be an integer " + range + ", got " + text;
        }
        return {};
      },
      "in [" + std::to_string(lo) + ", " + std::to_string(hi) + "]");
}

CLI::Validator number_in(double lo, double hi) {
  const std::string range = "from " + format_general(lo) + " to " + format_general(hi);
  return CLI::Validator(
      [lo, hi, range](std::string& text) -> std::string {
        char* stop = nullptr;
        errno = 0;
        const double value = text.empty() ? NAN : std::strtod(text.c_str(), &stop);
        if (stop != text.c_str() + text.size() || !std::isfinite(value) || value < lo ||
            value > hi) {
          return "must be a number " + range + ", got " + text;
        }
        return {};
      },
      "in [" + format_general(lo) + ", " + format_general(hi) + "]");
}

CLI::Validator readable_file() {
  return CLI::Validator(
      [](std::string& path) -> std::string {
        try {
          check_readable_file(path);
        } catch (const Error& error) {
          return error.what();
        }
        return {};
      },
      "FILE");
}

void add_model_options(CLI::App& app, std::string& checkpoint, std::string& tokenizer) {
  app.add_option("checkpoint", checkpoint, "llama2.c model checkpoint (.bin)")
      ->required()
      ->check(readable_file());
  app.add_option("-z", tokenizer, "tokenizer.bin path")
      ->check(readable_file())
      ->capture_default_str();
}

CLI::Option* add_threads_option(CLI::App& app, int& threads) {
  return app
      .add_option("--threads", threads,
                  "CPU threads; 0 = all cores, at most " + std::to_string(ThreadPool::kMaxThreads))
      ->check(integer_in(0, ThreadPool::kMaxThreads))
      ->capture_default_str();
}

}  // namespace kvc
