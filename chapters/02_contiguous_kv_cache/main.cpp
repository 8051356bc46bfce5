// ch02_contiguous_kv_cache: llama2.c-compatible generation over a contiguous KV
// cache, with a choice of decode attention kernel (--kernel loop|fast|split).
#include <CLI/CLI.hpp>
#include <string>

#include "chapters/02_contiguous_kv_cache/contiguous_kv_cache.hpp"
#include "engine/run_cli.hpp"

int main(int argc, char** argv) {
  std::string kernel = "loop";
  return kvc::run_generation_main(
      argc, argv, "Chapter 02: generation over a contiguous, pre-allocated KV cache",
      [&](const kvc::ModelConfig& config, const kvc::DeviceContext& device) {
        return kvc::ch02::make_strategy(config, device, 1,
                                        kvc::ch02::parse_attention_kernel(kernel));
      },
      [&](CLI::App& app) { kvc::ch02::add_attention_kernel_option(app, kernel); });
}
