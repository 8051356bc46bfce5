#include "common/checkpoint.hpp"

#include <array>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "common/check.hpp"
#include "common/output_file.hpp"

namespace kvc {
namespace {

constexpr std::uint32_t kVersion1Magic = 0x616b3432;  // "ak42" read as a little-endian uint32
constexpr std::size_t kLegacyHeaderBytes = 7 * sizeof(std::int32_t);
constexpr std::size_t kVersion1HeaderBytes = 256;

enum Tensor {
  kEmbedding,
  kRmsAtt,
  kWq,
  kWk,
  kWv,
  kWo,
  kRmsFfn,
  kW1,
  kW2,
  kW3,
  kRmsFinal,
  kClassifier,
  kNumTensors
};
// Model::storage keeps the legacy order; version 1 writes the same tensors grouped differently.
constexpr std::array<Tensor, kNumTensors> kLegacyOrder = {
    kEmbedding, kRmsAtt, kWq, kWk, kWv, kWo, kRmsFfn, kW1, kW2, kW3, kRmsFinal, kClassifier};
constexpr std::array<Tensor, kNumTensors> kVersion1Order = {
    kRmsAtt, kRmsFfn, kRmsFinal, kEmbedding, kWq, kWk, kWv, kWo, kW1, kW2, kW3, kClassifier};

// Number of floats in each tensor (all layers together); 0 for a shared classifier.
std::array<std::size_t, kNumTensors> tensor_sizes(const ModelConfig& c) {
  const std::size_t d = c.dim, h = c.hidden_dim, L = c.n_layers, kv = c.kv_dim(), V = c.vocab_size;
  std::array<std::size_t, kNumTensors> sizes{};
  sizes[kEmbedding] = V * d;
  sizes[kRmsAtt] = L * d;
  sizes[kWq] = L * d * d;
  sizes[kWk] = L * kv * d;
  sizes[kWv] = L * kv * d;
  sizes[kWo] = L * d * d;
  sizes[kRmsFfn] = L * d;
  sizes[kW1] = L * h * d;
  sizes[kW2] = L * d * h;
  sizes[kW3] = L * h * d;
  sizes[kRmsFinal] = d;
  sizes[kClassifier] = c.shared_classifier ? 0 : V * d;
  return sizes;
}

// Offset of each tensor inside Model::storage.
std::array<std::size_t, kNumTensors> storage_offsets(const ModelConfig& c) {
  const auto sizes = tensor_sizes(c);
  std::array<std::size_t, kNumTensors> offsets{};
  std::size_t offset = 0;
  for (Tensor t : kLegacyOrder) {
    offsets[t] = offset;
    offset += sizes[t];
  }
  return offsets;
}

// Legacy files carry precomputed RoPE tables, [seq_len][head_dim/2] cos then sin; nobody reads
// them.
std::size_t legacy_rope_table_floats(const ModelConfig& c) {
  return static_cast<std::size_t>(c.seq_len) * c.head_dim();
}

void bind_pointers(Model& m) {
  const ModelConfig& c = m.config;
  const auto offsets = storage_offsets(c);
  const float* base = m.storage.data();
  const std::size_t d = c.dim, h = c.hidden_dim, kv = c.kv_dim();
  m.token_embedding = base + offsets[kEmbedding];
  m.rms_final = base + offsets[kRmsFinal];
  m.classifier = c.shared_classifier ? m.token_embedding : base + offsets[kClassifier];
  m.layers.resize(c.n_layers);
  for (std::size_t l = 0; l < m.layers.size(); ++l) {
    LayerWeights& w = m.layers[l];
    w.rms_att = base + offsets[kRmsAtt] + l * d;
    w.wq = base + offsets[kWq] + l * d * d;
    w.wk = base + offsets[kWk] + l * kv * d;
    w.wv = base + offsets[kWv] + l * kv * d;
    w.wo = base + offsets[kWo] + l * d * d;
    w.rms_ffn = base + offsets[kRmsFfn] + l * d;
    w.w1 = base + offsets[kW1] + l * h * d;
    w.w2 = base + offsets[kW2] + l * d * h;
    w.w3 = base + offsets[kW3] + l * h * d;
  }
}

void read_exact(std::ifstream& in, void* dst, std::size_t bytes, const std::string& path) {
  in.read(static_cast<char*>(dst), static_cast<std::streamsize>(bytes));
  KVC_CHECK(in.good(), "checkpoint '", path, "': read failed (file changed while loading?)");
}

// The seven header ints shared by both formats.
ModelConfig config_from_header(const std::array<std::int32_t, 7>& h) {
  ModelConfig c;
  c.dim = h[0];
  c.hidden_dim = h[1];
  c.n_layers = h[2];
  c.n_heads = h[3];
  c.n_kv_heads = h[4];
  c.vocab_size = h[5];
  c.seq_len = h[6];
  return c;
}

std::array<std::int32_t, 7> header_from_config(const ModelConfig& c, int vocab_field) {
  return {c.dim, c.hidden_dim, c.n_layers, c.n_heads, c.n_kv_heads, vocab_field, c.seq_len};
}

}  // namespace

Model make_model(const ModelConfig& config) {
  validate(config);
  Model m;
  m.config = config;
  const auto sizes = tensor_sizes(config);
  std::size_t total = 0;
  for (std::size_t s : sizes) total += s;
  m.storage.assign(total, 0.0f);
  bind_pointers(m);
  return m;
}

std::span<float> writable(Model& model, const float* tensor, std::size_t count) {
  const auto offset = static_cast<std::size_t>(tensor - model.storage.data());
  KVC_CHECK(offset + count <= model.storage.size(), "writable: tensor outside the model's storage");
  return std::span<float>(model.storage).subspan(offset, count);
}

std::size_t checkpoint_file_size(const ModelConfig& config, CheckpointFormat format) {
  std::size_t floats = 0;
  for (std::size_t s : tensor_sizes(config)) floats += s;
  if (format == CheckpointFormat::kLegacy) {
    return kLegacyHeaderBytes + (floats + legacy_rope_table_floats(config)) * sizeof(float);
  }
  return kVersion1HeaderBytes + floats * sizeof(float);
}

Model load_checkpoint(const std::string& path) {
  std::error_code ec;
  const auto file_bytes = std::filesystem::file_size(path, ec);
  KVC_CHECK(!ec, "checkpoint '", path, "': cannot open (", ec.message(), ")");
  KVC_CHECK(file_bytes >= kLegacyHeaderBytes, "checkpoint '", path, "': file is ", file_bytes,
            " bytes, too small to hold a header");
  std::ifstream in(path, std::ios::binary);
  KVC_CHECK(in.is_open(), "checkpoint '", path, "': cannot open for reading");

  std::uint32_t magic = 0;
  read_exact(in, &magic, sizeof(magic), path);
  const CheckpointFormat format =
      magic == kVersion1Magic ? CheckpointFormat::kVersion1 : CheckpointFormat::kLegacy;

  std::array<std::int32_t, 7> header{};
  ModelConfig config;
  if (format == CheckpointFormat::kVersion1) {
    KVC_CHECK(file_bytes >= kVersion1HeaderBytes, "checkpoint '", path,
              "': version-1 header is truncated (", file_bytes, " bytes)");
    std::int32_t version = 0;
    read_exact(in, &version, sizeof(version), path);
    KVC_CHECK(version == 1, "checkpoint '", path, "': unsupported version ", version,
              " (only fp32 version 1 and the legacy format are supported)");
    read_exact(in, header.data(), sizeof(header), path);
    std::uint8_t shared = 0;
    read_exact(in, &shared, sizeof(shared), path);
    KVC_CHECK(shared <= 1, "checkpoint '", path, "': corrupt shared_classifier flag ", int{shared});
    config = config_from_header(header);
    config.shared_classifier = shared == 1;
    in.seekg(kVersion1HeaderBytes);
  } else {
    in.seekg(0);
    read_exact(in, header.data(), sizeof(header), path);
    config = config_from_header(header);
    // llama2.c's convention: a negative vocab_size means the classifier has its own weights.
    config.shared_classifier = config.vocab_size > 0;
    config.vocab_size = std::abs(config.vocab_size);
  }

  // Bound the header before any size arithmetic so a corrupt file cannot overflow it.
  constexpr int kMaxDim = 1 << 20;
  for (int v : header) {
    KVC_CHECK(std::abs(v) <= kMaxDim * 4, "checkpoint '", path,
              "': header value out of range, not a llama2.c checkpoint? (", describe(config), ")");
  }
  try {
    validate(config);
  } catch (const Error& e) {
    KVC_FAIL("checkpoint '", path, "': ", e.what());
  }
  const std::size_t expected = checkpoint_file_size(config, format);
  KVC_CHECK(file_bytes == expected, "checkpoint '", path, "': file is ", file_bytes,
            " bytes but its header (", describe(config), ", ",
            config.shared_classifier ? "shared" : "separate", " classifier) needs ", expected,
            file_bytes < expected ? " (truncated?)" : " (trailing data?)");

  Model m = make_model(config);
  const auto sizes = tensor_sizes(config);
  const auto offsets = storage_offsets(config);
  const auto& order = format == CheckpointFormat::kLegacy ? kLegacyOrder : kVersion1Order;
  for (Tensor t : order) {
    if (format == CheckpointFormat::kLegacy && t == kClassifier) {
      in.seekg(static_cast<std::streamoff>(legacy_rope_table_floats(config) * sizeof(float)),
               std::ios::cur);
    }
    read_exact(in, m.storage.data() + offsets[t], sizes[t] * sizeof(float), path);
  }
  return m;
}

void save_checkpoint(const std::string& path, const Model& model, CheckpointFormat format) {
  const ModelConfig& c = model.config;
  OutputFile out(path);  // a temporary file renamed into place: never half-written

  if (format == CheckpointFormat::kVersion1) {
    std::array<char, kVersion1HeaderBytes> header{};
    const std::int32_t version = 1;
    const auto ints = header_from_config(c, c.vocab_size);
    const std::uint8_t shared = c.shared_classifier ? 1 : 0;
    std::memcpy(header.data(), &kVersion1Magic, 4);
    std::memcpy(header.data() + 4, &version, 4);
    std::memcpy(header.data() + 8, ints.data(), sizeof(ints));
    std::memcpy(header.data() + 8 + sizeof(ints), &shared, 1);
    out.write(header.data(), header.size());
  } else {
    const auto ints = header_from_config(c, c.shared_classifier ? c.vocab_size : -c.vocab_size);
    out.write(ints.data(), sizeof(ints));
  }

  const auto sizes = tensor_sizes(c);
  const auto offsets = storage_offsets(c);
  const auto& order = format == CheckpointFormat::kLegacy ? kLegacyOrder : kVersion1Order;
  for (Tensor t : order) {
    if (format == CheckpointFormat::kLegacy && t == kClassifier) {
      // Fill the legacy RoPE tables with their true values so llama2.c-era tools see a valid file.
      const int half = c.head_dim() / 2;
      std::vector<float> cos_table, sin_table;
      for (int pos = 0; pos < c.seq_len; ++pos) {
        for (int j = 0; j < half; ++j) {
          const float freq = 1.0f / std::pow(10000.0f, 2.0f * j / c.head_dim());
          cos_table.push_back(std::cos(pos * freq));
          sin_table.push_back(std::sin(pos * freq));
        }
      }
      out.write(cos_table.data(), cos_table.size() * sizeof(float));
      out.write(sin_table.data(), sin_table.size() * sizeof(float));
    }
    out.write(model.storage.data() + offsets[t], sizes[t] * sizeof(float));
  }
  out.commit();
}

}  // namespace kvc
