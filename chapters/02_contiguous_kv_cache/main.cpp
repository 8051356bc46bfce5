// ch02_contiguous_kv_cache: llama2.c-compatible generation over a contiguous KV cache.
#include "chapters/02_contiguous_kv_cache/contiguous_kv_cache.hpp"
#include "engine/run_cli.hpp"

int main(int argc, char** argv) {
  return kvc::run_generation_main(
      argc, argv, "Chapter 02: generation over a contiguous, pre-allocated KV cache",
      [](const kvc::ModelConfig& config, const kvc::DeviceContext& device) {
        return kvc::ch02::make_strategy(config, device);
      });
}
