// ch01_naive_attention: llama2.c-compatible generation with no KV cache.
#include "chapters/01_naive_attention/naive_attention.hpp"
#include "engine/run_cli.hpp"

int main(int argc, char** argv) {
  return kvc::run_generation_main(
      argc, argv, "Chapter 01: generation with no KV cache (recompute the whole sequence)",
      kvc::ch01::make_strategy);
}
