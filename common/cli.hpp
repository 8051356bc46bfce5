// How every program of the course starts: CLI11 parses the command line, then
// the program's body runs. --help prints usage and exits 0; a bad flag, or any
// exception the body throws, becomes one line "error: ..." on stderr and a
// non-zero exit — never a crash or a stack trace. So does a failed write to
// stdout (a full disk, `prog > /dev/full`): output that was lost is an error.
#pragma once

#include <CLI/CLI.hpp>
#include <cstdint>
#include <functional>
#include <limits>
#include <string>

namespace kvc {

// Bounds shared by every program's flags.
inline constexpr double kMaxTemperature = 1000;  // far past uniform sampling already
inline constexpr long long kMaxSeed = std::numeric_limits<std::int64_t>::max();
inline constexpr long long kMaxInt = std::numeric_limits<int>::max();

int run_program(CLI::App& app, int argc, char** argv, const std::function<int()>& body);

// Validators with short, specific messages (CLI11's Range prints its bounds in
// full: 309 digits for a double's maximum). Each checks the text before CLI11
// converts it, so nothing out of range is wrapped or rounded into range.

// A base-10 integer in [lo, hi]: "-s: must be an integer from 0 to 100, got -5".
CLI::Validator integer_in(long long lo, long long hi);
// A finite number in [lo, hi] (NaN and inf are refused): "-p: must be a number from 0 to 1, got
// nan".
CLI::Validator number_in(double lo, double hi);
// A file this program can read: "'x' is a directory", "cannot read 'x': Permission denied".
CLI::Validator readable_file();

// The positional checkpoint and -z tokenizer of every program that loads a model.
void add_model_options(CLI::App& app, std::string& checkpoint, std::string& tokenizer);

// --threads N for the CPU engine: 0 = all cores, at most ThreadPool::kMaxThreads.
CLI::Option* add_threads_option(CLI::App& app, int& threads);

}  // namespace kvc
