#include "tools/synthetic_model.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <span>
#include <string>
#include <unordered_set>
#include <vector>

#include "common/check.hpp"
#include "common/thread_pool.hpp"

namespace kvc {
namespace {

// ---- presets ----------------------------------------------------------------

ModelConfig shape(int dim, int hidden_dim, int n_layers, int n_heads, int n_kv_heads,
                  int vocab_size, int seq_len) {
  return ModelConfig{.dim = dim,
                     .hidden_dim = hidden_dim,
                     .n_layers = n_layers,
                     .n_heads = n_heads,
                     .n_kv_heads = n_kv_heads,
                     .vocab_size = vocab_size,
                     .seq_len = seq_len,
                     .shared_classifier = true};
}

const std::array kPresets = {
    SyntheticPreset{"tiny", "unit tests: stories260K-like, GQA 2:1",
                    shape(64, 172, 2, 8, 4, 512, 256)},
    SyntheticPreset{"tour", "the default demo, ~3M params", shape(256, 688, 4, 8, 4, 512, 512)},
    SyntheticPreset{"15m", "stories15M shape", shape(288, 768, 6, 6, 6, 32000, 256)},
    SyntheticPreset{"110m", "stories110M shape", shape(768, 2048, 12, 12, 12, 32000, 1024)},
    SyntheticPreset{"llama2-7b-2l", "Llama-2-7B shape, 2 of 32 layers",
                    shape(4096, 11008, 2, 32, 32, 32000, 4096)},
    SyntheticPreset{"llama3-8b-2l", "Llama-3-8B shape, 2 of 32 layers",
                    shape(4096, 14336, 2, 32, 8, 128256, 8192)},
};

// ---- scales ----------------------------------------------------------------------

// Spread of the logits of a fresh model. Much above 2, a shared embedding makes
// each token predict itself ("time time time ..."): x . e_x outgrows every other
// logit. Near zero, sampling is a coin toss over the whole vocabulary.
constexpr double kLogitStd = 2.0;

// The bound b of uniform(-b, b) with the given variance (b^2 / 3).
float uniform_bound(double variance) {
  return static_cast<float>(std::sqrt(3 * variance));
}

// ---- counter-based random numbers --------------------------------------------
//
// splitmix64 steps its state by a constant gamma and mixes it, so its i-th
// output is a pure function of (start, i). Computing it directly lets any
// thread fill any slice of a tensor and still produce the same bytes.

constexpr std::uint64_t kGamma = 0x9E3779B97F4A7C15ULL;

std::uint64_t mix64(std::uint64_t z) {
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

// Uniform in [-1, 1): the top 24 bits give an exactly representable float.
float uniform_pm1(std::uint64_t stream, std::int64_t index) {
  const std::uint64_t bits = mix64(stream + (static_cast<std::uint64_t>(index) + 1) * kGamma);
  return static_cast<float>(bits >> 40) * (2.0f / 16777216.0f) - 1.0f;
}

// Which tensor a stream belongs to; the values are part of the file format of
// generated models, so they never change.
enum class TensorTag : std::uint64_t {
  kTokenEmbedding = 1,
  kWq,
  kWk,
  kWv,
  kWo,
  kW1,
  kW2,
  kW3,
  kClassifier,
};

std::uint64_t stream_for(std::uint64_t seed, TensorTag tag, int layer) {
  const std::uint64_t tensor_id =
      (static_cast<std::uint64_t>(tag) << 32) | static_cast<std::uint32_t>(layer);
  return mix64(mix64(seed) + tensor_id * kGamma);
}

void fill_uniform(ThreadPool& pool, std::span<float> tensor, std::uint64_t stream, float scale) {
  pool.parallel_for(static_cast<std::int64_t>(tensor.size()),
                    [&](std::int64_t begin, std::int64_t end) {
                      for (std::int64_t i = begin; i < end; ++i) {
                        tensor[i] = scale * uniform_pm1(stream, i);
                      }
                    });
}

void fill_constant(std::span<float> tensor, float value) {
  std::fill(tensor.begin(), tensor.end(), value);
}

// ---- vocabulary -----------------------------------------------------------------

// Words of the TinyStories world, so small vocabularies decode to English-like text.
constexpr std::array kCommonWords = {
    "the",  "and",  "was",   "to",    "a",      "he",    "she",    "it",     "they",    "said",
    "her",  "his",  "with",  "in",    "on",     "of",    "you",    "that",   "for",     "day",
    "Once", "upon", "time",  "there", "little", "girl",  "boy",    "named",  "Lily",    "Tim",
    "Ben",  "big",  "happy", "play",  "played", "saw",   "mom",    "friend", "friends", "wanted",
    "very", "park", "went",  "had",   "is",     "were",  "not",    "but",    "so",      "The",
    "One",  "He",   "She",   "They",  "It",     "ball",  "tree",   "dog",    "cat",     "bird",
    "sun",  "fun",  "sad",   "help",  "looked", "asked", "smiled", "loved",  "toy",     "home",
    "go",   "do",   "can",   "what",  "all",    "be",    "are",    "at",     "up",      "out",
    "an",   "too",  "new",   "red",   "blue",   "good",  "nice",   "each",   "other",   "thank",
};

constexpr std::array kOnsets = {"",   "b",  "c",  "d",  "f",  "g",  "h",  "j",  "k",   "l",  "m",
                                "n",  "p",  "r",  "s",  "t",  "v",  "w",  "y",  "z",   "bl", "br",
                                "ch", "cl", "cr", "dr", "fl", "fr", "gl", "gr", "pl",  "pr", "sh",
                                "sk", "sl", "sm", "sn", "sp", "st", "th", "tr", "str", "wh"};
constexpr std::array kVowels = {"a", "e", "i", "o", "u", "ai", "ea", "ee", "oo", "ou", "ay", "ow"};
constexpr std::array kCodas = {"",  "b",  "d",  "ck", "ft", "g",  "k", "l", "ll",
                               "m", "n",  "nd", "ng", "nk", "nt", "p", "r", "rt",
                               "s", "sh", "ss", "st", "t",  "th", "x"};

// Appends unique pieces until the vocabulary is full.
class VocabularyBuilder {
 public:
  explicit VocabularyBuilder(int vocab_size) : vocab_size_(vocab_size) {
    pieces_.reserve(vocab_size);
  }

  bool full() const { return static_cast<int>(pieces_.size()) == vocab_size_; }

  void add(std::string piece) {
    if (full() || !seen_.insert(piece).second) return;
    pieces_.push_back(std::move(piece));
  }

  // Adds every prefix of `word` of two or more characters, shortest first, so
  // each one is an earlier piece plus one character: greedy merging reaches it.
  void add_with_prefixes(const std::string& word) {
    for (std::size_t length = 2; length <= word.size(); ++length) add(word.substr(0, length));
  }

  std::vector<std::string> take() { return std::move(pieces_); }

 private:
  int vocab_size_;
  std::vector<std::string> pieces_;
  std::unordered_set<std::string> seen_;
};

std::vector<std::string> syllables() {
  std::vector<std::string> result;
  for (const char* onset : kOnsets) {
    for (const char* vowel : kVowels) {
      for (const char* coda : kCodas) result.push_back(std::string(onset) + vowel + coda);
    }
  }
  return result;
}

std::vector<std::string> synthetic_pieces(int vocab_size) {
  VocabularyBuilder vocabulary(vocab_size);
  vocabulary.add("<unk>");
  vocabulary.add("\n<s>\n");
  vocabulary.add("\n</s>\n");
  for (int byte = 0; byte < 256; ++byte) {
    char piece[8];
    std::snprintf(piece, sizeof piece, "<0x%02X>", byte);
    vocabulary.add(piece);
  }
  for (char c = ' '; c <= '~'; ++c) vocabulary.add(std::string(1, c));

  for (const char* word : kCommonWords) vocabulary.add_with_prefixes(std::string(" ") + word);
  const std::vector<std::string> syllable_list = syllables();
  for (const std::string& syllable : syllable_list) {
    vocabulary.add_with_prefixes(" " + syllable);
    vocabulary.add_with_prefixes(syllable);
  }
  // Two-syllable words, walking the (first, second) grid by anti-diagonals so
  // a vocabulary that stops early still mixes many first syllables. Each one is
  // an earlier piece (" " + first, or first) followed by another (second).
  const int count = static_cast<int>(syllable_list.size());
  for (int diagonal = 0; diagonal <= 2 * (count - 1) && !vocabulary.full(); ++diagonal) {
    for (int first = std::max(0, diagonal - count + 1); first <= std::min(diagonal, count - 1);
         ++first) {
      const std::string word = syllable_list[first] + syllable_list[diagonal - first];
      vocabulary.add(" " + word);
      vocabulary.add(word);
    }
  }
  KVC_CHECK(vocabulary.full(), "synthetic tokenizer: cannot make ", vocab_size, " unique pieces");
  return vocabulary.take();
}

}  // namespace

std::span<const SyntheticPreset> synthetic_presets() {
  return kPresets;
}

const SyntheticPreset& find_synthetic_preset(std::string_view name) {
  std::string known;
  for (const SyntheticPreset& preset : kPresets) {
    if (preset.name == name) return preset;
    known += known.empty() ? "" : ", ";
    known += preset.name;
  }
  KVC_FAIL("unknown preset '", name, "' (known: ", known, ")");
}

Model make_synthetic_model(const ModelConfig& config, std::uint64_t seed, int num_threads) {
  validate(config);
  Model model = make_model(config);
  ThreadPool pool(num_threads);

  const std::int64_t dim = config.dim;
  const std::int64_t kv_dim = config.kv_dim();
  const std::int64_t hidden_dim = config.hidden_dim;
  const float dim_bound = uniform_bound(1.0 / dim);
  const float hidden_bound = uniform_bound(1.0 / hidden_dim);
  const float embedding_bound = uniform_bound(kLogitStd * kLogitStd / dim);

  fill_uniform(pool, writable(model, model.token_embedding, config.vocab_size * dim),
               stream_for(seed, TensorTag::kTokenEmbedding, 0), embedding_bound);
  for (int l = 0; l < config.n_layers; ++l) {
    const LayerWeights& layer = model.layers[l];
    const auto fill = [&](const float* tensor, std::int64_t count, TensorTag tag, float scale) {
      fill_uniform(pool, writable(model, tensor, count), stream_for(seed, tag, l), scale);
    };
    fill_constant(writable(model, layer.rms_att, dim), 1.0f);
    fill(layer.wq, dim * dim, TensorTag::kWq, dim_bound);
    fill(layer.wk, kv_dim * dim, TensorTag::kWk, dim_bound);
    fill(layer.wv, kv_dim * dim, TensorTag::kWv, dim_bound);
    fill(layer.wo, dim * dim, TensorTag::kWo, dim_bound);
    fill_constant(writable(model, layer.rms_ffn, dim), 1.0f);
    fill(layer.w1, hidden_dim * dim, TensorTag::kW1, dim_bound);
    fill(layer.w2, dim * hidden_dim, TensorTag::kW2, hidden_bound);
    fill(layer.w3, hidden_dim * dim, TensorTag::kW3, dim_bound);
  }
  fill_constant(writable(model, model.rms_final, dim), 1.0f);
  if (!config.shared_classifier) {
    fill_uniform(pool, writable(model, model.classifier, config.vocab_size * dim),
                 stream_for(seed, TensorTag::kClassifier, 0), embedding_bound);
  }
  return model;
}

Tokenizer make_synthetic_tokenizer(int vocab_size) {
  KVC_CHECK(vocab_size >= kMinSyntheticVocabSize, "synthetic tokenizer: vocab_size ", vocab_size,
            " is below the minimum ", kMinSyntheticVocabSize,
            " (specials, byte fallback and printable ASCII)");
  std::vector<std::string> pieces = synthetic_pieces(vocab_size);
  // SentencePiece-style scores: specials and byte pieces 0, then falling with
  // the id, so earlier (more common) pieces win merges.
  constexpr int kFirstScoredId = 3 + 256;
  std::vector<float> scores(pieces.size(), 0.0f);
  for (std::size_t id = kFirstScoredId; id < pieces.size(); ++id) {
    scores[id] = -static_cast<float>(id - kFirstScoredId);
  }
  return Tokenizer(std::move(pieces), std::move(scores));
}

}  // namespace kvc
