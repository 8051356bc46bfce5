// kvc_make_model: writes a deterministic random-weight llama2.c checkpoint.
//
//   kvc_make_model --list
//   kvc_make_model --preset tour --out tour.bin --tokenizer-out tour_tokenizer.bin
//   kvc_make_model --preset llama3-8b-2l --out l3.bin --seq-len 4096 --seed 7
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <iomanip>
#include <iostream>
#include <limits>
#include <optional>
#include <sstream>
#include <string>

#include <CLI/CLI.hpp>

#include "common/check.hpp"
#include "common/checkpoint.hpp"
#include "tools/synthetic_model.hpp"

namespace {

// 3.41M, 1.02B: parameter counts at a glance.
std::string format_count(std::int64_t count) {
  std::ostringstream out;
  out << std::fixed << std::setprecision(2);
  if (count >= 1'000'000'000) {
    out << count / 1e9 << "B";
  } else if (count >= 1'000'000) {
    out << count / 1e6 << "M";
  } else {
    out << count / 1e3 << "K";
  }
  return out.str();
}

std::string format_bytes(std::size_t bytes) {
  std::ostringstream out;
  out << std::fixed << std::setprecision(1);
  if (bytes >= (std::size_t{1} << 30)) {
    out << bytes / double(1 << 30) << " GiB";
  } else {
    out << bytes / double(1 << 20) << " MiB";
  }
  return out.str();
}

void print_presets() {
  std::cout << std::left << std::setw(14) << "preset" << std::right << std::setw(6) << "dim"
            << std::setw(8) << "hidden" << std::setw(8) << "layers" << std::setw(7) << "heads"
            << std::setw(10) << "kv heads" << std::setw(8) << "vocab" << std::setw(7) << "seq"
            << std::setw(9) << "params" << std::setw(11) << "file"
            << "  "
            << "about\n";
  for (const kvc::SyntheticPreset& preset : kvc::synthetic_presets()) {
    const kvc::ModelConfig& c = preset.config;
    std::cout << std::left << std::setw(14) << preset.name << std::right << std::setw(6) << c.dim
              << std::setw(8) << c.hidden_dim << std::setw(8) << c.n_layers << std::setw(7)
              << c.n_heads << std::setw(10) << c.n_kv_heads << std::setw(8) << c.vocab_size
              << std::setw(7) << c.seq_len << std::setw(9) << format_count(c.num_parameters())
              << std::setw(11)
              << format_bytes(kvc::checkpoint_file_size(c, kvc::CheckpointFormat::kLegacy)) << "  "
              << preset.description << "\n";
  }
}

std::string describe(const kvc::ModelConfig& c) {
  std::ostringstream out;
  out << "dim " << c.dim << ", hidden " << c.hidden_dim << ", " << c.n_layers << " layers, "
      << c.n_heads << " heads, " << c.n_kv_heads << " kv heads, vocab " << c.vocab_size
      << ", seq_len " << c.seq_len;
  return out.str();
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "Writes a llama2.c checkpoint with deterministic random weights (same preset, overrides\n"
      "and seed -> the same bytes), and optionally a matching tokenizer.bin. For vocab 32000\n"
      "the real Llama 2 tokenizer (e.g. ../shared/models/tokenizer.bin) works as well."};
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
      ->check(CLI::Range(1, std::numeric_limits<int>::max()));
  app.add_option("--layers", n_layers, "Override the preset's layer count")
      ->check(CLI::Range(1, std::numeric_limits<int>::max()));
  app.add_option("--seed", seed, "Seed of the weights")->capture_default_str();
  app.add_option("--format", format_name, "Checkpoint header: legacy (llama2.c run) or v1")
      ->check(CLI::IsMember({"legacy", "v1"}))
      ->capture_default_str();
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& help) {
    return app.exit(help);
  } catch (const CLI::ParseError& error) {
    std::cerr << "error: " << error.what() << "\n";
    return error.get_exit_code();
  }

  try {
    if (list) {
      print_presets();
      return 0;
    }
    KVC_CHECK(!preset_name.empty(), "--preset is required (see --list)");
    KVC_CHECK(!out_path.empty(), "--out is required");
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
              << format_bytes(kvc::checkpoint_file_size(config, format)) << "): " << preset_name
              << ", " << describe(config) << ", " << format_count(config.num_parameters())
              << " params, seed " << seed << "\n";
    if (!tokenizer_path.empty()) std::cout << "wrote " << tokenizer_path << "\n";
    std::cout << "took " << std::fixed << std::setprecision(2) << elapsed.count() << " s\n";
  } catch (const kvc::Error& error) {
    std::cerr << "error: " << error.what() << "\n";
    return 1;
  }
  return 0;
}
