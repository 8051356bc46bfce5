// kvc_make_model: writes a deterministic random-weight llama2.c checkpoint.
//
//   kvc_make_model --list
//   kvc_make_model --preset tour --out tour.bin --tokenizer-out tour_tokenizer.bin
//   kvc_make_model --preset llama3-8b-2l --out l3.bin --seq-len 4096 --seed 7
#include <chrono>
#include <cstdint>
#include <iostream>
#include <optional>
#include <string>

#include "common/check.hpp"
#include "common/checkpoint.hpp"
#include "common/cli.hpp"
#include "common/output_file.hpp"
#include "common/report.hpp"
#include "tools/synthetic_model.hpp"

namespace {

void print_presets() {
  kvc::Table table({"preset", "dim", "hidden", "layers", "heads", "kv heads", "vocab", "seq",
                    "params", "file", "about"});
  for (const kvc::SyntheticPreset& preset : kvc::synthetic_presets()) {
    const kvc::ModelConfig& c = preset.config;
    const double file_bytes = kvc::checkpoint_file_size(c, kvc::CheckpointFormat::kLegacy);
    table.add_row({std::string(preset.name), std::to_string(c.dim), std::to_string(c.hidden_dim),
                   std::to_string(c.n_layers), std::to_string(c.n_heads),
                   std::to_string(c.n_kv_heads), std::to_string(c.vocab_size),
                   std::to_string(c.seq_len), kvc::format_count(c.num_parameters()),
                   kvc::format_bytes(file_bytes), std::string(preset.description)});
  }
  table.print(std::cout);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "Writes a llama2.c checkpoint with deterministic random weights (same preset, overrides\n"
      "and seed -> the same bytes), and optionally a matching tokenizer.bin. For vocab 32000\n"
      "the real Llama 2 tokenizer (e.g. models/tokenizer.bin) works as well."};
  bool list = false;
  std::string preset_name;
  std::string out_path;
  std::string tokenizer_path;
  std::optional<int> seq_len;
  std::optional<int> n_layers;
  std::uint64_t seed = 42;
  std::string format_name = "legacy";
  app.add_flag("--list", list, "Print the presets with their parameter counts and file sizes");
  app.add_option("--preset", preset_name, "Model shape (see --list)");
  app.add_option("--out", out_path, "Checkpoint file to write");
  app.add_option("--tokenizer-out", tokenizer_path,
                 "Also write a synthetic tokenizer.bin with the model's vocab_size");
  app.add_option("--seq-len", seq_len, "Override the preset's context length")
      ->check(kvc::integer_in(1, kvc::kMaxInt));
  app.add_option("--layers", n_layers, "Override the preset's layer count")
      ->check(kvc::integer_in(1, kvc::kMaxInt));
  app.add_option("--seed", seed, "Seed of the weights")
      ->check(kvc::integer_in(0, kvc::kMaxSeed))
      ->capture_default_str();
  app.add_option("--format", format_name, "Checkpoint header: legacy (llama2.c run) or v1")
      ->check(CLI::IsMember({"legacy", "v1"}))
      ->capture_default_str();
  return kvc::run_program(app, argc, argv, [&] {
    if (list) {
      print_presets();
      return 0;
    }
    KVC_CHECK(!preset_name.empty(), "--preset is required (see --list)");
    KVC_CHECK(!out_path.empty(), "--out is required");
    kvc::check_outputs({out_path, tokenizer_path}, {});
    kvc::ModelConfig config = kvc::find_synthetic_preset(preset_name).config;
    if (seq_len) config.seq_len = *seq_len;
    if (n_layers) config.n_layers = *n_layers;
    const kvc::CheckpointFormat format =
        format_name == "v1" ? kvc::CheckpointFormat::kVersion1 : kvc::CheckpointFormat::kLegacy;

    const auto start = std::chrono::steady_clock::now();
    const kvc::Model model = kvc::make_synthetic_model(config, seed);
    kvc::save_checkpoint(out_path, model, format);
    if (!tokenizer_path.empty()) {
      kvc::make_synthetic_tokenizer(config.vocab_size).save(tokenizer_path);
    }
    const std::chrono::duration<double> elapsed = std::chrono::steady_clock::now() - start;

    std::cout << "wrote " << out_path << " (" << format_name << ", "
              << kvc::format_bytes(kvc::checkpoint_file_size(config, format))
              << "): " << preset_name << ", " << kvc::describe(config) << ", "
              << kvc::format_count(config.num_parameters()) << " params, seed " << seed << "\n";
    if (!tokenizer_path.empty()) std::cout << "wrote " << tokenizer_path << "\n";
    std::cout << "took " << kvc::format_fixed(elapsed.count(), 2) << " s\n";
    return 0;
  });
}
