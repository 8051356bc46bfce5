// The command line every chapter's demo shares: llama2.c's `run` flags plus
// --device, --weights-dtype, --threads and --json.
//
//   chNN_... <checkpoint.bin> [-z tokenizer.bin] [-t temp] [-p top_p] [-s seed]
//            [-n steps] [-i prompt] [--device cpu|cuda] [--threads N] [--json FILE]
//
// stdout gets exactly the text llama2.c's `run` prints; stderr gets the
// "achieved tok/s" line. Errors are one line on stderr and a non-zero exit.
#pragma once

#include <functional>
#include <string>

#include "engine/kv_strategy.hpp"

namespace CLI {
class App;
}

namespace kvc {

// Parses argv, loads the model, generates, prints. Returns the exit code.
// `add_chapter_options` may add a chapter's own flags (chapter 03's --kernel);
// the factory runs after parsing, so it can read them.
int run_generation_main(int argc, char** argv, const std::string& description,
                        const KVStrategyFactory& make_strategy,
                        const std::function<void(CLI::App&)>& add_chapter_options = {});

}  // namespace kvc
