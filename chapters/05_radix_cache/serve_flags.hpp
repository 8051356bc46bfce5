// Chapter 05: the flags every program that serves a workload shares
// (ch05_prefix_cache, ch06_pressure): its size, its sampling, the pool's
// block size and batch, how often to repeat each run, and where to run it.
#pragma once

#include <CLI/CLI.hpp>
#include <string>

#include "chapters/05_radix_cache/workloads.hpp"

namespace kvc::ch05 {

struct ServeFlags {
  int requests = 100;
  int turns = 4;
  int max_new_tokens = 32;
  float temperature = 0.0f;
  long long seed = 42;
  int block_size = 16;
  int max_running = 64;
  int repeats = 3;
  std::string device = "cpu";
  int threads = 0;

  // The workload of these flags (sampling with top-p 0.9).
  WorkloadOptions workload_options(Workload workload) const;
};

// --requests, --turns, --max-new-tokens, -t/--temperature, -s/--seed,
// --block-size, --max-running, --repeats, --device and --threads, each
// defaulting to the value `flags` holds.
void add_serve_flags(CLI::App& app, ServeFlags& flags);

}  // namespace kvc::ch05
