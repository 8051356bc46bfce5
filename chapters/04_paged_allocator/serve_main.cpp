// ch04_serve: many prompts at once from one paged pool (continuous batching).
//
//   ch04_serve model.bin -z tokenizer.bin [-i prompt]... [--prompts-file F]
//              [--max-new-tokens N] [--completions N] [--kv-blocks N] [--block-size N]
//              [--max-running N] [--arrival-every K] [--kv-dtype F] [--kernel K]
//              [--trace] [--compare]
//
// Prints every completion, then what the scheduler did. --compare also runs
// each completion alone on chapter 02's cache: the tokens must be identical,
// and the two throughputs are printed side by side.
//
// --kernel loop|fast|split picks the fp32 pool's decode
// attention, as in ch04_paged_allocator; --compare runs the same kernel alone.
//
// NEW (ch07): --kv-dtype stores the pool in one of chapter 07's formats
// (fp16, bf16, int8, fp8, int4-token, int4) through ch07::make_paged_pool, a
// ch04::PagedKVStrategy the scheduler drives like its own. Only this program
// links chapter 07; chapter 04's library does not know it exists.
#include <CLI/CLI.hpp>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <iostream>

#include "chapters/04_paged_allocator/alone.hpp"
#include "chapters/04_paged_allocator/prompts_file.hpp"
#include "chapters/04_paged_allocator/scheduler.hpp"
#include "chapters/07_quantization/quantized_paged_cache.hpp"
#include "common/checkpoint.hpp"
#include "common/cli.hpp"
#include "common/kv_dtype.hpp"
#include "common/output_file.hpp"
#include "common/report.hpp"
#include "common/sampler.hpp"
#include "common/thread_pool.hpp"
#include "common/tokenizer.hpp"
#include "engine/generate.hpp"

