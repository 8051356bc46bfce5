// ch07_quantization: llama2.c-compatible generation over a quantized paged KV cache.
#include <CLI/CLI.hpp>
#include <string>

#include "chapters/07_quantization/quant_flags.hpp"
#include "chapters/07_quantization/quantized_paged_cache.hpp"
#include "engine/run_cli.hpp"

int main(int argc, char** argv) {
  std::string kv_dtype = "int8";
  int group_size = 0;
  int block_size = 16;
  kvc::ch07::QuantOptions options;
  return kvc::run_generation_main(
      argc, argv, "Chapter 07: generation over a quantized paged KV cache",
      [&](const kvc::ModelConfig& config, const kvc::DeviceContext& device) {
        const kvc::KvDtype dtype = kvc::parse_kv_dtype(kv_dtype, config.head_dim(), group_size);
        return kvc::ch07::make_strategy(config, device, dtype, block_size, 1, options);
      },
      [&](CLI::App& app) {
        app.add_option("--kv-dtype", kv_dtype,
                       "KV cache format: fp32, fp16, bf16, int8, fp8, int4-token (per-token "
                       "keys) or int4 (KIVI: per-channel keys)")
            ->capture_default_str();
        app.add_option("--kv-group-size", group_size,
                       "int4 channels per scale (default 32, or head_dim when smaller)");
        kvc::ch07::add_quant_option_flags(app, options);
        app.add_option("--block-size", block_size, "tokens per KV block (1-256)")
            ->check(CLI::Range(1, 256))
            ->capture_default_str();
      });
}
