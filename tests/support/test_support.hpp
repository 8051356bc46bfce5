// Shared helpers for the test suites: where the real model lives, llama2.c's
// reference cases, and running a program to capture its output.
#pragma once

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "common/check.hpp"
#include "common/checkpoint.hpp"
#include "common/tokenizer.hpp"

namespace kvc::testing {

// The project's models/ folder (stories260K.bin, tok512.bin, tokenizer.bin).
std::string models_dir();

// Full path of `file` in models_dir(). Throws kvc::Error when it is missing:
// the files are part of the repository, so a test that needs one fails, never skips.
std::string model_file(const std::string& file);

// The real model of the oracle tests: stories260K.bin with tok512.bin.
struct RealModel {
  Model model;
  Tokenizer tokenizer;
};
RealModel load_real_model();

// A valid header whose KV cache holds 128 TiB at full context (4096 layers x
// seq_len 4194304 x 8 KV heads x head_dim 128 x K and V x 4 bytes): more than
// any machine has, so every cache must refuse it before allocating.
ModelConfig config_beyond_any_memory();

// The message of the kvc::Error that `action` throws ("" when it throws none).
template <typename Action>
std::string error_of(Action action) {
  try {
    action();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

// What every library call of the course promises on a caller's mistake: a
// kvc::Error whose message is one line.
template <typename Action>
void expect_one_line_kvc_error(Action action) {
  const std::string message = error_of(action);
  EXPECT_FALSE(message.empty()) << "no kvc::Error thrown";
  EXPECT_EQ(message.find('\n'), std::string::npos) << message;
}

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
// llama2.c's reference outputs in tests/data/llama2c/; throws kvc::Error when
// cases.tsv or one of its outputs is missing.
std::string reference_dir();
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
