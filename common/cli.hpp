// How every program of the course starts: CLI11 parses the command line, then
// the program's body runs. --help prints usage and exits 0; a bad flag, or any
// kvc::Error the body throws, becomes one line "error: ..." on stderr and a
// non-zero exit — never a crash or a stack trace.
#pragma once

#include <CLI/CLI.hpp>
#include <functional>

namespace kvc {

int run_program(CLI::App& app, int argc, char** argv, const std::function<int()>& body);

}  // namespace kvc
