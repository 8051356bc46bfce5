// The course's stages in order: every KV strategy with the factory that builds
// it. The tour and the end-to-end tests walk this list, so a new chapter adds
// one entry here and is toured and tested like the others.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "chapters/01_naive_attention/naive_attention.hpp"
#include "chapters/02_contiguous_kv_cache/contiguous_kv_cache.hpp"
#include "engine/run_cli.hpp"

namespace kvc {

struct Stage {
  std::string name;  // the chapter folder
  KVStrategyFactory make;
};

// `max_seqs`: how many sequences a strategy must hold at once.
inline std::vector<Stage> course_stages(int max_seqs = 1) {
  return {
      {"01_naive_attention",
       [](const ModelConfig& c, ThreadPool* pool) {
         return std::make_unique<ch01::NaiveAttention>(c, pool);
       }},
      {"02_contiguous_kv_cache",
       [max_seqs](const ModelConfig& c, ThreadPool* pool) {
         return std::make_unique<ch02::ContiguousKVCache>(c, max_seqs, pool);
       }},
  };
}

}  // namespace kvc
