// The llama2.c checkpoint loader: the real model, both formats, and bad files.
#include <gtest/gtest.h>

#include <array>
#include <climits>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <string_view>

#include "common/check.hpp"
#include "common/checkpoint.hpp"
#include "tests/support/test_support.hpp"

namespace kvc {
namespace {

using testing::temp_path;

ModelConfig small_config(bool shared) {
  ModelConfig c;
  c.dim = 16;
  c.hidden_dim = 24;
  c.n_layers = 2;
  c.n_heads = 4;
  c.n_kv_heads = 2;
  c.vocab_size = 10;
  c.seq_len = 8;
  c.shared_classifier = shared;
  return c;
}

Model random_model(const ModelConfig& c) {
  Model m = make_model(c);
  std::mt19937 rng(5);
  std::uniform_real_distribution<float> dist(-1, 1);
  for (float& w : m.storage) w = dist(rng);
  return m;
}

// A decode step streams every weight, so a model's storage starts on a page,
// and on a 2 MiB page once it is that big (common/page_memory.hpp).
TEST(Checkpoint, WeightsStartOnAPageAndLargeModelsOnAHugePage) {
  const Model small = make_model(small_config(true));
  EXPECT_EQ(reinterpret_cast<std::uintptr_t>(small.storage.data()) % 4096, 0u);
  ModelConfig large = small_config(false);
  large.dim = 256;
  large.hidden_dim = 768;
  large.n_layers = 4;  // ~3.1 M floats, ~12 MiB
  const Model model = make_model(large);
  ASSERT_GE(model.storage.size() * sizeof(float), std::size_t{2} << 20);
  EXPECT_EQ(reinterpret_cast<std::uintptr_t>(model.storage.data()) % (std::size_t{2} << 20), 0u);
}

void write_bytes(const std::string& path, const std::vector<char>& bytes) {
  std::ofstream(path, std::ios::binary).write(bytes.data(), std::streamsize(bytes.size()));
}

std::vector<char> read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// Loading must fail with a kvc::Error whose message mentions `fragment`.
void expect_load_error(const std::string& path, const std::string& fragment) {
  try {
    load_checkpoint(path);
    ADD_FAILURE() << "loading " << path << " did not fail";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos) << e.what();
  }
}

TEST(Checkpoint, LoadsRealStories260K) {
  const Model m = load_checkpoint(testing::model_file("stories260K.bin"));
  EXPECT_EQ(m.config.dim, 64);
  EXPECT_EQ(m.config.hidden_dim, 172);
  EXPECT_EQ(m.config.n_layers, 5);
  EXPECT_EQ(m.config.n_heads, 8);
  EXPECT_EQ(m.config.n_kv_heads, 4);
  EXPECT_EQ(m.config.vocab_size, 512);
  EXPECT_EQ(m.config.seq_len, 512);
  EXPECT_TRUE(m.config.shared_classifier);
  EXPECT_EQ(m.classifier, m.token_embedding);
  EXPECT_EQ(checkpoint_file_size(m.config, CheckpointFormat::kLegacy), 1056540u);
  // A trained RMSNorm weight is not the zero an off-by-one read would give.
  EXPECT_NE(m.rms_final[0], 0.0f);
}

TEST(Checkpoint, RoundTripsBothFormatsAndClassifierModes) {
  for (auto format : {CheckpointFormat::kLegacy, CheckpointFormat::kVersion1}) {
    for (bool shared : {true, false}) {
      const Model original = random_model(small_config(shared));
      const std::string path = temp_path("roundtrip.bin");
      save_checkpoint(path, original, format);
      EXPECT_EQ(std::filesystem::file_size(path), checkpoint_file_size(original.config, format));
      const Model loaded = load_checkpoint(path);
      EXPECT_EQ(loaded.config.shared_classifier, shared);
      EXPECT_EQ(loaded.config.dim, original.config.dim);
      EXPECT_EQ(loaded.storage, original.storage);
      EXPECT_EQ(loaded.layers[1].w2[3], original.layers[1].w2[3]);
      EXPECT_EQ(loaded.classifier == loaded.token_embedding, shared);
      std::filesystem::remove(path);
    }
  }
}

TEST(Checkpoint, Version1GroupsTensorsDifferently) {
  // The first float after the 256-byte header is layer 0's rms_att, not the embedding.
  const Model m = random_model(small_config(true));
  const std::string path = temp_path("v1.bin");
  save_checkpoint(path, m, CheckpointFormat::kVersion1);
  const auto bytes = read_bytes(path);
  float first = 0;
  std::memcpy(&first, bytes.data() + 256, sizeof(float));
  EXPECT_EQ(first, m.layers[0].rms_att[0]);
  std::filesystem::remove(path);
}

TEST(Checkpoint, BadFilesGiveOneLineReasons) {
  expect_load_error("/nonexistent/model.bin", "cannot open");

  const std::string empty = temp_path("empty.bin");
  write_bytes(empty, {});
  expect_load_error(empty, "too small");

  const Model m = random_model(small_config(true));
  const std::string good = temp_path("good.bin");
  save_checkpoint(good, m, CheckpointFormat::kLegacy);
  auto bytes = read_bytes(good);

  const std::string truncated = temp_path("truncated.bin");
  write_bytes(truncated, std::vector<char>(bytes.begin(), bytes.end() - 4));
  expect_load_error(truncated, "truncated");

  const std::string trailing = temp_path("trailing.bin");
  auto longer = bytes;
  longer.push_back(0);
  write_bytes(trailing, longer);
  expect_load_error(trailing, "trailing");

  const std::string bad_heads = temp_path("bad_heads.bin");
  auto corrupt = bytes;
  const std::int32_t three = 3;  // n_kv_heads = 3 does not divide n_heads = 4
  std::memcpy(corrupt.data() + 4 * sizeof(std::int32_t), &three, sizeof(three));
  write_bytes(bad_heads, corrupt);
  expect_load_error(bad_heads, "n_kv_heads");

  const std::string huge = temp_path("huge.bin");
  corrupt = bytes;
  const std::int32_t absurd = 1 << 30;
  std::memcpy(corrupt.data(), &absurd, sizeof(absurd));
  write_bytes(huge, corrupt);
  expect_load_error(huge, "dim 1073741824 is outside [1, 65536]");

  save_checkpoint(good, m, CheckpointFormat::kVersion1);
  bytes = read_bytes(good);
  const std::string bad_version = temp_path("bad_version.bin");
  const std::int32_t two = 2;
  std::memcpy(bytes.data() + 4, &two, sizeof(two));
  write_bytes(bad_version, bytes);
  expect_load_error(bad_version, "version 2");

  for (const auto& path : {empty, good, truncated, trailing, bad_heads, huge, bad_version}) {
    std::filesystem::remove(path);
  }
}

// ---------------------------------------------------------------------------
// Crafted headers: every one must be a kvc::Error, never a crash or a huge
// allocation (these run under ASan/UBSan in the fuzz build too).

// A header (legacy: 7 ints; version 1: magic, version, 7 ints, shared flag,
// padding) followed by `payload_bytes` zero bytes.
std::string header_bytes(CheckpointFormat format, const std::array<std::int32_t, 7>& fields,
                         std::size_t payload_bytes = 0, std::uint8_t shared = 1) {
  std::string bytes;
  auto append = [&](const void* p, std::size_t n) { bytes.append(static_cast<const char*>(p), n); };
  if (format == CheckpointFormat::kVersion1) {
    const std::uint32_t magic = 0x616b3432;
    const std::int32_t version = 1;
    append(&magic, 4);
    append(&version, 4);
    append(fields.data(), sizeof(fields));
    append(&shared, 1);
    bytes.resize(256, '\0');
  } else {
    append(fields.data(), sizeof(fields));
  }
  bytes.resize(bytes.size() + payload_bytes, '\0');
  return bytes;
}

std::string load_error(std::string_view bytes) {
  try {
    load_checkpoint_bytes(bytes, "crafted.bin");
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

constexpr std::array<std::int32_t, 7> kSmallFields = {16, 24, 2, 4, 2, 10, 8};

TEST(CheckpointHeader, EveryFieldAtIntMinZeroNegativeOrHuge) {
  int cases = 0;
  for (auto format : {CheckpointFormat::kLegacy, CheckpointFormat::kVersion1}) {
    for (std::size_t field = 0; field < 7; ++field) {
      for (std::int32_t value : {INT32_MIN, INT32_MIN + 1, -1, 0, INT32_MAX, 1 << 30, 1 << 23}) {
        auto fields = kSmallFields;
        fields[field] = value;
        // Large enough for the valid small model, so only the header is wrong.
        const std::string message = load_error(header_bytes(format, fields, 1 << 16));
        EXPECT_NE(message, "") << "field " << field << " = " << value;
        EXPECT_EQ(message.find('\n'), std::string::npos) << message;
        ++cases;
      }
    }
  }
  EXPECT_EQ(cases, 2 * 7 * 7);
}

TEST(CheckpointHeader, ProductsOfLargeFieldsNameTheImpliedAndActualSizes) {
  // Each field at its limit: the tensors would be ~2^46 floats. The file is
  // 256 bytes, so the loader must say so before allocating anything.
  const std::array<std::int32_t, 7> fields = {ModelLimits::kMaxDim,    ModelLimits::kMaxHiddenDim,
                                              ModelLimits::kMaxLayers, ModelLimits::kMaxHeads,
                                              ModelLimits::kMaxHeads,  ModelLimits::kMaxVocab,
                                              ModelLimits::kMaxSeqLen};
  for (auto format : {CheckpointFormat::kLegacy, CheckpointFormat::kVersion1}) {
    const std::string message = load_error(header_bytes(format, fields));
    EXPECT_NE(message.find("implies"), std::string::npos) << message;
    EXPECT_NE(message.find("file has"), std::string::npos) << message;
  }
  // The legacy vocab field INT32_MIN would be UB under std::abs; it must be rejected.
  auto separate = kSmallFields;
  separate[5] = INT32_MIN;
  EXPECT_NE(load_error(header_bytes(CheckpointFormat::kLegacy, separate)).find("vocab_size"),
            std::string::npos);
}

TEST(CheckpointHeader, SeqLenLimitIsSharedByWriterAndLoader) {
  ModelConfig c = small_config(true);
  c.seq_len = ModelLimits::kMaxSeqLen;
  // Version 1 has no RoPE tables, so a model at the limit is a small file: it round-trips.
  const Model at_limit = make_model(c);
  const std::string path = temp_path("seq_limit.bin");
  save_checkpoint(path, at_limit, CheckpointFormat::kVersion1);
  EXPECT_EQ(load_checkpoint(path).config.seq_len, ModelLimits::kMaxSeqLen);
  std::filesystem::remove(path);
  // One past it: make_model (and so every writer) refuses, as the loader does.
  c.seq_len = ModelLimits::kMaxSeqLen + 1;
  EXPECT_THROW(make_model(c), Error);
  auto fields = kSmallFields;
  fields[6] = ModelLimits::kMaxSeqLen + 1;
  EXPECT_NE(load_error(header_bytes(CheckpointFormat::kVersion1, fields)).find("seq_len 4194305"),
            std::string::npos);
}

TEST(CheckpointHeader, TruncatedHeadersAndBadFlags) {
  const std::string v1 = header_bytes(CheckpointFormat::kVersion1, kSmallFields);
  for (std::size_t size : {0, 3, 27, 28, 100, 255}) {
    EXPECT_NE(load_error(v1.substr(0, size)), "") << size;
  }
  EXPECT_NE(load_error(header_bytes(CheckpointFormat::kVersion1, kSmallFields, 0, 7))
                .find("shared_classifier"),
            std::string::npos);
}

TEST(CheckpointHeader, BytesLoaderMatchesTheFileLoader) {
  for (auto format : {CheckpointFormat::kLegacy, CheckpointFormat::kVersion1}) {
    for (bool shared : {true, false}) {
      const Model original = random_model(small_config(shared));
      const std::string path = temp_path("bytes.bin");
      save_checkpoint(path, original, format);
      const auto bytes = read_bytes(path);
      const Model from_bytes = load_checkpoint_bytes({bytes.data(), bytes.size()});
      EXPECT_EQ(from_bytes.storage, original.storage);
      EXPECT_EQ(from_bytes.config.shared_classifier, shared);
      std::filesystem::remove(path);
    }
  }
}

TEST(CheckpointHeader, RandomHeaderBytesGiveErrorsOrValidModels) {
  // Random bytes over the header of a valid file: each load either succeeds
  // with the file's exact size or throws kvc::Error (ASan/UBSan watch the rest).
  const Model m = random_model(small_config(false));
  const std::string path = temp_path("mutate.bin");
  int loaded = 0, rejected = 0;
  for (auto format : {CheckpointFormat::kLegacy, CheckpointFormat::kVersion1}) {
    save_checkpoint(path, m, format);
    const auto original = read_bytes(path);
    std::mt19937 rng(3);
    for (int trial = 0; trial < 1000; ++trial) {
      auto bytes = original;
      const int flips = 1 + static_cast<int>(rng() % 4);
      for (int f = 0; f < flips; ++f) bytes[rng() % 40] = static_cast<char>(rng());
      try {
        load_checkpoint_bytes({bytes.data(), bytes.size()});
        ++loaded;
      } catch (const Error&) {
        ++rejected;
      }
    }
  }
  std::filesystem::remove(path);
  EXPECT_EQ(loaded + rejected, 2000);
  EXPECT_GT(rejected, 0);
}

TEST(Checkpoint, DirectoryAndDeviceAreOneLineErrors) {
  expect_load_error(std::filesystem::temp_directory_path().string(), "is a directory");
  expect_load_error("/dev/zero", "not a regular file");
}

// Weights that cannot fit are refused before the allocation, naming their size.
TEST(Checkpoint, WeightsLargerThanTheMachineAreRefusedUpFront) {
  try {
    make_model(testing::config_beyond_any_memory());
    FAIL() << "expected kvc::Error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("the weights need"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("more than this machine's"), std::string::npos)
        << e.what();
  }
}

TEST(ModelConfig, ParameterCountOfStories260K) {
  ModelConfig c{64, 172, 5, 8, 4, 512, 512, true};
  // embedding 32768 + 5 layers x (128 + 8192 + 4096 + 33024) + final 64
  EXPECT_EQ(c.num_parameters(), 32768 + 5 * (128 + 8192 + 4096 + 33024) + 64);
  EXPECT_EQ(c.kv_group_size(), 2);
  EXPECT_EQ(c.kv_dim(), 32);
}

}  // namespace
}  // namespace kvc
