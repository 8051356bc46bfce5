#include "chapters/05_radix_cache/serve_flags.hpp"

#include <cstdint>

#include "common/cli.hpp"

namespace kvc::ch05 {

WorkloadOptions ServeFlags::workload_options(Workload workload) const {
  WorkloadOptions w;
  w.workload = workload;
  w.requests = requests;
  w.turns = turns;
  w.max_new_tokens = max_new_tokens;
  w.sampling = SamplerOptions{temperature, 0.9f, static_cast<std::uint64_t>(seed)};
  return w;
}

void add_serve_flags(CLI::App& app, ServeFlags& flags) {
  app.add_option("--requests", flags.requests, "requests (chat, idle-chat: sessions x turns)")
      ->check(integer_in(1, 100000))
      ->capture_default_str();
  app.add_option("--turns", flags.turns, "chat, idle-chat: turns per session")
      ->check(integer_in(1, 64))
      ->capture_default_str();
  app.add_option("--max-new-tokens", flags.max_new_tokens, "tokens to sample per request")
      ->check(integer_in(1, 1 << 20))
      ->capture_default_str();
  app.add_option("-t,--temperature", flags.temperature, "temperature; 0 = greedy")
      ->check(number_in(0, kMaxTemperature))
      ->capture_default_str();
  app.add_option("-s,--seed", flags.seed, "seed; request r samples with seed + 1000 r")
      ->check(integer_in(1, kMaxSeed))
      ->capture_default_str();
  app.add_option("--block-size", flags.block_size, "tokens per KV block (1-256)")
      ->check(integer_in(1, 256))
      ->capture_default_str();
  app.add_option("--max-running", flags.max_running, "sequences in one batch, at most")
      ->check(integer_in(1, 1 << 20))
      ->capture_default_str();
  app.add_option("--repeats", flags.repeats, "runs of each row; a row is the median by throughput")
      ->check(integer_in(1, 100))
      ->capture_default_str();
  app.add_option("--device", flags.device, "where the model runs")
      ->check(CLI::IsMember({"cpu", "cuda"}))
      ->capture_default_str();
  add_threads_option(app, flags.threads);
}

}  // namespace kvc::ch05
