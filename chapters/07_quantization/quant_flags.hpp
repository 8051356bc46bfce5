// The flags of QuantOptions, shared by the chapter's demo and its quality table.
#pragma once

#include <CLI/CLI.hpp>

#include "chapters/07_quantization/quantized_paged_cache.hpp"

namespace kvc::ch07 {

inline void add_quant_option_flags(CLI::App& app, QuantOptions& options) {
  app.add_flag("--kv-hadamard", options.hadamard,
               "rotate K and V per head by a Hadamard matrix before quantizing");
  app.add_option("--kv-sinks", options.sink_tokens,
                 "first positions kept in fp32 (attention sinks; at most the block size)")
      ->capture_default_str();
  app.add_flag("--kv-keys-before-rope", options.keys_before_rope,
               "quantize keys before RoPE (KVQuant); attention turns them after dequantizing");
}

}  // namespace kvc::ch07
