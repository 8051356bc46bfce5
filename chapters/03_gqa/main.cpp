// ch03_gqa: llama2.c-compatible generation over the contiguous cache with a
// choice of GQA decode kernel (--kernel reread|repeat|grouped|fast).
#include <CLI/CLI.hpp>

#include "chapters/03_gqa/gqa_kv_cache.hpp"
#include "engine/run_cli.hpp"

int main(int argc, char** argv) {
  std::string kernel = "grouped";
  return kvc::run_generation_main(
      argc, argv, "Chapter 03: grouped-query attention over a contiguous KV cache",
      [&](const kvc::ModelConfig& config, const kvc::DeviceContext& device) {
        return kvc::ch03::make_strategy(config, device, kvc::ch03::parse_decode_kernel(kernel));
      },
      [&](CLI::App& app) {
        app.add_option("--kernel", kernel, "decode attention kernel")
            ->check(CLI::IsMember({"reread", "repeat", "grouped", "fast"}))
            ->capture_default_str();
      });
}
