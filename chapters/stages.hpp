// The course's stages in order, each with the factory that builds its KV
// strategy for a device. The tour and the end-to-end tests walk this list, so
// a new chapter adds one entry here and is toured and tested like the others.
#pragma once

#include <string>
#include <vector>

#include "chapters/01_naive_attention/naive_attention.hpp"
#include "chapters/02_contiguous_kv_cache/contiguous_kv_cache.hpp"
#include "chapters/03_gqa/gqa_kv_cache.hpp"
#include "chapters/04_paged_allocator/paged_kv_cache.hpp"
#include "chapters/05_radix_cache/prefix_caching_blocks.hpp"
#include "chapters/07_quantization/quantized_paged_cache.hpp"

namespace kvc {

struct Stage {
  std::string name;  // the chapter folder
  KVStrategyFactory make;
  // true: the same tokens as chapter 01, bit for bit (llama2.c's oracle).
  // false: a lossy cache (chapter 07's int8), held to a stated tolerance of
  // fp32 instead: see LossyStage in tests/chapters/test_strategies.cpp.
  bool exact = true;
};

// `max_seqs`: how many sequences a strategy must hold at once.
inline std::vector<Stage> course_stages(int max_seqs = 1) {
  return {
      {"01_naive_attention", ch01::make_strategy},
      {"02_contiguous_kv_cache",
       [max_seqs](const ModelConfig& c, const DeviceContext& device) {
         return ch02::make_strategy(c, device, max_seqs);
       }},
      {"03_gqa",
       [max_seqs](const ModelConfig& c, const DeviceContext& device) {
         return ch03::make_strategy(c, device, ch03::DecodeKernel::kGrouped, max_seqs);
       }},
      {"04_paged_allocator",
       [max_seqs](const ModelConfig& c, const DeviceContext& device) {
         return ch04::make_strategy(c, device, /*block_size=*/16, max_seqs);
       }},
      {"05_radix_cache",
       [max_seqs](const ModelConfig& c, const DeviceContext& device) {
         return ch05::make_strategy(c, device, "radix", /*block_size=*/16, max_seqs);
       }},
      {"07_quantization",
       [max_seqs](const ModelConfig& c, const DeviceContext& device) {
         return ch07::make_strategy(c, device, parse_kv_dtype("int8", c.head_dim()),
                                    /*block_size=*/16, max_seqs);
       },
       /*exact=*/false},
  };
}

// The stages that give chapter 01's tokens bit for bit.
inline std::vector<Stage> exact_stages(int max_seqs = 1) {
  std::vector<Stage> stages = course_stages(max_seqs);
  std::erase_if(stages, [](const Stage& s) { return !s.exact; });
  return stages;
}

}  // namespace kvc
