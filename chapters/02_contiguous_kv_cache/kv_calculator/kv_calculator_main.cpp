// kv_calculator: how much KV cache a model needs, and how many requests fit.
//
//   kv_calculator --list-models
//   kv_calculator --model llama-3-8b --dtype fp16 --gpu H100-80G --context 8192
//   kv_calculator --model llama-2-7b --gpu A100-40G --lengths 100,2000,512,3484
#include <iostream>
#include <numeric>
#include <optional>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "chapters/02_contiguous_kv_cache/kv_calculator/fragmentation.hpp"
#include "chapters/02_contiguous_kv_cache/kv_calculator/kv_capacity.hpp"
#include "chapters/02_contiguous_kv_cache/kv_calculator/kv_presets.hpp"
#include "chapters/02_contiguous_kv_cache/kv_calculator/request_lengths.hpp"
#include "common/check.hpp"
#include "common/cli.hpp"
#include "common/report.hpp"

namespace {

void print_models() {
  kvc::Table table({"model", "layers", "q heads", "kv heads", "head_dim", "params", "max context",
                    "KV/token fp16"});
  for (const kvc::ArchitectureSpec& model : kvc::architecture_presets()) {
    const kvc::KvDtype fp16 = kvc::kv_dtype_for(model, "fp16");
    table.add_row({std::string(model.name), std::to_string(model.n_layers),
                   std::to_string(model.n_heads), std::to_string(model.n_kv_heads),
                   std::to_string(model.head_dim),
                   kvc::format_fixed(model.n_parameters / 1e9, 2) + "B",
                   kvc::format_thousands(model.max_context),
                   kvc::format_bytes(kvc::kv_bytes_per_token(model, fp16))});
  }
  table.print(std::cout);
  std::cout << "\ndtypes:";
  for (const char* name : kvc::kv_dtype_names()) std::cout << " " << name;
  std::cout << "\nGPUs:  ";
  for (const kvc::GpuSpec& gpu : kvc::gpu_presets()) std::cout << " " << gpu.name;
  std::cout << "\n";
}

void print_capacity(const kvc::CapacityQuery& query, const kvc::CapacityPlan& plan,
                    const std::string& gpu_label) {
  const kvc::ArchitectureSpec& m = query.model;
  std::cout << m.name << ": " << m.n_layers << " layers, " << m.n_heads << " query heads, "
            << m.n_kv_heads << " KV heads, head_dim " << m.head_dim << ", "
            << kvc::format_fixed(m.n_parameters / 1e9, 2) << "B params\n"
            << "on " << gpu_label << ", KV cache " << query.kv_dtype.name() << ", weights "
            << query.weight_dtype.name() << ", context " << kvc::format_thousands(query.context)
            << " tokens\n\n";

  const auto bytes_row = [](std::string label, std::int64_t bytes) {
    return std::vector<std::string>{std::move(label), kvc::format_thousands(bytes),
                                    kvc::format_bytes(bytes)};
  };
  kvc::Table table({"", "bytes", ""});
  table.add_row(bytes_row("KV per token", plan.kv_bytes_per_token));
  table.add_row(bytes_row("KV per request", plan.kv_bytes_per_request));
  table.add_row(bytes_row("GPU memory", plan.gpu_bytes));
  table.add_row(bytes_row("- weights", plan.weight_bytes));
  table.add_row(bytes_row("- reserve (" + kvc::format_percent(query.reserve_fraction) + ")",
                          plan.reserve_bytes));
  table.add_row(bytes_row("= KV budget", plan.kv_budget_bytes));
  table.add_row({"tokens that fit", kvc::format_thousands(plan.max_cached_tokens), ""});
  table.add_row({"requests that fit", kvc::format_thousands(plan.max_requests), ""});
  table.print(std::cout);
  if (plan.kv_budget_bytes == 0) {
    std::cout << "(the weights alone need more than the GPU has: nothing is left for the cache)\n";
  }

  std::cout << "\nBy KV dtype (same budget):\n";
  kvc::Table by_dtype({"KV dtype", "KV/token", "KV/request", "requests that fit"});
  for (const char* name : kvc::kv_dtype_names()) {
    kvc::CapacityQuery variant = query;
    variant.kv_dtype = kvc::kv_dtype_for(query.model, name);
    const kvc::CapacityPlan p = kvc::plan_capacity(variant);
    by_dtype.add_row({name, kvc::format_bytes(p.kv_bytes_per_token),
                      kvc::format_bytes(p.kv_bytes_per_request),
                      kvc::format_thousands(p.max_requests)});
  }
  by_dtype.print(std::cout);

  std::cout << "\nBy attention type (same GPU, dtypes and context; K/V projections resized):\n";
  kvc::Table by_heads({"attention", "KV heads", "KV/token", "KV/request", "requests that fit"});
  for (int kv_heads : kvc::attention_variants(query.model)) {
    kvc::CapacityQuery variant = query;
    variant.model = kvc::with_kv_heads(query.model, kv_heads);
    const kvc::CapacityPlan p = kvc::plan_capacity(variant);
    const std::string kind = kv_heads == query.model.n_heads ? "MHA"
                             : kv_heads == 1                 ? "MQA"
                                                             : "GQA-" + std::to_string(kv_heads);
    by_heads.add_row({kind, std::to_string(kv_heads), kvc::format_bytes(p.kv_bytes_per_token),
                      kvc::format_bytes(p.kv_bytes_per_request),
                      kvc::format_thousands(p.max_requests)});
  }
  by_heads.print(std::cout);
}

void print_fragmentation(const kvc::CapacityQuery& query, const std::vector<int>& lengths,
                         const kvc::FragmentationReport& report) {
  const std::int64_t total_tokens =
      std::accumulate(lengths.begin(), lengths.end(), std::int64_t{0});
  std::cout << "\nFragmentation: " << lengths.size() << " requests, "
            << kvc::format_thousands(total_tokens) << " tokens (mean "
            << kvc::format_thousands(total_tokens / static_cast<std::int64_t>(lengths.size()))
            << "), context " << kvc::format_thousands(query.context) << "\n";
  kvc::Table table({"allocation", "reserved", "used", "waste", "requests that fit"});
  const auto row = [](std::string name, const kvc::AllocationOutcome& outcome) {
    return std::vector<std::string>{std::move(name), kvc::format_bytes(outcome.reserved_bytes),
                                    kvc::format_bytes(outcome.used_bytes),
                                    kvc::format_percent(outcome.waste_fraction),
                                    kvc::format_thousands(outcome.requests_that_fit)};
  };
  table.add_row(row("max-length", report.max_length));
  table.add_row(row("exact", report.exact));
  table.print(std::cout);
  std::cout << "(requests that fit: the list repeated as a workload, admitted in order until the "
               "next one does not fit)\n";
}

// The smallest GPU worth planning for (about 1 MiB), and the most of it a reserve may take.
constexpr double kMinGpuGiB = 0.001;
constexpr double kMaxReserve = 0.99;

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "KV-cache capacity planning: bytes per token and per request, how many requests "
      "fit on a GPU, and what max-length pre-allocation wastes."};
  bool list_models = false;
  std::string model_name = "llama-3-8b";
  std::string kv_dtype_name = "fp16";
  std::string weight_dtype_name = "fp16";
  int block_size = kvc::kDefaultKvBlockSize;
  std::string gpu_name = "H100-80G";
  std::optional<double> gpu_gib;
  std::optional<int> context;
  std::optional<int> kv_heads;
  double reserve_fraction = 0;
  std::string lengths_text;
  std::string lengths_file;
  app.add_flag("--list-models", list_models, "Print the known models, dtypes and GPUs");
  app.add_option("--model", model_name, "Model architecture (see --list-models)")
      ->capture_default_str();
  app.add_option("--dtype", kv_dtype_name,
                 "KV cache format: fp32 fp16 bf16 int8 fp8 int4-token int4 (common/kv_dtype.hpp; "
                 "the quantized ones count their scales, as chapter 07's pool stores them)")
      ->capture_default_str();
  app.add_option("--block-size", block_size,
                 "Tokens per KV block (int4's per-channel key scales cover one block)")
      ->check(kvc::integer_in(1, kvc::kMaxInt))
      ->capture_default_str();
  app.add_option("--weight-dtype", weight_dtype_name, "Weight element type")->capture_default_str();
  app.add_option("--gpu", gpu_name, "GPU preset: A100-40G A100-80G H100-80G L4-24G RTX4090-24G")
      ->capture_default_str();
  app.add_option("--gpu-gib", gpu_gib, "GPU memory in GiB (instead of --gpu)")
      ->check(kvc::number_in(kMinGpuGiB, kvc::kMaxGpuGiB));
  app.add_option("--kv-heads", kv_heads,
                 "Override the model's KV heads: its query heads = MHA, 1 = MQA (ch03)")
      ->check(kvc::integer_in(1, kvc::kMaxInt));
  app.add_option("--context", context, "Tokens per request (default: the model's max context)")
      ->check(kvc::integer_in(1, kvc::kMaxInt));
  app.add_option("--reserve", reserve_fraction,
                 "Fraction of GPU memory kept for activations and workspace")
      ->check(kvc::number_in(0, kMaxReserve))
      ->capture_default_str();
  auto* lengths_option =
      app.add_option("--lengths", lengths_text, "Request lengths to compare, e.g. 100,2000,512");
  app.add_option("--lengths-file", lengths_file, "File of request lengths (whitespace/commas)")
      ->check(kvc::readable_file())
      ->excludes(lengths_option);

  return kvc::run_program(app, argc, argv, [&] {
    if (list_models) {
      print_models();
      return 0;
    }
    const kvc::ArchitectureSpec& model = kvc::find_architecture(model_name);
    kvc::CapacityQuery query{
        .model = model,
        .kv_dtype = kvc::kv_dtype_for(model, kv_dtype_name),
        .weight_dtype = kvc::kv_dtype_for(model, weight_dtype_name),
        .block_size = block_size,
        .gpu_memory_gib = 0,
        .context = 0,
        .reserve_fraction = reserve_fraction,
    };
    if (kv_heads) query.model = kvc::with_kv_heads(query.model, *kv_heads);
    query.context = context.value_or(query.model.max_context);
    std::string gpu_label;
    if (gpu_gib) {
      query.gpu_memory_gib = *gpu_gib;
      gpu_label = kvc::format_fixed(*gpu_gib, 2) + " GiB";
    } else {
      const kvc::GpuSpec& gpu = kvc::find_gpu(gpu_name);
      query.gpu_memory_gib = gpu.memory_gib;
      gpu_label = std::string(gpu.name) + " (" + kvc::format_fixed(gpu.memory_gib, 0) + " GiB)";
    }
    std::vector<int> lengths;
    if (!lengths_text.empty()) lengths = kvc::parse_request_lengths(lengths_text);
    if (!lengths_file.empty()) lengths = kvc::read_request_lengths_file(lengths_file);

    // Everything is computed (and validated) before anything is printed.
    const kvc::CapacityPlan plan = kvc::plan_capacity(query);
    std::optional<kvc::FragmentationReport> fragmentation;
    if (!lengths.empty()) {
      fragmentation = kvc::compare_allocations(lengths, query.context, plan.kv_bytes_per_token,
                                               plan.kv_budget_bytes);
    }
    print_capacity(query, plan, gpu_label);
    if (fragmentation) print_fragmentation(query, lengths, *fragmentation);
    return 0;
  });
}
