// ch04_paged_allocator: llama2.c-compatible generation over the paged KV
// cache, with a choice of decode attention kernel (--kernel loop|fast|split).
#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstdint>
#include <optional>
#include <string>

#include "chapters/04_paged_allocator/paged_kv_cache.hpp"
#include "common/cli.hpp"
#include "engine/run_cli.hpp"

int main(int argc, char** argv) {
  int block_size = 16;
  std::string kernel = "loop";
  std::optional<int> num_blocks;
  const CLI::App* app = nullptr;
  return kvc::run_generation_main(
      argc, argv, "Chapter 04: generation over a paged KV cache (block allocator + block tables)",
      [&](const kvc::ModelConfig& config,
          const kvc::DeviceContext& device) -> std::unique_ptr<kvc::KVStrategy> {
        const auto attention = kvc::ch02::parse_attention_kernel(kernel);
        if (!num_blocks) return kvc::ch04::make_strategy(config, device, block_size, 1, attention);
        // A pool too small for the run is refused before any text is printed.
        const int steps = app->get_option("-n")->as<int>();
        const int positions = steps == 0 ? config.seq_len : std::min(steps, config.seq_len);
        const int needed = kvc::ch04::blocks_needed(positions, block_size);
        KVC_CHECK(needed <= *num_blocks, "--kv-blocks ", *num_blocks, " holds ",
                  std::int64_t{*num_blocks} * block_size, " positions, but this run needs up to ",
                  positions, " (", needed, " blocks of ", block_size, ")");
        return kvc::ch04::make_paged_cache(config, device, *num_blocks, block_size, attention);
      },
      [&](CLI::App& chapter_app) {
        app = &chapter_app;
        chapter_app.add_option("--block-size", block_size, "tokens per KV block (1-256)")
            ->check(kvc::integer_in(1, 256))
            ->capture_default_str();
        chapter_app
            .add_option("--kv-blocks", num_blocks,
                        "blocks in the pool (default: enough for one whole context)")
            ->check(kvc::integer_in(1, kvc::ch04::kMaxPoolBlocks));
        kvc::ch02::add_attention_kernel_option(chapter_app, kernel);
      });
}
