// kvc_convert_gqa: convert a checkpoint between MHA, GQA and MQA, or measure
// what each KV-head count costs in quality.
//
//   kvc_convert_gqa --kv-heads N in.bin out.bin [--format legacy|v1]
//   kvc_convert_gqa --evaluate in.bin -z tok512.bin [--text FILE ...] [--prompt TEXT ...]
//
// --kv-heads is the number of KV heads of the output (= the number of
// query-head groups; --groups is its alias). --evaluate converts the model to
// every valid count in memory and prints one table: KV bytes per token,
// perplexity on the texts (teacher-forced; default: the reference stories
// beside the real model), and how often greedy decoding picks the original
// model's tokens.
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>

#include "chapters/02_contiguous_kv_cache/contiguous_kv_cache.hpp"
#include "chapters/03_gqa/gqa_convert.hpp"
#include "chapters/03_gqa/gqa_kv_cache.hpp"
#include "common/check.hpp"
#include "common/cli.hpp"
#include "common/output_file.hpp"
#include "common/report.hpp"
#include "common/thread_pool.hpp"
#include "engine/generate.hpp"
#include "engine/perplexity.hpp"

namespace {

using namespace kvc;

struct Options {
  std::vector<std::string> checkpoints;  // in.bin [out.bin]
  int kv_heads = 0;
  std::string format = "legacy";
  bool evaluate = false;
  std::string tokenizer_path;
  std::vector<std::string> text_paths;
  std::vector<std::string> prompts = {"Once upon a time", "Lily and Tom went to the beach",
                                      "One day", "The cat"};
  int steps = 200;
  int threads = 0;
};

// How a conversion from `from` to `to` KV heads makes the new heads.
std::string made_by(int from, int to) {
  if (to == from) return "original";
  return to % from == 0 ? "un-shared (copies)" : "mean-pooled";
}

// fp32 K and V of every layer for one token.
std::size_t kv_bytes_per_token(const ModelConfig& c, int kv_heads) {
  return ch02::kv_bytes_per_token(c.n_layers, kv_heads, c.head_dim(), sizeof(float));
}

int convert(const Options& o) {
  KVC_CHECK(o.checkpoints.size() == 2, "converting needs in.bin and out.bin");
  KVC_CHECK(o.kv_heads > 0, "converting needs --kv-heads N (or --evaluate)");
  check_readable_file(o.checkpoints[0]);
  check_outputs({o.checkpoints[1]}, {o.checkpoints[0]});
  const Model in = load_checkpoint(o.checkpoints[0]);
  const Model out = ch03::convert_kv_heads(in, o.kv_heads);
  save_checkpoint(o.checkpoints[1], out,
                  o.format == "v1" ? CheckpointFormat::kVersion1 : CheckpointFormat::kLegacy);
  const ModelConfig& c = in.config;
  std::printf("wrote %s: %d query heads, %d -> %d KV heads (%s), KV cache %s -> %s per token\n",
              o.checkpoints[1].c_str(), c.n_heads, c.n_kv_heads, o.kv_heads,
              made_by(c.n_kv_heads, o.kv_heads).c_str(),
              format_bytes(static_cast<double>(kv_bytes_per_token(c, c.n_kv_heads))).c_str(),
              format_bytes(static_cast<double>(kv_bytes_per_token(c, o.kv_heads))).c_str());
  return 0;
}

// ---- evaluation ----------------------------------------------------------------

// Positions where a model's greedy continuation equals the original model's.
struct GreedyAgreement {
  int until_divergence = 0;  // equal positions before the first difference
  int equal = 0;             // equal positions anywhere
  int original_length = 0;   // tokens the original model generated
  int compared = 0;          // positions either model generated

  double until_divergence_fraction() const {
    return static_cast<double>(until_divergence) / original_length;
  }
  double overall_fraction() const { return static_cast<double>(equal) / compared; }

