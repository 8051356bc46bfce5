// llama2.c checkpoints: load (legacy and version-1 fp32 headers) and save.
//
// Legacy header: 7 x int32 {dim, hidden_dim, n_layers, n_heads, n_kv_heads,
// vocab_size, seq_len}; a negative vocab_size means "separate classifier".
// Then fp32 tensors in this order (the order Model::storage also uses):
//   token_embedding [vocab][dim]
//   rms_att         [layers][dim]
//   wq              [layers][dim][dim]        (rows: n_heads * head_dim)
//   wk              [layers][kv_dim][dim]
//   wv              [layers][kv_dim][dim]
//   wo              [layers][dim][dim]
//   rms_ffn         [layers][dim]
//   w1              [layers][hidden_dim][dim] (gate)
//   w2              [layers][dim][hidden_dim] (down)
//   w3              [layers][hidden_dim][dim] (up)
//   rms_final       [dim]
//   (legacy only: freq_cis_real, freq_cis_imag, [seq_len][head_dim/2] each, unused)
//   classifier      [vocab][dim]              (only when not shared)
//
// Version-1 header (256 bytes): uint32 magic 0x616b3432 ("ak42"), int32 version 1,
// the same 7 int32, uint8 shared_classifier, zero padding. Its tensors come
// grouped differently: rms_att, rms_ffn, rms_final, token_embedding, wq, wk,
// wv, wo, w1, w2, w3, [classifier].
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/config.hpp"
#include "common/page_memory.hpp"

namespace kvc {

enum class CheckpointFormat { kLegacy, kVersion1 };

struct LayerWeights {
  const float* rms_att;  // [dim]
  const float* wq;       // [dim][dim]
  const float* wk;       // [kv_dim][dim]
  const float* wv;       // [kv_dim][dim]
  const float* wo;       // [dim][dim]
  const float* rms_ffn;  // [dim]
  const float* w1;       // [hidden_dim][dim]
  const float* w2;       // [dim][hidden_dim]
  const float* w3;       // [hidden_dim][dim]
};

// An fp32 model in memory. The pointers point into `storage`, which is on
// 2 MiB pages (common/page_memory.hpp): a decode step streams every weight.
// A Model can be moved (the buffer moves with it) but not copied.
struct Model {
  ModelConfig config;
  PageFloats storage;              // every tensor, in the legacy order above
  const float* token_embedding{};  // [vocab][dim]
  std::vector<LayerWeights> layers;
  const float* rms_final{};   // [dim]
  const float* classifier{};  // [vocab][dim]; == token_embedding when shared

  Model() = default;
  Model(Model&&) = default;
  Model& operator=(Model&&) = default;
  Model(const Model&) = delete;
  Model& operator=(const Model&) = delete;
};

// Allocates zeroed storage for `config` and sets up the pointers.
Model make_model(const ModelConfig& config);

// The `count` floats of the tensor at `tensor` (one of model's pointers), for
// code that fills or rewrites weights (generators, converters).
std::span<float> writable(Model& model, const float* tensor, std::size_t count);

// Reads a checkpoint, detecting the format from its first bytes. Throws
// kvc::Error with a one-line reason: missing/empty file, a directory, bad magic
// or version, header values outside ModelLimits, or a file size that does not
// match the header ("header implies N bytes, file has M").
Model load_checkpoint(const std::string& path);

// The same from bytes already in memory (fuzzing, tests); `name` stands for
// the path in messages.
Model load_checkpoint_bytes(std::string_view bytes, const std::string& name = "<memory>");

// What a checkpoint's header says, checked: every field within ModelLimits,
// and `file_bytes` exactly the size the header implies. `head` is the file's
// first bytes (at least the header's). Both loaders start here, before any
// allocation. Throws kvc::Error naming `name`.
struct CheckpointHeader {
  ModelConfig config;
  CheckpointFormat format = CheckpointFormat::kLegacy;
};
CheckpointHeader parse_checkpoint_header(std::string_view head, std::uint64_t file_bytes,
                                         const std::string& name);

// Writes `model` in the given format, through an OutputFile (common/output_file.hpp):
// the file appears whole or not at all; throws kvc::Error naming the path and the reason.
void save_checkpoint(const std::string& path, const Model& model, CheckpointFormat format);

// The exact file size a checkpoint of this config and format must have.
std::size_t checkpoint_file_size(const ModelConfig& config, CheckpointFormat format);

}  // namespace kvc
