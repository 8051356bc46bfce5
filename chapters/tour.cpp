// kvc_tour: every stage of the course on the same model and prompt, one table line each.
//
// By default the tour runs the real TinyStories model committed in models/
// (stories260K with its 512-token vocabulary), so the first thing a newcomer
// reads is a story, and each stage's speed is the median of a few runs on one
// thread (the machine's noise moves single runs by far more than the stages
// differ). --preset runs a generated model of another shape instead (random
// but deterministic weights: the timings are real, the text is not);
// --model/--tokenizer run any llama2.c checkpoint.
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <optional>

#include "chapters/04_paged_allocator/alone.hpp"
#include "chapters/04_paged_allocator/scheduler.hpp"
#include "chapters/stages.hpp"
#include "common/check.hpp"
#include "common/cli.hpp"
#include "common/report.hpp"
#include "common/sampler.hpp"
#include "common/thread_pool.hpp"
#include "engine/generate.hpp"
#include "tools/synthetic_model.hpp"

namespace {

struct TourOptions {
  std::string preset;  // empty: the real model below
  std::string model_path = KVC_MODELS_DIR "/stories260K.bin";
  std::string tokenizer_path = KVC_MODELS_DIR "/tok512.bin";
  std::string prompt = "Once upon a time";
  int steps = 256;
  float temperature = 0.8f;  // sampled, so the eight served completions differ from each other
  unsigned long long seed = 42;
  int threads = 1;
  int repeats = 3;
};

// The run whose tokens/s is the median of `runs`: the one a reader reproduces most often.
const kvc::GenerationResult& median_run(std::vector<kvc::GenerationResult>& runs) {
  std::ranges::sort(runs, {}, &kvc::GenerationResult::tokens_per_second);
  return runs[runs.size() / 2];
}

// Chapter 04's point: many completions from one paged pool at once, against
// the same completions one at a time on chapter 02's cache.
void tour_serving(kvc::Engine& engine, const kvc::Tokenizer& tokenizer, const TourOptions& o,
                  std::size_t contiguous_bytes_per_sequence) {
  using namespace kvc;
  constexpr int kCompletions = 8, kBlockSize = 16;
  const std::vector<int> prompt = tokenizer.encode(o.prompt, true, false);
  if (o.steps <= static_cast<int>(prompt.size())) return;  // nothing to sample
  const std::vector<ch04::Request> requests = {{prompt,
                                                o.steps - static_cast<int>(prompt.size()) + 1,
                                                kCompletions,
                                                {o.temperature, 0.9f, o.seed}}};
  const int num_blocks = kCompletions * ch04::blocks_needed(o.steps, kBlockSize);
  auto kv = ch04::make_paged_cache(engine.config(), engine.context(), num_blocks, kBlockSize);
  const ch04::ServeResult served = ch04::serve(engine, *kv, requests);

  const ch04::AloneRun alone =
      ch04::generate_each_alone(engine, tokenizer, {o.prompt}, requests, served.completions);
  const bool same = ch04::differing_completions(alone, served.completions).empty();
  const double alone_ms = alone.wall_ms;

  const double block_bytes = static_cast<double>(kv->layout().kv_bytes_per_block());
  std::printf(
      "\n%d completions of the prompt at once from one paged pool (chapter 04, ch04_serve):\n"
      "  batched %.1f tok/s vs one at a time %.1f tok/s (%.2fx); same tokens: %s\n"
      "  KV held at the peak %s vs %s reserved by chapter 02 for %d sequences\n",
      kCompletions, served.sampled_tokens_per_second(), 1000.0 * served.tokens_sampled / alone_ms,
      alone_ms / served.wall_ms, same ? "yes" : "NO",
      format_bytes(served.peak_blocks_used * block_bytes).c_str(),
      format_bytes(static_cast<double>(contiguous_bytes_per_sequence) * kCompletions).c_str(),
      kCompletions);
}

int run_tour(const TourOptions& o) {
  using namespace kvc;
  std::optional<Model> model;
  std::optional<Tokenizer> tokenizer;
  std::string model_name;
  if (o.preset.empty()) {
    model.emplace(load_checkpoint(o.model_path));
    tokenizer.emplace(o.tokenizer_path, model->config.vocab_size);
    model_name = std::filesystem::path(o.model_path).filename().string();
  } else {
    const SyntheticPreset& preset = find_synthetic_preset(o.preset);
    model.emplace(make_synthetic_model(preset.config, /*seed=*/42));
    tokenizer.emplace(make_synthetic_tokenizer(preset.config.vocab_size));
    model_name = "generated preset '" + o.preset + "' (random weights, seed 42: timings, not text)";
  }
  const ModelConfig& c = model->config;
  ThreadPool pool(o.threads);
  CpuEngine engine(*model, &pool);
  std::printf("KV Cache Course tour: %s\n", model_name.c_str());
  std::printf("  %s, %s params\n", describe(c).c_str(), format_count(c.num_parameters()).c_str());
  std::printf(
      "  prompt \"%s\", %d steps, temperature %.2f, seed %llu, %d thread(s), median of %d "
      "runs\n\n",
      o.prompt.c_str(), o.steps, o.temperature, o.seed, pool.num_threads(), o.repeats);

  Table table({"stage", "tok/s", "decode ms/tok (first 10%)", "decode ms/tok (last 10%)",
               "KV bytes held", "same tokens as previous"});
  std::vector<int> previous_tokens;
  std::string text;
  std::size_t contiguous_bytes = 0;
  for (const Stage& stage : course_stages()) {
    std::vector<GenerationResult> runs;
    for (int run = 0; run < o.repeats; ++run) {
      auto kv = stage.make(c, engine.context());
      GenerationOptions options{o.prompt, o.steps, {o.temperature, 0.9f, o.seed}};
      runs.push_back(generate(engine, *tokenizer, *kv, options));
    }
    const GenerationResult& r = median_run(runs);
    std::string same = previous_tokens.empty() ? "-" : (r.tokens == previous_tokens ? "yes" : "NO");
    if (!stage.exact && same == "NO") {
      // A lossy cache may pick another token somewhere: say where, not "NO".
      const auto [mine, theirs] = std::mismatch(r.tokens.begin(), r.tokens.end(),
                                                previous_tokens.begin(), previous_tokens.end());
      same = "lossy: first " + std::to_string(mine - r.tokens.begin()) + " of " +
             std::to_string(previous_tokens.size());
    }
    table.add_row({stage.name, format_fixed(r.tokens_per_second(), 1),
                   format_fixed(r.decode_ms_at_start(), 3), format_fixed(r.decode_ms_at_end(), 3),
                   format_bytes(static_cast<double>(r.kv_bytes)), same});
    if (!stage.exact) continue;  // the exact stages' tokens and story are the reference
    previous_tokens = r.tokens;
    text = r.text;
    if (stage.name == "02_contiguous_kv_cache") contiguous_bytes = r.kv_bytes;
  }
  std::printf("%s\n\n", text.c_str());
  std::printf(
      "Every exact stage printed that text (a lossy one: as far as its last column says);\nwhat "
      "each one cost:\n");
  table.print(std::cout);
  tour_serving(engine, *tokenizer, o, contiguous_bytes);
  std::printf(
      "\nNext: one chapter's demo, byte-for-byte like llama2.c's run:\n"
      "  build/bin/ch02_contiguous_kv_cache models/stories260K.bin "
      "-z models/tok512.bin -t 0 -i \"Once upon a time\"\n"
      "Then read chapters/01_naive_attention/README.md.\n");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app("KV Cache Course tour: every stage on the same model and prompt");
  TourOptions o;
  auto* model = app.add_option("--model", o.model_path, "llama2.c checkpoint")
                    ->check(kvc::readable_file())
                    ->capture_default_str();
  app.add_option("--tokenizer", o.tokenizer_path, "its tokenizer.bin")
      ->check(kvc::readable_file())
      ->capture_default_str();
  app.add_option("--preset", o.preset,
                 "a generated model of this shape instead (kvc_make_model --list): "
                 "real timings, random text")
      ->excludes(model);
  app.add_option("--prompt", o.prompt, "prompt")->capture_default_str();
  app.add_option("-n,--steps", o.steps, "positions to generate, prompt included")
      ->check(kvc::integer_in(1, kvc::kMaxInt))
      ->capture_default_str();
  app.add_option("-t,--temperature", o.temperature,
                 "sampling temperature; 0 = greedy (so is anything below " +
                     kvc::format_general(kvc::kGreedyBelowTemperature) + ")")
      ->check(kvc::number_in(0, kvc::kMaxTemperature))
      ->capture_default_str();
  app.add_option("-s,--seed", o.seed, "sampling seed (every stage uses the same one)")
      ->check(kvc::integer_in(1, kvc::kMaxSeed))
      ->capture_default_str();
  kvc::add_threads_option(app, o.threads);
  app.add_option("--repeats", o.repeats, "runs per stage; the table shows the median")
      ->check(kvc::integer_in(1, 100))
      ->capture_default_str();
  return kvc::run_program(app, argc, argv, [&] { return run_tour(o); });
}
