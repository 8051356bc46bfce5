#include "common/tokenizer.hpp"

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <utility>

#include "common/check.hpp"
#include "common/output_file.hpp"

namespace kvc {

namespace {

// Hands out the fields of a tokenizer file front to back; each read says
// whether the bytes were there.
class FieldReader {
 public:
  explicit FieldReader(std::string_view bytes) : rest_(bytes) {}

  bool at_end() const { return rest_.empty(); }

  template <typename T>
  bool read(T& value) {
    if (rest_.size() < sizeof(T)) return false;
    std::memcpy(&value, rest_.data(), sizeof(T));
    rest_.remove_prefix(sizeof(T));
    return true;
  }

  bool read_piece(std::size_t length, std::string& piece) {
    if (rest_.size() < length) return false;
    piece.assign(rest_.substr(0, length));
    rest_.remove_prefix(length);
    return true;
  }

 private:
  std::string_view rest_;
};

std::string read_whole_file(const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  KVC_CHECK(file, "tokenizer file ", path, ": cannot open it");
  std::string bytes{std::istreambuf_iterator<char>(file), std::istreambuf_iterator<char>()};
  KVC_CHECK(!file.bad(), "tokenizer file ", path, ": read error");
  return bytes;
}

bool is_utf8_continuation(char byte) {
  return (static_cast<unsigned char>(byte) & 0xC0) == 0x80;
}

}  // namespace

Tokenizer::Tokenizer(const std::string& path, int vocab_size) {
  KVC_CHECK(vocab_size > 0, "tokenizer file ", path, ": vocab_size must be positive, got ",
            vocab_size);
  const std::string bytes = read_whole_file(path);
  KVC_CHECK(!bytes.empty(), "tokenizer file ", path, ": file is empty");

  FieldReader reader(bytes);
  std::int32_t header_max_length = 0;
  KVC_CHECK(reader.read(header_max_length), "tokenizer file ", path,
            ": truncated in the 4-byte max_token_length header");
  KVC_CHECK(header_max_length >= 0, "tokenizer file ", path, ": negative max_token_length ",
            header_max_length);

  pieces_.resize(vocab_size);
  scores_.resize(vocab_size);
  for (int id = 0; id < vocab_size; ++id) {
    KVC_CHECK(!reader.at_end(), "tokenizer file ", path, ": holds only ", id,
              " tokens, expected vocab_size ", vocab_size);
    std::int32_t length = 0;
    KVC_CHECK(reader.read(scores_[id]) && reader.read(length), "tokenizer file ", path,
              ": truncated in token ", id);
    KVC_CHECK(length >= 0, "tokenizer file ", path, ": token ", id, " has negative length ",
              length);
    KVC_CHECK(length <= header_max_length, "tokenizer file ", path, ": token ", id, " has length ",
              length, ", more than max_token_length ", header_max_length);
    KVC_CHECK(reader.read_piece(static_cast<std::size_t>(length), pieces_[id]), "tokenizer file ",
              path, ": truncated in token ", id);
  }
  KVC_CHECK(reader.at_end(), "tokenizer file ", path, ": holds more than vocab_size ", vocab_size,
            " tokens");
  build_index();
}

Tokenizer::Tokenizer(std::vector<std::string> pieces, std::vector<float> scores)
    : pieces_(std::move(pieces)), scores_(std::move(scores)) {
  KVC_CHECK(!pieces_.empty(), "tokenizer: no pieces given");
  KVC_CHECK(pieces_.size() == scores_.size(), "tokenizer: ", pieces_.size(), " pieces but ",
            scores_.size(), " scores");
  build_index();
}

void Tokenizer::build_index() {
  index_.clear();
  index_.reserve(pieces_.size());
  max_token_length_ = 0;
  for (int id = 0; id < vocab_size(); ++id) {
    index_.emplace(pieces_[id], id);  // a duplicate piece keeps its first id
    max_token_length_ = std::max(max_token_length_, static_cast<int>(pieces_[id].size()));
  }
}

int Tokenizer::lookup(std::string_view piece) const {
  const auto found = index_.find(piece);
  return found == index_.end() ? -1 : found->second;
}

std::vector<int> Tokenizer::encode(std::string_view text, bool bos, bool eos) const {
  std::vector<int> tokens;
  if (bos) tokens.push_back(kBosToken);
  if (!text.empty()) {
    // SentencePiece's dummy prefix: the first word is spelled like any other, " word".
    const int space = lookup(" ");
    KVC_CHECK(space >= 0, "tokenizer: the vocabulary has no \" \" piece, which encode() needs ",
              "as the dummy prefix");
    tokens.push_back(space);
  }
  append_code_points(text, tokens);
  merge_pairs(tokens);
  if (eos) tokens.push_back(kEosToken);
  return tokens;
}

void Tokenizer::append_code_points(std::string_view text, std::vector<int>& tokens) const {
  // Byte fallback: ids 3..258 are the pieces "<0x00>".."<0xFF>".
  constexpr int kFirstByteToken = 3;
  std::size_t start = 0;
  while (start < text.size()) {
    // A code point is a byte plus the continuation bytes after it, at most 4
    // bytes in all (stray continuation bytes group the same way, as in llama2.c).
    std::size_t length = 1;
    while (length < 4 && start + length < text.size() &&
           is_utf8_continuation(text[start + length])) {
      ++length;
    }
    const std::string_view code_point = text.substr(start, length);
    const int id = lookup(code_point);
    if (id >= 0) {
      tokens.push_back(id);
    } else {
      for (const char byte : code_point) {
        const int byte_token = static_cast<unsigned char>(byte) + kFirstByteToken;
        KVC_CHECK(byte_token < vocab_size(), "tokenizer: byte-fallback token ", byte_token,
                  " is outside the vocabulary of ", vocab_size());
        tokens.push_back(byte_token);
      }
    }
    start += length;
  }
}

void Tokenizer::merge_pairs(std::vector<int>& tokens) const {
  std::string merged;
  while (true) {
    // llama2.c's threshold: a piece scoring -1e10 or less never merges.
    float best_score = -1e10f;
    int best_id = -1;
    std::size_t best_index = 0;
    for (std::size_t i = 0; i + 1 < tokens.size(); ++i) {
      merged.assign(pieces_[tokens[i]]);
      merged += pieces_[tokens[i + 1]];
      const int id = lookup(merged);
      if (id >= 0 && scores_[id] > best_score) {  // strict: the first pair wins ties
        best_score = scores_[id];
        best_id = id;
        best_index = i;
      }
    }
    if (best_id < 0) return;
    tokens[best_index] = best_id;
    tokens.erase(tokens.begin() + static_cast<std::ptrdiff_t>(best_index) + 1);
  }
}

std::string Tokenizer::decode(int prev_token, int token) const {
  KVC_CHECK(token >= 0 && token < vocab_size(), "tokenizer: token id ", token,
            " is outside the vocabulary of ", vocab_size());
  std::string piece = pieces_[token];
  // SentencePiece drops the dummy prefix's space from the first word.
  if (prev_token == kBosToken && !piece.empty() && piece.front() == ' ') piece.erase(0, 1);
  // The very pattern llama2.c uses, so odd pieces parse (or not) exactly alike.
  unsigned char byte = 0;
  if (std::sscanf(piece.c_str(), "<0x%02hhX>", &byte) == 1) {
    return std::string(1, static_cast<char>(byte));
  }
  return piece;
}

bool Tokenizer::is_printable_piece(std::string_view piece) {
  if (piece.empty()) return false;
  if (piece.size() > 1) return true;
  // A lone byte that is neither printable nor whitespace is half of a split
  // UTF-8 character or a control code: printing it would garble the terminal.
  const auto byte = static_cast<unsigned char>(piece.front());
  return std::isprint(byte) || std::isspace(byte);
}

void Tokenizer::save(const std::string& path) const {
  OutputFile file(path);  // a temporary file renamed into place: never half-written
  const auto write = [&file](const auto& value) { file.write(&value, sizeof(value)); };
  write(static_cast<std::int32_t>(max_token_length_));
  for (int id = 0; id < vocab_size(); ++id) {
    write(scores_[id]);
    write(static_cast<std::int32_t>(pieces_[id].size()));
    file.write(pieces_[id]);
  }
  file.commit();
}

}  // namespace kvc
