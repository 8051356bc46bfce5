#include "common/checkpoint.hpp"

#include <algorithm>
#include <array>
#include <climits>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "common/check.hpp"
#include "common/checked_math.hpp"
#include "common/kv_memory.hpp"
#include "common/output_file.hpp"
#include "common/report.hpp"

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
// validate() bounds every field so these fit in 64 bits; the checks keep that true
// if a limit is ever raised.
std::array<std::size_t, kNumTensors> tensor_sizes(const ModelConfig& c) {
  const std::size_t d = c.dim, h = c.hidden_dim, L = c.n_layers, kv = c.kv_dim(), V = c.vocab_size;
  const auto mul = [](std::size_t a, std::size_t b) {
    return checked_mul(a, b, "checkpoint tensor size");
  };
  std::array<std::size_t, kNumTensors> sizes{};
  sizes[kEmbedding] = mul(V, d);
  sizes[kRmsAtt] = mul(L, d);
  sizes[kWq] = mul(L, mul(d, d));
  sizes[kWk] = mul(L, mul(kv, d));
  sizes[kWv] = sizes[kWk];
  sizes[kWo] = sizes[kWq];
  sizes[kRmsFfn] = sizes[kRmsAtt];
  sizes[kW1] = mul(L, mul(h, d));
  sizes[kW2] = sizes[kW1];
  sizes[kW3] = sizes[kW1];
  sizes[kRmsFinal] = d;
  sizes[kClassifier] = c.shared_classifier ? 0 : sizes[kEmbedding];
  return sizes;
}

std::size_t total_floats(const ModelConfig& c) {
  std::size_t total = 0;
  for (std::size_t s : tensor_sizes(c)) total = checked_add(total, s, "checkpoint size");
  return total;
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
  return checked_mul<std::size_t>(c.seq_len, c.head_dim(), "legacy RoPE table size");
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
  // Refused up front, naming the size: allocating more than the machine has
  // would page for a long time and then die with "out of memory".
  const std::size_t floats = total_floats(config);
  const double bytes = static_cast<double>(floats) * sizeof(float);
  const auto memory = static_cast<double>(host_memory_bytes());
  KVC_CHECK(bytes <= memory, "model: the weights need ", format_bytes(bytes), " (",
            describe(config), "), more than this machine's ", format_bytes(memory), " of memory");
  Model m;
  m.config = config;
  m.storage.assign(floats, 0.0f);
  bind_pointers(m);
  return m;
}

std::span<float> writable(Model& model, const float* tensor, std::size_t count) {
  const auto offset = static_cast<std::size_t>(tensor - model.storage.data());
  KVC_CHECK(offset + count <= model.storage.size(), "writable: tensor outside the model's storage");
  return std::span<float>(model.storage).subspan(offset, count);
}

std::size_t checkpoint_file_size(const ModelConfig& config, CheckpointFormat format) {
  std::size_t floats = total_floats(config);
  std::size_t header = kVersion1HeaderBytes;
  if (format == CheckpointFormat::kLegacy) {
    floats = checked_add(floats, legacy_rope_table_floats(config), "checkpoint size");
    header = kLegacyHeaderBytes;
  }
  return checked_add(header, checked_mul(floats, sizeof(float), "checkpoint size"),
                     "checkpoint size");
}

