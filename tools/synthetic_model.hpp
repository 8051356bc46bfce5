// Deterministic random-weight checkpoints and tokenizers of any Llama shape.
//
// A synthetic model lets memory and speed be measured at real model scale (a
// Llama-3-8B-shaped layer stack, cut to two layers) without a download, and
// lets the default demo run on a fresh machine. Its weights are random but
// reproducible: the same config and seed give the same bytes on every machine
// and for every thread count.
#pragma once

#include <cstdint>
#include <span>
#include <string_view>

#include "common/checkpoint.hpp"
#include "common/config.hpp"
#include "common/tokenizer.hpp"

namespace kvc {

struct SyntheticPreset {
  std::string_view name;
  std::string_view description;
  ModelConfig config;
};

// Every preset, smallest first.
std::span<const SyntheticPreset> synthetic_presets();

// Throws kvc::Error listing the known names when `name` is not a preset.
const SyntheticPreset& find_synthetic_preset(std::string_view name);

// A model of shape `config` with weights drawn from `seed`:
//   rms_att, rms_ffn, rms_final  1.0 (the identity scale)
//   wq wk wv wo w1 w2 w3         uniform, variance 1 / fan_in: each projection
//                                keeps its input's scale, so activations stay
//                                sane however wide or deep the model is
//   token_embedding, classifier  uniform, variance 4 / dim: logits (the final
//                                unit-RMS x dotted with a row) have std 2
// Greedy decoding of such a model soon falls into a loop; sampled text varies.
// Each tensor has its own stream, keyed by (seed, tensor, layer), so layer 0
// of a 2-layer model equals layer 0 of a 4-layer model with the same seed.
// Memory: the model's own storage only (no staging copies). `num_threads` <= 0
// means all hardware threads; it changes the speed, never the weights.
Model make_synthetic_model(const ModelConfig& config, std::uint64_t seed, int num_threads = 0);

// Pieces and scores of a tokenizer for a synthetic model, in llama2.c's layout:
//   0..2      "<unk>", "\n<s>\n", "\n</s>\n"
//   3..258    byte fallback "<0x00>".."<0xFF>"
//   259..353  the printable ASCII characters " ".."~" (so every ASCII text
//             encodes without byte fallback, and encode's dummy space exists)
//   354..     word-like filler: common English words and generated syllables,
//             each built so it is the concatenation of two earlier pieces
//             (so greedy merging can reach it), until vocab_size pieces.
// Scores fall with the id (earlier pieces merge first), as in SentencePiece.
// All pieces are unique. Throws kvc::Error when vocab_size < kMinSyntheticVocabSize.
Tokenizer make_synthetic_tokenizer(int vocab_size);

inline constexpr int kMinSyntheticVocabSize = 3 + 256 + 95;  // specials + bytes + ASCII

}  // namespace kvc
