// ch04_fragmentation: KV memory reserved vs used, and concurrent requests in
// one memory budget, for max-length pre-allocation (chapter 02) vs paging at
// several block sizes (this chapter), on one workload of request lengths.
//
//   build/bin/ch04_fragmentation                                  # synthetic workload
//   build/bin/ch04_fragmentation --lengths-file lengths.txt --model llama-2-7b
#include <CLI/CLI.hpp>
#include <iostream>
#include <numeric>
#include <optional>

#include "chapters/02_contiguous_kv_cache/kv_calculator/fragmentation.hpp"
#include "chapters/02_contiguous_kv_cache/kv_calculator/kv_capacity.hpp"
#include "chapters/02_contiguous_kv_cache/kv_calculator/request_lengths.hpp"
#include "chapters/04_paged_allocator/workload.hpp"
#include "common/check.hpp"
#include "common/cli.hpp"
#include "common/report.hpp"

// A synthetic workload this size already takes seconds; more is a typo.
constexpr int kMaxRequests = 10'000'000;

int main(int argc, char** argv) {
  CLI::App app("Chapter 04: what pre-allocation wastes and what paging recovers");
  std::string model_name = "llama-3-8b", dtype_name = "fp16", gpu_name = "H100-80G";
  std::optional<int> context;
  int requests = 1000;
  std::uint64_t seed = 1;
  std::string lengths_file;
  std::vector<int> block_sizes = {1, 8, 16, 32, 128};
  app.add_option("--model", model_name, "model architecture (kv_calculator --list-models)")
      ->capture_default_str();
  app.add_option("--dtype", dtype_name, "KV cache element type")->capture_default_str();
  app.add_option("--gpu", gpu_name, "GPU preset: its memory minus fp16 weights is the budget")
      ->capture_default_str();
  app.add_option("--context", context, "max tokens per request (default: the model's)")
      ->check(kvc::integer_in(1, kvc::kMaxInt));
  app.add_option("--requests", requests, "synthetic workload size")
      ->check(kvc::integer_in(1, kMaxRequests))
      ->capture_default_str();
  app.add_option("--seed", seed, "synthetic workload seed")
      ->check(kvc::integer_in(0, kvc::kMaxSeed))
      ->capture_default_str();
  app.add_option("--lengths-file", lengths_file, "request lengths instead of the synthetic ones")
      ->check(kvc::readable_file());
  app.add_option("--block-sizes", block_sizes, "paging block sizes to compare")
      ->check(kvc::integer_in(1, 256))
      ->capture_default_str();

  return kvc::run_program(app, argc, argv, [&] {
    const kvc::ArchitectureSpec& model = kvc::find_architecture(model_name);
    kvc::CapacityQuery query{.model = model,
                             .kv_dtype = kvc::kv_dtype_for(model, dtype_name),
                             .weight_dtype = kvc::kv_dtype_for(model, "fp16"),
                             .gpu_memory_gib = kvc::find_gpu(gpu_name).memory_gib};
    query.context = context.value_or(query.model.max_context);
    const kvc::CapacityPlan plan = kvc::plan_capacity(query);
    const std::vector<int> lengths =
        lengths_file.empty() ? kvc::ch04::synthetic_request_lengths(requests, query.context, seed)
                             : kvc::read_request_lengths_file(lengths_file);
    for (int length : lengths) {
      KVC_CHECK(length <= query.context, "request length ", length, " exceeds the context of ",
                query.context);
    }
    const std::int64_t total = std::accumulate(lengths.begin(), lengths.end(), std::int64_t{0});
    std::cout << query.model.name << ", KV " << query.kv_dtype.name() << " ("
              << kvc::format_bytes(plan.kv_bytes_per_token) << "/token), " << gpu_name
              << ": KV budget " << kvc::format_bytes(plan.kv_budget_bytes) << "\n"
              << lengths.size() << " requests, mean "
              << kvc::format_thousands(total / static_cast<std::int64_t>(lengths.size()))
              << " tokens, context " << kvc::format_thousands(query.context) << "\n\n";

    kvc::Table table(
        {"allocation", "unit (tokens)", "reserved", "used", "utilisation", "requests that fit"});
    auto add = [&](const std::string& name, int unit) {
      const kvc::AllocationOutcome o =
          kvc::allocate_in_units(lengths, unit, plan.kv_bytes_per_token, plan.kv_budget_bytes);
      table.add_row({name, kvc::format_thousands(unit), kvc::format_bytes(o.reserved_bytes),
                     kvc::format_bytes(o.used_bytes), kvc::format_percent(1 - o.waste_fraction),
                     kvc::format_thousands(o.requests_that_fit)});
    };
    add("max-length (ch02)", query.context);
    for (int block_size : block_sizes)
      add("paged, block " + std::to_string(block_size), block_size);
    table.print(std::cout);
    std::cout << "(requests that fit: the workload admitted in order until the next request "
                 "does not fit the budget)\n";
    return 0;
  });
}
