// Which decode attention a CPU strategy runs (chapters 02 and 04, the demos'
// --kernel): the chapter's own loop by default, or one of the engine's tuned
// kernels beside it (kernels/cpu/ops.hpp), so a learner can time the same
// cache read both ways. Chapter 03 has its own list (reread, repeat, grouped, fast).
#pragma once

#include <CLI/CLI.hpp>
#include <string>
#include <vector>

namespace kvc::ch02 {

enum class AttentionKernel {
  kLoop,   // the chapter's exercise loop (llama2.c's order): the default
  kFast,   // the same bits, vectorized (AVX2) and split across the thread pool
  kSplit,  // split-context flash decoding: the context cut across the pool,
           // online softmax; rounds differently (FMA, a vector exp)
};

// "loop" | "fast" | "split" <-> AttentionKernel; parsing throws kvc::Error.
AttentionKernel parse_attention_kernel(const std::string& name);
std::string to_string(AttentionKernel kernel);
// Every name parse_attention_kernel accepts, for a command line's check.
std::vector<std::string> attention_kernel_names();

// The demos' --kernel flag (chapters 02 and 04, ch04_serve), parsed into
// `kernel` ("loop" unless given) and checked against attention_kernel_names().
CLI::Option* add_attention_kernel_option(CLI::App& app, std::string& kernel);

}  // namespace kvc::ch02
