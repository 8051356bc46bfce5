// llama2.c's tokenizer.bin: a SentencePiece-style vocabulary with merge scores.
//
// File layout: int32 max_token_length, then for each of vocab_size tokens:
//   float score, int32 length, `length` bytes (the piece, not NUL-terminated).
// Ids 0, 1, 2 are <unk>, <s> (BOS), </s> (EOS); 3..258 are the byte-fallback
// pieces "<0x00>".."<0xFF>".
#pragma once

#include <cstddef>
#include <functional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace kvc {

inline constexpr int kBosToken = 1;
inline constexpr int kEosToken = 2;
// Ids below this are <unk>, <s>, </s>: a vocabulary needs at least these three.
inline constexpr int kFirstOrdinaryToken = 3;

class Tokenizer {
 public:
  // The most a tokenizer file may hold (the 32K vocabulary is ~430 KB): a
  // loader never reads /dev/zero until memory runs out.
  static constexpr std::size_t kMaxFileBytes = std::size_t{64} << 20;

  // Reads `path`, expecting exactly `vocab_size` tokens. Throws kvc::Error with
  // a one-line reason on a missing, empty, truncated, oversized or inconsistent
  // file, a directory, vocab_size < 3 or a score that is NaN or infinite.
  Tokenizer(const std::string& path, int vocab_size);
  // The same from the file's bytes; `name` stands for the path in messages.
  static Tokenizer from_bytes(std::string_view bytes, int vocab_size, const std::string& name);
  // Builds a tokenizer from pieces and scores directly (used by the synthetic
  // model generator and by tests). Throws kvc::Error on fewer than 3 pieces or
  // a score that is not finite.
  Tokenizer(std::vector<std::string> pieces, std::vector<float> scores);

  int vocab_size() const { return static_cast<int>(pieces_.size()); }
  const std::string& piece(int id) const { return pieces_.at(id); }
  float score(int id) const { return scores_.at(id); }
  int max_token_length() const { return max_token_length_; }

  // llama2.c's encode(): optional BOS, a dummy-space piece when text is not
  // empty, UTF-8 code points looked up (byte fallback: byte + 3), then greedy
  // merging of the adjacent pair whose merged piece has the highest score
  // (first such pair on ties), optional EOS. The same tokens as llama2.c's
  // quadratic loop, in O(n log n).
  std::vector<int> encode(std::string_view text, bool bos, bool eos) const;

  // llama2.c's decode(): the piece for `token` after `prev_token`; a piece after
  // BOS loses its leading space, "<0xNN>" becomes that raw byte.
  std::string decode(int prev_token, int token) const;

  // llama2.c's safe_printf rule: false for an empty piece, or a one-byte piece
  // that is neither printable nor whitespace (stray bytes of split UTF-8).
  static bool is_printable_piece(std::string_view piece);

  // Writes the tokenizer.bin format (round-trips through the constructor) through an
  // OutputFile (common/output_file.hpp): the file appears whole or not at all.
  void save(const std::string& path) const;

  // -1 when `piece` is not in the vocabulary.
  int lookup(std::string_view piece) const;

 private:
  // Hashes std::string and std::string_view alike, so lookup() copies nothing.
  struct PieceHash {
    using is_transparent = void;
    std::size_t operator()(std::string_view piece) const {
      return std::hash<std::string_view>{}(piece);
    }
  };

  void build_index();
  // Appends one token per UTF-8 code point, or one byte-fallback token per byte.
  void append_code_points(std::string_view text, std::vector<int>& tokens) const;
  // Repeatedly merges the adjacent pair whose merged piece scores highest
  // (leftmost on ties), with a priority queue of candidate pairs: O(n log n).
  void merge_pairs(std::vector<int>& tokens) const;

  std::vector<std::string> pieces_;  // pieces_[id]: the token's bytes
  std::vector<float> scores_;        // scores_[id]: merge priority (higher merges first)
  int max_token_length_ = 0;         // longest piece, in bytes
  std::unordered_map<std::string, int, PieceHash, std::equal_to<>> index_;  // piece -> first id
};

}  // namespace kvc
