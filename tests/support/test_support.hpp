// Shared helpers for the test suites: where the real model lives, llama2.c's
// reference cases, and running a program to capture its output.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "common/checkpoint.hpp"
#include "common/tokenizer.hpp"

namespace kvc::testing {

// The folder with stories260K.bin, tok512.bin and reference/: $KVC_MODELS_DIR,
// else ../shared/models beside the source tree.
std::string models_dir();

// Full path of `file` in models_dir(), or nullopt when it does not exist
// (callers GTEST_SKIP with the returned message).
std::optional<std::string> model_file(const std::string& file);
std::string missing_model_message(const std::string& file);

// The real model of the oracle tests: stories260K.bin with tok512.bin, or
// nullopt when either file is absent (skip with
// missing_model_message("stories260K.bin")).
struct RealModel {
  Model model;
  Tokenizer tokenizer;
};
std::optional<RealModel> load_real_model();

// One row of reference/cases.tsv: what llama2.c's run printed for these arguments.
struct ReferenceCase {
  std::string name;
  float temperature = 0;
  float top_p = 0;
  unsigned long long seed = 0;
  int steps = 0;
  std::string prompt;
  std::string expected_stdout;  // reference/<name>.txt
};
// Empty when the reference folder is absent.
std::vector<ReferenceCase> reference_cases();

// A program of this build: test binaries and programs share <build>/bin.
std::string program_path(const std::string& name);

// Runs `command` through the shell; returns its exit status, stdout and stderr.
struct CommandResult {
  int exit_code = -1;
  std::string out;
  std::string err;
};
CommandResult run_command(const std::string& command);

// The whole file's bytes; empty when it cannot be read.
std::string read_file(const std::string& path);

// A fresh path under the system temp folder (the file is not created).
std::string temp_path(const std::string& name);

}  // namespace kvc::testing
