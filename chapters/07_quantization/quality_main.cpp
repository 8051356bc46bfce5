// ch07_quality: what each KV format costs on a real model, one table row per format.
//
//   ch07_quality <checkpoint.bin> -z <tokenizer.bin> [--text FILE ...] [--kv-dtype NAME ...]
//                [--kv-group-size N] [--block-size N] [--kv-sinks N] [--kv-hadamard]
//                [--kv-keys-before-rope] [--threads N] [--json FILE]
//
// Columns: KV bytes per token (kv_bytes_per_token) and the fraction of fp32's;
// teacher-forced perplexity on the texts (default: llama2.c's reference
// stories in tests/data/llama2c) and its change from fp32; top-1 agreement and
// mean KL divergence of the next-token distribution from fp32's; the
// attention output's relative L2 error on random Gaussian q, k, v and on the
// q, k, v the real model produced for the first text (see quality.hpp).
#include <CLI/CLI.hpp>
#include <cstdio>
#include <iostream>
#include <random>
#include <string>
#include <vector>

#include "chapters/07_quantization/quality.hpp"
#include "chapters/07_quantization/quant_flags.hpp"
#include "chapters/07_quantization/quantized_paged_cache.hpp"
#include "common/checkpoint.hpp"
#include "common/cli.hpp"
#include "common/report.hpp"
#include "common/thread_pool.hpp"

