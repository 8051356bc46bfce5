// ch02_contiguous_kv_cache: llama2.c-compatible generation over a contiguous KV cache.
#include <memory>

#include "chapters/02_contiguous_kv_cache/contiguous_kv_cache.hpp"
#include "engine/run_cli.hpp"

int main(int argc, char** argv) {
  return kvc::run_generation_main(
      argc, argv, "Chapter 02: generation over a contiguous, pre-allocated KV cache",
      [](const kvc::ModelConfig& config, kvc::ThreadPool* pool) {
        return std::make_unique<kvc::ch02::ContiguousKVCache>(config, /*max_seqs=*/1, pool);
      });
}
