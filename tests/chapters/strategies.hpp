// Every KV strategy of the course, for tests parameterized over all of them.
// A new chapter adds one line here and inherits every end-to-end test.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "chapters/01_naive_attention/naive_attention.hpp"
#include "chapters/02_contiguous_kv_cache/contiguous_kv_cache.hpp"
#include "engine/run_cli.hpp"

namespace kvc::testing {

struct StrategyCase {
  std::string name;
  KVStrategyFactory make;
};

inline std::vector<StrategyCase> all_strategies() {
  return {
      {"ch01_naive",
       [](const ModelConfig& c, ThreadPool* pool) {
         return std::make_unique<ch01::NaiveAttention>(c, pool);
       }},
      {"ch02_contiguous",
       [](const ModelConfig& c, ThreadPool* pool) {
         return std::make_unique<ch02::ContiguousKVCache>(c, /*max_seqs=*/2, pool);
       }},
  };
}

}  // namespace kvc::testing
