#include "tests/support/test_support.hpp"

#include <sys/wait.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "common/check.hpp"

namespace kvc::testing {

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

namespace {

std::vector<std::string> split_tabs(const std::string& line) {
  std::vector<std::string> fields;
  std::string field;
  std::istringstream s(line);
  while (std::getline(s, field, '\t')) fields.push_back(field);
  if (!line.empty() && line.back() == '\t') fields.emplace_back();
  return fields;
}

}  // namespace

std::string models_dir() {
  return KVC_MODELS_DIR;
}

std::string reference_dir() {
  return KVC_REFERENCE_DIR;
}

namespace {

std::string existing_file(const std::string& path) {
  KVC_CHECK(std::filesystem::is_regular_file(path), path,
            " is missing: it is part of the repository (git checkout -- models tests/data)");
  return path;
}

}  // namespace

std::string model_file(const std::string& file) {
  return existing_file(models_dir() + "/" + file);
}

ModelConfig config_beyond_any_memory() {
  return ModelConfig{.dim = 4096,
                     .hidden_dim = 4,
                     .n_layers = ModelLimits::kMaxLayers,
                     .n_heads = 32,
                     .n_kv_heads = 8,
                     .vocab_size = 3,
                     .seq_len = ModelLimits::kMaxSeqLen};
}

RealModel load_real_model() {
  Model model = load_checkpoint(model_file("stories260K.bin"));
  Tokenizer tokenizer(model_file("tok512.bin"), model.config.vocab_size);
  return RealModel{std::move(model), std::move(tokenizer)};
}

std::vector<ReferenceCase> reference_cases() {
  std::vector<ReferenceCase> cases;
  const std::string dir = reference_dir();
  std::ifstream tsv(existing_file(dir + "/cases.tsv"));
  std::string line;
  KVC_CHECK(std::getline(tsv, line), dir,
            "/cases.tsv is empty");  // header: name temperature topp seed steps prompt
  while (std::getline(tsv, line)) {
    if (line.empty()) continue;
    const auto fields = split_tabs(line);
    if (fields.size() < 5) continue;
    ReferenceCase c;
    c.name = fields[0];
    c.temperature = std::stof(fields[1]);
    c.top_p = std::stof(fields[2]);
    c.seed = std::stoull(fields[3]);
    c.steps = std::stoi(fields[4]);
    c.prompt = fields.size() > 5 ? fields[5] : "";
    c.expected_stdout = read_file(existing_file(dir + "/" + c.name + ".txt"));
    cases.push_back(std::move(c));
  }
  KVC_CHECK(!cases.empty(), dir, "/cases.tsv lists no cases");
  return cases;
}

std::string program_path(const std::string& name) {
  return (std::filesystem::read_symlink("/proc/self/exe").parent_path() / name).string();
}

std::string temp_path(const std::string& name) {
  static std::atomic<int> counter{0};
  return (std::filesystem::temp_directory_path() /
          ("kvc_test_" + std::to_string(::getpid()) + "_" + std::to_string(counter++) + "_" + name))
      .string();
}

CommandResult run_command(const std::string& command) {
  const std::string out_path = temp_path("stdout.txt"), err_path = temp_path("stderr.txt");
  const int status = std::system((command + " >" + out_path + " 2>" + err_path).c_str());
  CommandResult result;
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  result.out = read_file(out_path);
  result.err = read_file(err_path);
  std::filesystem::remove(out_path);
  std::filesystem::remove(err_path);
  return result;
}

}  // namespace kvc::testing