namespace kvc::ch04 {
namespace {

struct ServeOptions {
  std::string checkpoint;
  std::string tokenizer = "tokenizer.bin";
  std::vector<std::string> prompts;
  std::string prompts_file;
  int max_new_tokens = 128;
  int completions = 1;
  float temperature = 1.0f;
  float top_p = 0.9f;
  long long seed = 42;
  int block_size = 16;
  int kv_blocks = 0;
  int max_running = 64;
  int arrival_every = 0;
  std::string kv_dtype = "fp32";
  std::string kernel = "loop";
  std::string device = "cpu";
  int threads = 0;
  bool trace = false;
  bool compare = false;
  std::string json_path;
};

// Story openings for the TinyStories models when no prompt is given.
const std::vector<std::string> kDefaultPrompts = {
    "Once upon a time",   "Lily and Tom went to the beach",
    "The little dog",     "One day, a girl",
    "Sam had a red ball", "The sun was hot and",
    "In a small house,",  "Max the cat wanted",
};

std::string list(const std::vector<int>& ids) {
  std::string out;
  for (int id : ids) out += (out.empty() ? "" : " ") + std::to_string(id);
  return "[" + out + "]";
}

void print_trace(const StepRecord& s, int pool_blocks) {
  std::printf("step %4d: running %3d, batch %4d tokens, blocks %4d/%d", s.step, s.running,
              s.batch_tokens, s.blocks_used, pool_blocks);
  if (!s.joined.empty()) std::printf(", joined %s", list(s.joined).c_str());
  if (!s.preempted.empty()) std::printf(", preempted %s", list(s.preempted).c_str());
  if (!s.finished.empty()) std::printf(", finished %s", list(s.finished).c_str());
  std::printf("\n");
}

// Default pool: every completion at its longest at once, so nothing waits.
// Counted in 64 bits: thousands of prompts with many completions must not wrap.
int default_pool_blocks(const std::vector<Request>& requests, int block_size) {
  std::int64_t blocks = 0;
  for (const Request& r : requests) {
    blocks += std::int64_t{r.num_completions} * blocks_needed(r.max_positions(), block_size);
  }
  KVC_CHECK(blocks <= kMaxPoolBlocks, "holding every completion at once needs ", blocks,
            " blocks, more than ", kMaxPoolBlocks, "; give a smaller pool with --kv-blocks");
  return static_cast<int>(blocks);
}

// fp32: chapter 04's own pool (the default, unchanged) with the chosen
// kernel; any other format: chapter 07's quantized pool with the same blocks.
std::unique_ptr<PagedKVStrategy> make_pool(const ModelConfig& config, const DeviceContext& device,
                                           const KvDtype& dtype, int kv_blocks, int block_size,
                                           ch02::AttentionKernel kernel) {
  if (dtype.format == NumberFormat::fp32) {
    return make_paged_cache(config, device, kv_blocks, block_size, kernel);
  }
  return ch07::make_paged_pool(config, device, dtype, kv_blocks, block_size);
}

int serve_main(const ServeOptions& o) {
  check_outputs({o.json_path}, {o.checkpoint, o.tokenizer, o.prompts_file});
  const Model model = load_checkpoint(o.checkpoint);
  const KvDtype kv_dtype = parse_kv_dtype(o.kv_dtype, model.config.head_dim());
  const auto kernel = ch02::parse_attention_kernel(o.kernel);
  KVC_CHECK(kernel == ch02::AttentionKernel::kLoop || kv_dtype.format == NumberFormat::fp32,
            "--kernel ", o.kernel, " runs over the fp32 pool; chapter 07's --kv-dtype ",
            kv_dtype.name(), " pool has its own kernel");
  KVC_CHECK(!o.compare || kv_dtype.format == NumberFormat::fp32,
            "--compare checks the tokens against chapter 02's fp32 cache, so it needs "
            "--kv-dtype fp32 (a quantized cache changes them on purpose)");
  const Tokenizer tokenizer(o.tokenizer, model.config.vocab_size);
  ThreadPool pool(o.threads);
  const Device device = parse_device(o.device);
  ch07::check_device_runs(device, kv_dtype);  // before a GPU is started for nothing
  auto engine = make_engine(model, device, &pool);

  std::vector<std::string> prompts = o.prompts;
  if (!o.prompts_file.empty()) {
    for (std::string& line : read_prompts_file(o.prompts_file)) prompts.push_back(std::move(line));
  }
  if (prompts.empty()) prompts = kDefaultPrompts;
  std::vector<Request> requests;
  for (std::size_t r = 0; r < prompts.size(); ++r) {
    const SamplerOptions sampling{o.temperature, o.top_p,
                                  static_cast<std::uint64_t>(o.seed) + 1000 * r};
    const std::int64_t arrival = static_cast<std::int64_t>(r) * o.arrival_every;
    KVC_CHECK(arrival <= kMaxInt, "request ", r, " would arrive at step ", arrival,
              ": use a smaller --arrival-every");
    requests.push_back({tokenizer.encode(prompts[r], true, false), o.max_new_tokens, o.completions,
                        sampling, static_cast<int>(arrival)});
  }
  // Checked before the pool is sized from them.
  validate_requests(requests, model.config, o.max_running);
  const int kv_blocks = o.kv_blocks > 0 ? o.kv_blocks : default_pool_blocks(requests, o.block_size);
  auto kv = make_pool(model.config, engine->context(), kv_dtype, kv_blocks, o.block_size, kernel);
  const KvPoolShape pool_shape{model.config.n_layers, model.config.n_kv_heads,
                               model.config.head_dim(), o.block_size};
  SchedulerOptions options;
  options.max_running = o.max_running;
  if (o.trace) options.on_step = [&](const StepRecord& s) { print_trace(s, kv_blocks); };
  const ServeResult served = serve(*engine, *kv, requests, options);

  for (const Completion& c : served.completions) {
    std::printf("--- request %d, completion %d (%s, preempted %d times)\n%s\n", c.request, c.index,
                finish_reason_name(c.finish_reason), c.preemptions,
                text_of(tokenizer, c.tokens).c_str());
  }
  const double pool_fraction = static_cast<double>(served.peak_blocks_used) / kv_blocks;
  Table table({"requests", "completions", "steps", "tokens sampled", "tokens fed", "preemptions",
               "peak running", "peak blocks used", "tok/s sampled"});
  table.add_row({std::to_string(requests.size()), std::to_string(served.completions.size()),
                 std::to_string(served.steps), format_thousands(served.tokens_sampled),
                 format_thousands(served.tokens_fed), std::to_string(served.preemptions),
                 std::to_string(served.peak_running),
                 std::to_string(served.peak_blocks_used) + " of " + std::to_string(kv_blocks) +
                     " (" + format_percent(pool_fraction) + ")",
                 format_fixed(served.sampled_tokens_per_second(), 1)});
  std::cout << "\n";
  table.print(std::cout);

  JsonObject json;
  json.add("device", o.device)
      .add("kv_dtype", kv_dtype.name())
      .add("kernel", o.kernel)
      .add("kv_bytes_per_block", static_cast<long long>(kv_bytes_per_block(kv_dtype, pool_shape)))
      .add("requests", requests.size())
      .add("completions", served.completions.size())
      .add("block_size", o.block_size)
      .add("kv_blocks", kv_blocks)
      .add("steps", served.steps)
      .add("tokens_sampled", served.tokens_sampled)
      .add("tokens_fed", served.tokens_fed)
      .add("preemptions", served.preemptions)
      .add("peak_running", served.peak_running)
      .add("peak_blocks_used", served.peak_blocks_used)
      .add("batched_ms", served.wall_ms)
      .add("batched_tokens_per_second", served.sampled_tokens_per_second());

  bool same = true;
  if (o.compare) {
    const AloneRun alone =
        generate_each_alone(*engine, tokenizer, prompts, requests, served.completions, kernel);
    for (int i : differing_completions(alone, served.completions)) {
      std::fprintf(stderr, "request %d completion %d: tokens differ from chapter 02 alone\n",
                   served.completions[i].request, served.completions[i].index);
      same = false;
    }
    const double alone_ms = alone.wall_ms;
    const double alone_tps = 1000.0 * served.tokens_sampled / alone_ms;
    std::printf("\none at a time on chapter 02's cache: %.1f tok/s; batched: %.1f tok/s (%.2fx)\n",
                alone_tps, served.sampled_tokens_per_second(), alone_ms / served.wall_ms);
    std::printf("tokens identical to each completion alone: %s\n", same ? "yes" : "NO");
    json.add("alone_ms", alone_ms)
        .add("alone_tokens_per_second", alone_tps)
        .add("speedup", alone_ms / served.wall_ms)
        .add("identical_to_alone", same);
  }
  if (!o.json_path.empty()) json.save(o.json_path);
  return same ? 0 : 1;
}

}  // namespace
}  // namespace kvc::ch04

