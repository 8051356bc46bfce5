// kvc_tour: every stage of the course on the same model and prompt, one table line each.
//
// By default the model is generated in memory (the `tour` preset: random but
// deterministic weights), so the tour runs on a fresh machine with nothing
// downloaded; --model/--tokenizer run it on a real checkpoint instead.
#include <cstdio>
#include <iostream>
#include <optional>

#include "chapters/04_paged_allocator/alone.hpp"
#include "chapters/04_paged_allocator/scheduler.hpp"
#include "chapters/stages.hpp"
#include "common/check.hpp"
#include "common/cli.hpp"
#include "common/report.hpp"
#include "common/thread_pool.hpp"
#include "engine/generate.hpp"
#include "tools/synthetic_model.hpp"

namespace {

struct TourOptions {
  std::string preset = "tour";
  std::string model_path;
  std::string tokenizer_path;
  std::string prompt = "Once upon a time";
  int steps = 256;
  float temperature = 1.0f;  // greedy decoding of random weights repeats one word forever
  unsigned long long seed = 42;
  int threads = 0;
};

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
  if (!o.model_path.empty()) {
    KVC_CHECK(!o.tokenizer_path.empty(), "--model needs --tokenizer too");
    model.emplace(load_checkpoint(o.model_path));
    tokenizer.emplace(o.tokenizer_path, model->config.vocab_size);
    model_name = o.model_path;
  } else {
    const SyntheticPreset& preset = find_synthetic_preset(o.preset);
    model.emplace(make_synthetic_model(preset.config, /*seed=*/42));
    tokenizer.emplace(make_synthetic_tokenizer(preset.config.vocab_size));
    model_name = "generated preset '" + o.preset + "' (random weights, seed 42)";
  }
  const ModelConfig& c = model->config;
  ThreadPool pool(o.threads);
  CpuEngine engine(*model, &pool);
  std::printf("KV Cache Course tour: %s\n", model_name.c_str());
  std::printf("  %s, %s params\n", describe(c).c_str(), format_count(c.num_parameters()).c_str());
  std::printf("  prompt \"%s\", %d steps, temperature %.2f, seed %llu, %d threads\n\n",
              o.prompt.c_str(), o.steps, o.temperature, o.seed, pool.num_threads());

  Table table({"stage", "tok/s", "decode ms/tok (first 10%)", "decode ms/tok (last 10%)",
               "KV bytes held", "same tokens as previous"});
  std::vector<int> previous_tokens;
  std::string text;
  std::size_t contiguous_bytes = 0;
  for (const Stage& stage : course_stages()) {
    auto kv = stage.make(c, engine.context());
    GenerationOptions options{o.prompt, o.steps, {o.temperature, 0.9f, o.seed}};
    const GenerationResult r = generate(engine, *tokenizer, *kv, options);
    const std::string same =
        previous_tokens.empty() ? "-" : (r.tokens == previous_tokens ? "yes" : "NO");
    table.add_row({stage.name, format_fixed(r.tokens_per_second(), 1),
                   format_fixed(r.decode_ms_at_start(), 3), format_fixed(r.decode_ms_at_end(), 3),
                   format_bytes(static_cast<double>(r.kv_bytes)), same});
    previous_tokens = r.tokens;
    text = r.text;
    if (stage.name == "02_contiguous_kv_cache") contiguous_bytes = r.kv_bytes;
  }
  table.print(std::cout);
  std::printf("\nText (every stage printed the same):\n%s\n", text.c_str());
  tour_serving(engine, *tokenizer, o, contiguous_bytes);
  std::printf(
      "\nNext: the real TinyStories model, byte-for-byte like llama2.c's run:\n"
      "  build/bin/ch02_contiguous_kv_cache models/stories260K.bin "
      "-z models/tok512.bin -t 0 -i \"Once upon a time\"\n"
      "Then read chapters/01_naive_attention/README.md.\n");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app("KV Cache Course tour: every stage on the same model and prompt");
  TourOptions o;
  app.add_option("--preset", o.preset, "generated model preset (kvc_make_model --list)")
      ->capture_default_str();
  app.add_option("--model", o.model_path, "a llama2.c checkpoint instead of a generated model");
  app.add_option("--tokenizer", o.tokenizer_path, "its tokenizer.bin");
  app.add_option("--prompt", o.prompt, "prompt")->capture_default_str();
  app.add_option("-n,--steps", o.steps, "positions to generate, prompt included")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("-t,--temperature", o.temperature, "sampling temperature; 0 = greedy")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  app.add_option("-s,--seed", o.seed, "sampling seed (every stage uses the same one)")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--threads", o.threads, "CPU threads; 0 = all cores")
      ->check(CLI::NonNegativeNumber);
  return kvc::run_program(app, argc, argv, [&] { return run_tour(o); });
}