CheckpointHeader parse_checkpoint_header(std::string_view head, std::uint64_t file_bytes,
                                         const std::string& name) {
  KVC_CHECK(file_bytes >= kLegacyHeaderBytes && head.size() >= kLegacyHeaderBytes, "checkpoint '",
            name, "': file is ", file_bytes, " bytes, too small to hold a header");
  std::uint32_t magic = 0;
  std::memcpy(&magic, head.data(), sizeof(magic));
  CheckpointHeader parsed;
  parsed.format = magic == kVersion1Magic ? CheckpointFormat::kVersion1 : CheckpointFormat::kLegacy;

  std::array<std::int32_t, 7> fields{};
  if (parsed.format == CheckpointFormat::kVersion1) {
    KVC_CHECK(file_bytes >= kVersion1HeaderBytes && head.size() >= kVersion1HeaderBytes,
              "checkpoint '", name, "': version-1 header is truncated (", file_bytes, " bytes)");
    std::int32_t version = 0;
    std::memcpy(&version, head.data() + 4, sizeof(version));
    KVC_CHECK(version == 1, "checkpoint '", name, "': unsupported version ", version,
              " (only fp32 version 1 and the legacy format are supported)");
    std::memcpy(fields.data(), head.data() + 8, sizeof(fields));
    const auto shared = static_cast<std::uint8_t>(head[8 + sizeof(fields)]);
    KVC_CHECK(shared <= 1, "checkpoint '", name, "': corrupt shared_classifier flag ", int{shared});
    parsed.config = config_from_header(fields);
    parsed.config.shared_classifier = shared == 1;
  } else {
    std::memcpy(fields.data(), head.data(), sizeof(fields));
    parsed.config = config_from_header(fields);
    // llama2.c's convention: a negative vocab_size means the classifier has its own weights.
    // INT32_MIN has no positive counterpart; it stays negative and fails validate().
    parsed.config.shared_classifier = fields[5] > 0;
    if (fields[5] < 0 && fields[5] != INT32_MIN) parsed.config.vocab_size = -fields[5];
  }
  try {
    validate(parsed.config);
  } catch (const Error& e) {
    KVC_FAIL("checkpoint '", name, "': ", e.what(), ", not a llama2.c checkpoint?");
  }
  const std::size_t expected = checkpoint_file_size(parsed.config, parsed.format);
  KVC_CHECK(file_bytes == expected, "checkpoint '", name, "': header (", describe(parsed.config),
            ", ", parsed.config.shared_classifier ? "shared" : "separate", " classifier) implies ",
            expected, " bytes, file has ", file_bytes,
            file_bytes < expected ? " (truncated?)" : " (trailing data?)");
  return parsed;
}

namespace {

// Reads every tensor of `m` in the file order of `format`. read(dst, bytes)
// fills dst from the next bytes; skip(bytes) passes over bytes nobody uses.
template <typename Read, typename Skip>
void read_tensors(Model& m, CheckpointFormat format, Read read, Skip skip) {
  const auto sizes = tensor_sizes(m.config);
  const auto offsets = storage_offsets(m.config);
  const auto& order = format == CheckpointFormat::kLegacy ? kLegacyOrder : kVersion1Order;
  for (Tensor t : order) {
    if (format == CheckpointFormat::kLegacy && t == kClassifier) {
      skip(legacy_rope_table_floats(m.config) * sizeof(float));
    }
    read(m.storage.data() + offsets[t], sizes[t] * sizeof(float));
  }
}

std::size_t header_bytes(CheckpointFormat format) {
  return format == CheckpointFormat::kLegacy ? kLegacyHeaderBytes : kVersion1HeaderBytes;
}

}  // namespace

Model load_checkpoint_bytes(std::string_view bytes, const std::string& name) {
  const CheckpointHeader header = parse_checkpoint_header(
      bytes.substr(0, std::min(bytes.size(), kVersion1HeaderBytes)), bytes.size(), name);
  Model m = make_model(header.config);
  // parse_checkpoint_header checked that bytes.size() is exactly what the tensors need.
  std::size_t at = header_bytes(header.format);
  read_tensors(
      m, header.format,
      [&](float* dst, std::size_t n) {
        std::memcpy(dst, bytes.data() + at, n);
        at += n;
      },
      [&](std::size_t n) { at += n; });
  return m;
}

Model load_checkpoint(const std::string& path) {
  std::error_code ec;
  const auto status = std::filesystem::status(path, ec);
  KVC_CHECK(!ec, "checkpoint '", path, "': cannot open (", ec.message(), ")");
  KVC_CHECK(!std::filesystem::is_directory(status), "checkpoint '", path, "': is a directory");
  // The loader reads by the size the file reports: a device or pipe has none.
  KVC_CHECK(std::filesystem::is_regular_file(status), "checkpoint '", path,
            "': not a regular file");
  const auto file_bytes = std::filesystem::file_size(path, ec);
  KVC_CHECK(!ec, "checkpoint '", path, "': cannot open (", ec.message(), ")");
  std::ifstream in(path, std::ios::binary);
  KVC_CHECK(in.is_open(), "checkpoint '", path, "': cannot open for reading");

  std::string head(std::min<std::uintmax_t>(file_bytes, kVersion1HeaderBytes), '\0');
  read_exact(in, head.data(), head.size(), path);
  const CheckpointHeader header = parse_checkpoint_header(head, file_bytes, path);
  // Only now, with the size checked against the file, is the allocation known to be sane.
  Model m = make_model(header.config);
  in.seekg(static_cast<std::streamoff>(header_bytes(header.format)));
  read_tensors(
      m, header.format, [&](float* dst, std::size_t n) { read_exact(in, dst, n, path); },
      [&](std::size_t n) { in.seekg(static_cast<std::streamoff>(n), std::ios::cur); });
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