  // Adds one prompt's continuations (the tokens after the prompt).
  void add(const GenerationResult& original, const GenerationResult& candidate) {
    const auto from = original.tokens.begin() + original.num_prompt_tokens;
    const std::vector<int> a(from, original.tokens.end());
    const std::vector<int> b(candidate.tokens.begin() + candidate.num_prompt_tokens,
                             candidate.tokens.end());
    const std::size_t common = std::min(a.size(), b.size());
    std::size_t prefix = 0;
    while (prefix < common && a[prefix] == b[prefix]) ++prefix;
    until_divergence += static_cast<int>(prefix);
    for (std::size_t i = 0; i < common; ++i) equal += a[i] == b[i];
    original_length += static_cast<int>(a.size());
    compared += static_cast<int>(std::max(a.size(), b.size()));
  }
};

std::string variant_name(int kv_heads, int n_heads) {
  if (kv_heads == n_heads) return "MHA";
  if (kv_heads == 1) return "MQA";
  return "GQA-" + std::to_string(kv_heads);
}

int evaluate(const Options& o) {
  KVC_CHECK(o.checkpoints.size() == 1, "--evaluate takes one checkpoint, got ",
            o.checkpoints.size());
  KVC_CHECK(!o.tokenizer_path.empty(), "--evaluate needs the tokenizer: -z tokenizer.bin");
  check_readable_file(o.checkpoints[0]);
  const Model original = load_checkpoint(o.checkpoints[0]);
  const ModelConfig& c = original.config;
  const Tokenizer tokenizer(o.tokenizer_path, c.vocab_size);
  const auto text_paths = o.text_paths.empty() ? reference_text_paths() : o.text_paths;
  const auto texts = tokenize_texts(text_paths, tokenizer, c.seq_len);
  ThreadPool pool(o.threads);
  const KVStrategyFactory gqa_cache = [](const ModelConfig& config, const DeviceContext& device) {
    return ch03::make_strategy(config, device);
  };

  auto greedy = [&](const Model& model, const std::string& prompt) {
    CpuEngine engine(model, &pool);
    auto kv = gqa_cache(model.config, engine.context());
    return generate(engine, tokenizer, *kv, {prompt, o.steps, {0.0f, 0.9f, 1}});
  };
  std::vector<GenerationResult> original_runs;
  for (const std::string& prompt : o.prompts) original_runs.push_back(greedy(original, prompt));

  int scored_tokens = 0;
  Table table({"variant", "KV heads", "made by", "KV bytes/token", "NLL (nats/token)", "perplexity",
               "greedy = original, to 1st divergence", "greedy = original, overall"});
  for (int kv_heads : ch03::valid_kv_head_counts(c.n_heads)) {
    const Model model = ch03::convert_kv_heads(original, kv_heads);
    CpuEngine engine(model, &pool);
    NegativeLogLikelihood nll;
    for (const auto& tokens : texts) nll += teacher_forced_nll(engine, gqa_cache, tokens);
    scored_tokens = nll.num_scored;
    GreedyAgreement agreement;
    for (std::size_t i = 0; i < o.prompts.size(); ++i) {
      agreement.add(original_runs[i], greedy(model, o.prompts[i]));
    }
    table.add_row({variant_name(kv_heads, c.n_heads), std::to_string(kv_heads),
                   made_by(c.n_kv_heads, kv_heads),
                   format_bytes(static_cast<double>(kv_bytes_per_token(c, kv_heads))),
                   format_fixed(nll.mean(), 4), format_fixed(nll.perplexity(), 3),
                   format_percent(agreement.until_divergence_fraction()),
                   format_percent(agreement.overall_fraction())});
  }

  std::printf("%s: %s\n", o.checkpoints[0].c_str(), describe(c).c_str());
  std::printf("perplexity: teacher-forced on %zu text(s), %d tokens scored\n", texts.size(),
              scored_tokens);
  std::printf("greedy: %zu prompt(s), %d positions each, compared with the original model\n\n",
              o.prompts.size(), o.steps);
  table.print(std::cout);
  std::printf(
      "\nUn-shared rows compute the original model exactly; mean-pooled rows are the GQA\n"
      "paper's starting point before uptraining, so they lose quality.\n");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app(
      "Convert a llama2.c checkpoint between MHA, GQA and MQA (mean-pool or un-share the K/V "
      "heads), or --evaluate what each KV-head count costs");
  Options o;
  app.add_option("checkpoints", o.checkpoints, "in.bin out.bin (with --evaluate: in.bin)")
      ->required()
      ->expected(1, 2);
  auto* kv_heads = app.add_option("--kv-heads,--groups", o.kv_heads,
                                  "KV heads of the output (query-head groups); must divide the "
                                  "query heads: 1 = MQA, n_heads = MHA")
                       ->check(integer_in(1, kMaxInt));
  app.add_option("--format", o.format, "checkpoint format to write")
      ->check(CLI::IsMember({"legacy", "v1"}))
      ->capture_default_str();
  auto* evaluation = app.add_option_group("evaluation");
  evaluation
      ->add_flag("--evaluate", o.evaluate,
                 "print the quality table for every KV-head count instead of converting")
      ->excludes(kv_heads);
  evaluation->add_option("-z,--tokenizer", o.tokenizer_path, "tokenizer.bin")
      ->check(readable_file());
  evaluation
      ->add_option("--text", o.text_paths,
                   "texts for perplexity (default: llama2.c's reference stories in "
                   "tests/data/llama2c)")
      ->check(readable_file());
  evaluation->add_option("--prompt", o.prompts, "prompts for greedy agreement")
      ->capture_default_str();
  evaluation->add_option("-n,--steps", o.steps, "positions per greedy run, prompt included")
      ->check(integer_in(1, kMaxInt))
      ->capture_default_str();
  add_threads_option(*evaluation, o.threads);
  return kvc::run_program(app, argc, argv, [&] { return o.evaluate ? evaluate(o) : convert(o); });
}