int main(int argc, char** argv) {
  CLI::App app("Chapter 04: many prompts at once from one paged KV pool (continuous batching)");
  kvc::ch04::ServeOptions o;
  kvc::add_model_options(app, o.checkpoint, o.tokenizer);
  app.add_option("-i", o.prompts, "a prompt (repeat for more; default: 8 story openings)");
  app.add_option("--prompts-file", o.prompts_file, "one prompt per line")
      ->check(kvc::readable_file());
  app.add_option("--max-new-tokens", o.max_new_tokens, "tokens to sample per completion")
      ->check(kvc::integer_in(1, 1 << 20))
      ->capture_default_str();
  app.add_option("--completions", o.completions,
                 "completions per prompt (parallel sampling: they share the prompt's blocks)")
      ->check(kvc::integer_in(1, 256))
      ->capture_default_str();
  app.add_option("-t,--temperature", o.temperature,
                 "temperature; 0 = greedy (so is anything below " +
                     kvc::format_general(kvc::kGreedyBelowTemperature) + ")")
      ->check(kvc::number_in(0, kvc::kMaxTemperature))
      ->capture_default_str();
  app.add_option("-p,--top-p", o.top_p, "top-p in [0,1]; 0 or 1 = off")
      ->check(kvc::number_in(0, 1))
      ->capture_default_str();
  app.add_option("-s,--seed", o.seed,
                 "seed; request r, completion i samples with seed + 1000 r + i")
      ->check(kvc::integer_in(1, kvc::kMaxSeed))
      ->capture_default_str();
  app.add_option("--block-size", o.block_size, "tokens per KV block (1-256)")
      ->check(kvc::integer_in(1, 256))
      ->capture_default_str();
  app.add_option("--kv-blocks", o.kv_blocks,
                 "blocks in the pool (default: every completion at its longest at once)")
      ->check(kvc::integer_in(1, kvc::ch04::kMaxPoolBlocks));
  app.add_option("--max-running", o.max_running, "sequences in one batch, at most")
      ->check(kvc::integer_in(1, 1 << 20))
      ->capture_default_str();
  app.add_option("--arrival-every", o.arrival_every,
                 "request r arrives at step r * K (0: all at once)")
      ->check(kvc::integer_in(0, 1 << 20))
      ->capture_default_str();
  app.add_option("--kv-dtype", o.kv_dtype,
                 "KV pool format: fp32 (chapter 04's pool), or chapter 07's fp16 bf16 int8 fp8 "
                 "int4-token int4 (CPU only)")
      ->capture_default_str();
  kvc::ch02::add_attention_kernel_option(app, o.kernel);
  app.add_option("--device", o.device, "where the model runs")
      ->check(CLI::IsMember({"cpu", "cuda"}))
      ->capture_default_str();
  kvc::add_threads_option(app, o.threads);
  app.add_flag("--trace", o.trace, "print one line per scheduler step");
  app.add_flag(
      "--compare", o.compare,
      "also run each completion alone on chapter 02's cache: same tokens? how much faster?");
  app.add_option("--json", o.json_path, "write the run's numbers as JSON to this file");
  return kvc::run_program(app, argc, argv, [&] { return kvc::ch04::serve_main(o); });
}
