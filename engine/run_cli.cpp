#include "engine/run_cli.hpp"

#include <cstdio>
#include <ctime>

#include "common/check.hpp"
#include "common/checkpoint.hpp"
#include "common/cli.hpp"
#include "common/number_format.hpp"
#include "common/output_file.hpp"
#include "common/report.hpp"
#include "common/sampler.hpp"
#include "common/thread_pool.hpp"
#include "common/tokenizer.hpp"
#include "engine/engine.hpp"
#include "engine/generate.hpp"

namespace kvc {
namespace {

struct RunOptions {
  std::string checkpoint;
  std::string tokenizer = "tokenizer.bin";  // llama2.c's default
  float temperature = 1.0f;
  float top_p = 0.9f;
  long long seed = 0;  // 0: seed from the clock, as llama2.c does
  int steps = 256;
  std::string prompt;
  std::string mode = "generate";
  std::string device = "cpu";
  std::string weights_dtype = "fp32";
  int threads = 0;
  std::string json_path;
};

void add_options(CLI::App& app, RunOptions& o) {
  add_model_options(app, o.checkpoint, o.tokenizer);
  app.add_option("-t,--temperature", o.temperature,
                 "temperature; 0 = greedy argmax (so is anything below " +
                     format_general(kGreedyBelowTemperature) + ")")
      ->check(number_in(0, kMaxTemperature))
      ->capture_default_str();
  app.add_option("-p,--top-p", o.top_p, "top-p (nucleus) sampling in [0,1]; 0 or 1 = off")
      ->check(number_in(0, 1))
      ->capture_default_str();
  app.add_option("-s,--seed", o.seed, "random seed; 0 = from the clock")
      ->check(integer_in(0, kMaxSeed))
      ->capture_default_str();
  app.add_option("-n,--steps", o.steps, "positions to run, prompt included; 0 = the whole context")
      ->check(integer_in(0, kMaxInt))
      ->capture_default_str();
  app.add_option("-i", o.prompt, "input prompt");
  app.add_option("-m", o.mode, "mode (only 'generate' is supported)")
      ->check(CLI::IsMember({"generate"}));
  auto* engine_options = app.add_option_group("engine");
  engine_options->add_option("--device", o.device, "where the model runs")
      ->check(CLI::IsMember({"cpu", "cuda"}))
      ->capture_default_str();
  engine_options->add_option("--weights-dtype", o.weights_dtype, "GPU weight storage (cuda only)")
      ->check(CLI::IsMember(float_format_names()))
      ->capture_default_str();
  add_threads_option(*engine_options, o.threads);
  engine_options->add_option("--json", o.json_path,
                             "write timings and KV bytes as JSON to this file");
}

}  // namespace

int run_generation_main(int argc, char** argv, const std::string& description,
                        const KVStrategyFactory& make_strategy,
                        const std::function<void(CLI::App&)>& add_chapter_options) {
  CLI::App app(description);
  RunOptions o;
  add_options(app, o);
  if (add_chapter_options) add_chapter_options(app);
  return run_program(app, argc, argv, [&] {
    check_outputs({o.json_path}, {o.checkpoint, o.tokenizer});
    const Model model = load_checkpoint(o.checkpoint);
    const Tokenizer tokenizer(o.tokenizer, model.config.vocab_size);
    ThreadPool pool(o.threads);
    auto engine = make_engine(model, parse_device(o.device), &pool, o.weights_dtype);
    auto kv = make_strategy(model.config, engine->context());

    GenerationOptions gen;
    gen.prompt = o.prompt;
    gen.steps = o.steps;
    gen.sampling.temperature = o.temperature;
    gen.sampling.top_p = o.top_p;
    gen.sampling.seed = o.seed > 0 ? static_cast<std::uint64_t>(o.seed)
                                   : static_cast<std::uint64_t>(std::time(nullptr));

    const GenerationResult result =
        generate(*engine, tokenizer, *kv, gen, [](std::string_view piece) {
          std::fwrite(piece.data(), 1, piece.size(), stdout);
          std::fflush(stdout);
        });
    std::printf("\n");
    std::fflush(stdout);
    if (result.positions > 1) {
      std::fprintf(stderr, "achieved tok/s: %f\n", result.tokens_per_second());
    }

    if (!o.json_path.empty()) {
      double decode_ms = 0;
      for (double ms : result.step_ms) decode_ms += ms;
      JsonObject json;
      json.add("strategy", kv->name())
          .add("device", o.device)
          .add("weights_dtype", o.weights_dtype)
          .add("threads", pool.num_threads())
          .add("steps", result.positions)
          .add("prompt_tokens", result.num_prompt_tokens)
          .add("tokens_per_second", result.tokens_per_second())
          .add("prefill_ms", result.prefill_ms)
          .add("decode_ms", decode_ms)
          .add("decode_ms_per_token_start", result.decode_ms_at_start())
          .add("decode_ms_per_token_end", result.decode_ms_at_end())
          .add("kv_bytes", result.kv_bytes)
          .add("tokens", result.tokens)
          .add("text", result.text);
      json.save(o.json_path);
    }
    return 0;
  });
}

}  // namespace kvc