namespace {

struct Options {
  std::string checkpoint;
  std::string tokenizer = "tokenizer.bin";
  std::vector<std::string> text_paths;
  std::vector<std::string> formats;
  int group_size = 0;
  int block_size = 16;
  kvc::ch07::QuantOptions quant;
  int threads = 0;
  std::string json_path;
};

// Gaussian q, k, v for one sequence of `n` tokens in every layer of the model's shape.
kvc::ch07::CapturedAttention random_attention(const kvc::ModelConfig& c, int n) {
  std::mt19937 rng(2024);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  kvc::ch07::CapturedAttention capture;
  for (int p = 0; p < n; ++p) capture.batch.add(0, 0, p, false);
  const auto random_floats = [&](std::size_t count) {
    std::vector<float> x(count);
    for (float& value : x) value = normal(rng);
    return x;
  };
  for (int l = 0; l < c.n_layers; ++l) {
    capture.q.push_back(random_floats(std::size_t(n) * c.dim));
    capture.k.push_back(random_floats(std::size_t(n) * c.kv_dim()));
    capture.v.push_back(random_floats(std::size_t(n) * c.kv_dim()));
  }
  return capture;
}

int evaluate(const Options& o) {
  using namespace kvc;
  const Model model = load_checkpoint(o.checkpoint);
  const ModelConfig& c = model.config;
  const Tokenizer tokenizer(o.tokenizer, c.vocab_size);
  const auto texts = tokenize_texts(o.text_paths.empty() ? reference_text_paths() : o.text_paths,
                                    tokenizer, c.seq_len);
  std::vector<KvDtype> dtypes;
  for (const char* name : kv_dtype_names()) {
    if (o.formats.empty() || std::ranges::find(o.formats, name) != o.formats.end()) {
      dtypes.push_back(parse_kv_dtype(name, c.head_dim(), o.group_size));
    }
  }
  for (const std::string& name : o.formats) parse_kv_dtype(name, c.head_dim(), o.group_size);
  const KvDtype fp32 = parse_kv_dtype("fp32", c.head_dim());

  ThreadPool pool(o.threads);
  CpuEngine engine(model, &pool);
  const DeviceContext cpu = engine.context();
  const auto cache = [&](const KvDtype& dtype) {
    return ch07::make_strategy(c, cpu, dtype, o.block_size, 1, o.quant);
  };

  // fp32's logits for every text, and the real q, k, v of the first one.
  ch07::CapturedAttention real;
  std::vector<std::vector<float>> reference_logits;
  for (const auto& tokens : texts) {
    reference_logits.push_back(teacher_forced_logits(
        engine,
        [&](const ModelConfig&, const DeviceContext&) {
          return reference_logits.empty() ? ch07::make_capturing_strategy(cache(fp32), c, real)
                                          : cache(fp32);
        },
        tokens));
  }
  const ch07::CapturedAttention random = random_attention(c, c.seq_len);
  const auto attention_error = [&](const ch07::CapturedAttention& inputs, const KvDtype& dtype) {
    const auto exact = ch07::replay_attention(*cache(fp32), inputs, c);
    return ch07::relative_error(ch07::replay_attention(*cache(dtype), inputs, c), exact);
  };

  const KvPoolShape shape{c.n_layers, c.n_kv_heads, c.head_dim(), o.block_size};
  const double fp32_bytes = kv_bytes_per_token(fp32, shape);
  const ch07::FormatQuality baseline =
      ch07::evaluate_format(engine, fp32, o.block_size, texts, reference_logits);
  Table table({"KV dtype", "bytes/token", "vs fp32", "perplexity", "change", "top-1 agree",
               "mean KL", "attn err random", "attn err real"});
  JsonObject json;
  json.add("checkpoint", o.checkpoint)
      .add("texts", static_cast<int>(texts.size()))
      .add("tokens_scored", baseline.nll.num_scored)
      .add("block_size", o.block_size)
      .add("sink_tokens", o.quant.sink_tokens)
      .add("hadamard", o.quant.hadamard)
      .add("keys_before_rope", o.quant.keys_before_rope);
  for (const KvDtype& dtype : dtypes) {
    const ch07::FormatQuality q =
        ch07::evaluate_format(engine, dtype, o.block_size, texts, reference_logits, o.quant);
    const double bytes = kv_bytes_per_token(dtype, shape);
    const double change = q.nll.perplexity() / baseline.nll.perplexity() - 1;
    const double err_random = attention_error(random, dtype);
    const double err_real = attention_error(real, dtype);
    table.add_row({dtype.name(), format_fixed(bytes, 1), format_percent(bytes / fp32_bytes),
                   format_fixed(q.nll.perplexity(), 4), format_percent(change),
                   format_percent(q.agreement.top1()), format_fixed(q.agreement.mean_kl(), 5),
                   format_fixed(err_random, 4), format_fixed(err_real, 4)});
    const std::string key = dtype.name() + ".";
    json.add(key + "bytes_per_token", bytes)
        .add(key + "perplexity", q.nll.perplexity())
        .add(key + "perplexity_change", change)
        .add(key + "top1_agreement", q.agreement.top1())
        .add(key + "mean_kl", q.agreement.mean_kl())
        .add(key + "attention_error_random", err_random)
        .add(key + "attention_error_real", err_real);
  }
  table.print(std::cout);
  std::printf("teacher-forced on %zu text(s), %d tokens scored; blocks of %d tokens, %d sinks%s\n",
              texts.size(), baseline.nll.num_scored, o.block_size, o.quant.sink_tokens,
              o.quant.keys_before_rope ? "; keys quantized before RoPE" : "");
  if (!o.json_path.empty()) json.save(o.json_path);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app("Chapter 07: the quality cost of each KV cache format on a real model");
  Options o;
  app.add_option("checkpoint", o.checkpoint, "model checkpoint (.bin)")->required();
  app.add_option("-z,--tokenizer", o.tokenizer, "tokenizer.bin")->capture_default_str();
  app.add_option("--text", o.text_paths,
                 "texts to score (default: llama2.c's reference stories in tests/data/llama2c)");
  app.add_option("--kv-dtype", o.formats, "formats to measure (default: all)");
  app.add_option("--kv-group-size", o.group_size,
                 "int4 channels per scale (default 32, or head_dim when smaller)");
  app.add_option("--block-size", o.block_size, "tokens per KV block (1-256)")
      ->check(CLI::Range(1, 256))
      ->capture_default_str();
  kvc::ch07::add_quant_option_flags(app, o.quant);
  app.add_option("--threads", o.threads, "CPU threads; 0 = all cores");
  app.add_option("--json", o.json_path, "also write the numbers as JSON to this file");
  return kvc::run_program(app, argc, argv, [&] { return evaluate(o); });
}
