#include "tools/synthetic_model.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <set>
#include <span>
#include <string>
#include <vector>

#include "common/check.hpp"
#include "common/checkpoint.hpp"

namespace kvc {
namespace {

ModelConfig tiny_config() {
  return find_synthetic_preset("tiny").config;
}

// A file path in the test's temporary directory, removed when it goes out of scope.
class TempFile {
 public:
  explicit TempFile(const std::string& name)
      : path_(std::filesystem::path(::testing::TempDir()) / name) {}
  ~TempFile() { std::filesystem::remove(path_); }
  std::string str() const { return path_.string(); }

 private:
  std::filesystem::path path_;
};

std::vector<char> read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::vector<char>(std::istreambuf_iterator<char>(in), {});
}

std::vector<char> checkpoint_bytes(const ModelConfig& config, std::uint64_t seed) {
  TempFile file("synthetic_bytes.bin");
  save_checkpoint(file.str(), make_synthetic_model(config, seed), CheckpointFormat::kLegacy);
  return read_bytes(file.str());
}

// ---- presets ------------------------------------------------------------------

TEST(SyntheticPresets, AreValidAndUniquelyNamed) {
  std::set<std::string_view> names;
  for (const SyntheticPreset& preset : synthetic_presets()) {
    SCOPED_TRACE(preset.name);
    EXPECT_NO_THROW(validate(preset.config));
    EXPECT_TRUE(names.insert(preset.name).second);
    EXPECT_EQ(&find_synthetic_preset(preset.name), &preset);
  }
  EXPECT_GE(names.size(), 6u);
}

TEST(SyntheticPresets, HaveThePublishedShapes) {
  const ModelConfig stories15m = find_synthetic_preset("15m").config;
  EXPECT_EQ(stories15m.dim, 288);
  EXPECT_EQ(stories15m.hidden_dim, 768);
  EXPECT_EQ(stories15m.n_layers, 6);
  EXPECT_EQ(stories15m.n_heads, 6);
  EXPECT_EQ(stories15m.vocab_size, 32000);

  const ModelConfig llama3 = find_synthetic_preset("llama3-8b-2l").config;
  EXPECT_EQ(llama3.head_dim(), 128);
  EXPECT_EQ(llama3.kv_group_size(), 4);
  EXPECT_EQ(llama3.hidden_dim, 14336);
  EXPECT_EQ(llama3.vocab_size, 128256);

  // tour: embedding 512*256, per layer 2*256*256 + 2*128*256 + 3*256*688 + 2*256, final 256.
  const std::int64_t tour_params =
      512 * 256 + 4 * (2 * 256 * 256 + 2 * 128 * 256 + 3 * 256 * 688 + 2 * 256) + 256;
  EXPECT_EQ(find_synthetic_preset("tour").config.num_parameters(), tour_params);
}

TEST(SyntheticPresets, UnknownNameIsAnErrorListingTheKnownOnes) {
  try {
    find_synthetic_preset("llama-9000");
    FAIL() << "expected kvc::Error";
  } catch (const Error& error) {
    EXPECT_NE(std::string(error.what()).find("llama-9000"), std::string::npos);
    EXPECT_NE(std::string(error.what()).find("tiny"), std::string::npos);
  }
}

// ---- weights ------------------------------------------------------------------

TEST(SyntheticModel, SameSeedGivesIdenticalBytes) {
  EXPECT_EQ(checkpoint_bytes(tiny_config(), 7), checkpoint_bytes(tiny_config(), 7));
}

TEST(SyntheticModel, DifferentSeedGivesDifferentWeights) {
  const Model a = make_synthetic_model(tiny_config(), 7);
  const Model b = make_synthetic_model(tiny_config(), 8);
  ASSERT_EQ(a.storage.size(), b.storage.size());
  std::size_t equal = 0;
  for (std::size_t i = 0; i < a.storage.size(); ++i) equal += a.storage[i] == b.storage[i];
  // Only the rms weights (all 1.0) and rare coincidences may agree.
  const ModelConfig c = tiny_config();
  const std::size_t rms_count = static_cast<std::size_t>(c.dim) * (2 * c.n_layers + 1);
  EXPECT_LT(equal, rms_count + a.storage.size() / 1000);
}

TEST(SyntheticModel, ThreadCountDoesNotChangeTheWeights) {
  const Model one = make_synthetic_model(tiny_config(), 3, 1);
  const Model three = make_synthetic_model(tiny_config(), 3, 3);
  EXPECT_EQ(one.storage, three.storage);
}

TEST(SyntheticModel, ExtraLayersDoNotChangeTheFirstOnes) {
  ModelConfig deeper = tiny_config();
  deeper.n_layers += 1;
  const Model shallow_model = make_synthetic_model(tiny_config(), 5);
  const Model deep_model = make_synthetic_model(deeper, 5);
  const std::size_t wq_count = static_cast<std::size_t>(deeper.dim) * deeper.dim;
  for (int l = 0; l < tiny_config().n_layers; ++l) {
    EXPECT_TRUE(std::equal(shallow_model.layers[l].wq, shallow_model.layers[l].wq + wq_count,
                           deep_model.layers[l].wq));
  }
  EXPECT_TRUE(std::equal(shallow_model.token_embedding,
                         shallow_model.token_embedding + deeper.vocab_size * deeper.dim,
                         deep_model.token_embedding));
}

// Values lie in [-scale, scale] (to rounding), with the mean and variance of that uniform
// distribution (variance scale^2 / 3), within a few standard errors.
void expect_uniform(const float* values, std::size_t count, float scale) {
  double sum = 0;
  double sum_squares = 0;
  for (std::size_t i = 0; i < count; ++i) {
    ASSERT_LE(std::abs(values[i]), scale * (1 + 1e-6f)) << "at " << i;
    sum += values[i];
    sum_squares += double(values[i]) * values[i];
  }
  const double variance = double(scale) * scale / 3;
  const double mean = sum / count;
  EXPECT_NEAR(mean, 0.0, 5 * std::sqrt(variance / count));
  EXPECT_NEAR(sum_squares / count, variance, 0.05 * variance);
}

TEST(SyntheticModel, WeightsHaveTheDocumentedScales) {
  const ModelConfig c = find_synthetic_preset("tour").config;
  const Model model = make_synthetic_model(c, 11);
  const std::size_t dim = c.dim;
  const std::size_t kv_dim = c.kv_dim();
  const std::size_t hidden = c.hidden_dim;
  // Documented variances: 1 / fan_in for projections, 4 / dim for the embedding.
  const float dim_scale = std::sqrt(3.0f / dim);
  const float hidden_scale = std::sqrt(3.0f / hidden);
  const float embedding_scale = std::sqrt(3.0f * 4.0f / dim);

  expect_uniform(model.token_embedding, c.vocab_size * dim, embedding_scale);
  for (const LayerWeights& layer : model.layers) {
    EXPECT_TRUE(std::all_of(layer.rms_att, layer.rms_att + dim, [](float w) { return w == 1; }));
    EXPECT_TRUE(std::all_of(layer.rms_ffn, layer.rms_ffn + dim, [](float w) { return w == 1; }));
    expect_uniform(layer.wq, dim * dim, dim_scale);
    expect_uniform(layer.wk, kv_dim * dim, dim_scale);
    expect_uniform(layer.wv, kv_dim * dim, dim_scale);
    expect_uniform(layer.wo, dim * dim, dim_scale);
    expect_uniform(layer.w1, hidden * dim, dim_scale);
    expect_uniform(layer.w2, dim * hidden, hidden_scale);
    expect_uniform(layer.w3, hidden * dim, dim_scale);
  }
  EXPECT_TRUE(std::all_of(model.rms_final, model.rms_final + dim, [](float w) { return w == 1; }));
  EXPECT_EQ(model.classifier, model.token_embedding);
}

TEST(SyntheticModel, SeparateClassifierIsFilledToo) {
  ModelConfig c = tiny_config();
  c.shared_classifier = false;
  const Model model = make_synthetic_model(c, 2);
  ASSERT_NE(model.classifier, model.token_embedding);
  expect_uniform(model.classifier, static_cast<std::size_t>(c.vocab_size) * c.dim,
                 std::sqrt(3.0f * 4.0f / c.dim));
}

// ---- checkpoints --------------------------------------------------------------

class SyntheticCheckpoint : public ::testing::TestWithParam<CheckpointFormat> {};

TEST_P(SyntheticCheckpoint, LoadsBackWithIdenticalWeightsAndTheExpectedSize) {
  ModelConfig config = tiny_config();
  config.seq_len = 100;  // an override, as --seq-len gives
  const Model written = make_synthetic_model(config, 42);
  // One file per format: ctest -j runs the two cases at the same time.
  TempFile file("synthetic_roundtrip_" + std::to_string(static_cast<int>(GetParam())) + ".bin");
  save_checkpoint(file.str(), written, GetParam());

  EXPECT_EQ(std::filesystem::file_size(file.str()), checkpoint_file_size(config, GetParam()));
  const Model read = load_checkpoint(file.str());
  EXPECT_EQ(read.config.dim, config.dim);
  EXPECT_EQ(read.config.hidden_dim, config.hidden_dim);
  EXPECT_EQ(read.config.n_layers, config.n_layers);
  EXPECT_EQ(read.config.n_heads, config.n_heads);
  EXPECT_EQ(read.config.n_kv_heads, config.n_kv_heads);
  EXPECT_EQ(read.config.vocab_size, config.vocab_size);
  EXPECT_EQ(read.config.seq_len, config.seq_len);
  EXPECT_EQ(read.config.shared_classifier, config.shared_classifier);
  EXPECT_EQ(read.storage, written.storage);
}

INSTANTIATE_TEST_SUITE_P(BothFormats, SyntheticCheckpoint,
                         ::testing::Values(CheckpointFormat::kLegacy, CheckpointFormat::kVersion1),
                         [](const auto& info) {
                           return info.param == CheckpointFormat::kLegacy ? "legacy" : "v1";
                         });

// ---- tokenizer ----------------------------------------------------------------

TEST(SyntheticTokenizer, HasLlamaLayoutAndUniquePieces) {
  for (int vocab_size : {kMinSyntheticVocabSize, 512, 32000, 128256}) {
    SCOPED_TRACE(vocab_size);
    const Tokenizer tokenizer = make_synthetic_tokenizer(vocab_size);
    ASSERT_EQ(tokenizer.vocab_size(), vocab_size);
    EXPECT_EQ(tokenizer.piece(0), "<unk>");
    EXPECT_EQ(tokenizer.piece(kBosToken), "\n<s>\n");
    EXPECT_EQ(tokenizer.piece(kEosToken), "\n</s>\n");
    EXPECT_EQ(tokenizer.piece(3), "<0x00>");
    EXPECT_EQ(tokenizer.piece(3 + 0x0A), "<0x0A>");
    EXPECT_EQ(tokenizer.piece(258), "<0xFF>");
    for (char c = ' '; c <= '~'; ++c) EXPECT_GE(tokenizer.lookup(std::string(1, c)), 259) << c;

    std::set<std::string> unique;
    for (int id = 0; id < vocab_size; ++id) unique.insert(tokenizer.piece(id));
    EXPECT_EQ(unique.size(), static_cast<std::size_t>(vocab_size));
  }
}

TEST(SyntheticTokenizer, EveryLongPieceIsTheConcatenationOfTwoEarlierOnes) {
  const Tokenizer tokenizer = make_synthetic_tokenizer(32000);
  for (int id = kMinSyntheticVocabSize; id < tokenizer.vocab_size(); ++id) {
    const std::string& piece = tokenizer.piece(id);
    bool reachable = false;
    for (std::size_t split = 1; split < piece.size() && !reachable; ++split) {
      const int left = tokenizer.lookup(piece.substr(0, split));
      const int right = tokenizer.lookup(piece.substr(split));
      reachable = left >= 0 && left < id && right >= 0 && right < id;
    }
    EXPECT_TRUE(reachable) << "piece " << id << " '" << piece << "'";
    EXPECT_LT(tokenizer.score(id), tokenizer.score(id - 1));
  }
}

TEST(SyntheticTokenizer, RoundTripsThroughTheFileFormat) {
  const Tokenizer written = make_synthetic_tokenizer(512);
  TempFile file("synthetic_tokenizer.bin");
  written.save(file.str());
  const Tokenizer read(file.str(), 512);
  EXPECT_EQ(read.max_token_length(), written.max_token_length());
  for (int id = 0; id < 512; ++id) {
    EXPECT_EQ(read.piece(id), written.piece(id));
    EXPECT_EQ(read.score(id), written.score(id));
  }
}

TEST(SyntheticTokenizer, EncodesAndDecodesAsciiText) {
  const Tokenizer tokenizer = make_synthetic_tokenizer(512);
  const std::string text =
      "Once upon a time, there was a little girl named Lily.\n\tShe said: ~42!";
  const std::vector<int> tokens = tokenizer.encode(text, true, false);
  ASSERT_FALSE(tokens.empty());
  EXPECT_EQ(tokens.front(), kBosToken);
  // Merges happen: far fewer tokens than characters.
  EXPECT_LT(tokens.size(), text.size() / 2);

  std::string decoded;
  for (std::size_t i = 1; i < tokens.size(); ++i)
    decoded += tokenizer.decode(tokens[i - 1], tokens[i]);
  EXPECT_EQ(decoded, text);
}

TEST(SyntheticTokenizer, TooSmallVocabularyIsAnError) {
  EXPECT_THROW(make_synthetic_tokenizer(kMinSyntheticVocabSize - 1), Error);
}

// The generator and the loader share ModelLimits: what one refuses, so does the other.
TEST(SyntheticModel, RefusesShapesTheLoaderWouldReject) {
  ModelConfig c = find_synthetic_preset("tiny").config;
  c.seq_len = ModelLimits::kMaxSeqLen + 1;
  EXPECT_THROW(make_synthetic_model(c, 1), Error);
  c = find_synthetic_preset("tiny").config;
  c.n_layers = ModelLimits::kMaxLayers + 1;
  EXPECT_THROW(make_synthetic_model(c, 1), Error);
}

}  // namespace
}  // namespace kvc
