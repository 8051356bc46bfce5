#include "common/tokenizer.hpp"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <limits>
#include <queue>
#include <utility>

#include "common/check.hpp"
#include "common/output_file.hpp"
#include "common/read_file.hpp"

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

bool is_utf8_continuation(char byte) {
  return (static_cast<unsigned char>(byte) & 0xC0) == 0x80;
}

}  // namespace

Tokenizer::Tokenizer(const std::string& path, int vocab_size)
    : Tokenizer(
          from_bytes(read_file_bounded(path, kMaxFileBytes, "tokenizer file"), vocab_size, path)) {}

Tokenizer Tokenizer::from_bytes(std::string_view bytes, int vocab_size, const std::string& name) {
  KVC_CHECK(vocab_size >= kFirstOrdinaryToken, "tokenizer file '", name, "': vocab_size ",
            vocab_size, " is too small: ids 0..2 are <unk>, <s>, </s>");
  KVC_CHECK(!bytes.empty(), "tokenizer file '", name, "': file is empty");

  FieldReader reader(bytes);
  std::int32_t header_max_length = 0;
  KVC_CHECK(reader.read(header_max_length), "tokenizer file '", name,
            "': truncated in the 4-byte max_token_length header");
  KVC_CHECK(header_max_length >= 0, "tokenizer file '", name, "': negative max_token_length ",
            header_max_length);

  // Grown as tokens are read, so a wrong vocab_size costs nothing before the file runs out.
  std::vector<std::string> pieces;
  std::vector<float> scores;
  for (int id = 0; id < vocab_size; ++id) {
    KVC_CHECK(!reader.at_end(), "tokenizer file '", name, "': holds only ", id,
              " tokens, expected vocab_size ", vocab_size);
    std::int32_t length = 0;
    float score = 0;
    KVC_CHECK(reader.read(score) && reader.read(length), "tokenizer file '", name,
              "': truncated in token ", id);
    KVC_CHECK(length >= 0, "tokenizer file '", name, "': token ", id, " has negative length ",
              length);
    KVC_CHECK(length <= header_max_length, "tokenizer file '", name, "': token ", id,
              " has length ", length, ", more than max_token_length ", header_max_length);
    std::string piece;
    KVC_CHECK(reader.read_piece(static_cast<std::size_t>(length), piece), "tokenizer file '", name,
              "': truncated in token ", id);
    pieces.push_back(std::move(piece));
    scores.push_back(score);
  }
  KVC_CHECK(reader.at_end(), "tokenizer file '", name, "': holds more than vocab_size ", vocab_size,
            " tokens");
  try {
    return Tokenizer(std::move(pieces), std::move(scores));
  } catch (const Error& e) {
    KVC_FAIL("tokenizer file '", name, "': ", e.what());
  }
}

Tokenizer::Tokenizer(std::vector<std::string> pieces, std::vector<float> scores)
    : pieces_(std::move(pieces)), scores_(std::move(scores)) {
  KVC_CHECK(pieces_.size() == scores_.size(), "tokenizer: ", pieces_.size(), " pieces but ",
            scores_.size(), " scores");
  KVC_CHECK(pieces_.size() >= kFirstOrdinaryToken, "tokenizer: ", pieces_.size(),
            " pieces, too few: ids 0..2 are <unk>, <s>, </s>");
  KVC_CHECK(pieces_.size() <= static_cast<std::size_t>(std::numeric_limits<int>::max()),
            "tokenizer: too many pieces");
  for (std::size_t id = 0; id < scores_.size(); ++id) {
    KVC_CHECK(std::isfinite(scores_[id]), "tokenizer: token ", id, " has score ", scores_[id],
              ", not a finite number");
  }
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

namespace {

// One candidate merge of two adjacent symbols, as it was when queued. It is
// stale once either symbol has merged with another since.
struct Candidate {
  float score;
  int left;   // symbol index; symbols keep their original order, so a smaller
  int right;  // left index is further left in the text
  int left_token;
  int right_token;
  int merged_token;
};

// Pops the highest score first; on equal scores the leftmost pair, as
// llama2.c's scan (strict '>', first pair wins) does.
struct LowerPriority {
  bool operator()(const Candidate& a, const Candidate& b) const {
    if (a.score != b.score) return a.score < b.score;
    return a.left > b.left;
  }
};

}  // namespace

void Tokenizer::merge_pairs(std::vector<int>& tokens) const {
  // The symbols as a doubly linked list over their original indices, so a merge
  // is O(1) and only the two pairs beside it need new candidates: O(n log n) in
  // all instead of llama2.c's rescan of every pair after every merge.
  KVC_CHECK(tokens.size() < static_cast<std::size_t>(std::numeric_limits<int>::max()),
            "tokenizer: text of ", tokens.size(), " code points is too long to encode");
  const int n = static_cast<int>(tokens.size());
  std::vector<int> prev(n), next(n);
  std::vector<bool> alive(n, true);
  for (int i = 0; i < n; ++i) {
    prev[i] = i - 1;
    next[i] = i + 1 < n ? i + 1 : -1;
  }
  std::priority_queue<Candidate, std::vector<Candidate>, LowerPriority> queue;
  std::string merged;
  const auto consider = [&](int left, int right) {
    if (left < 0 || right < 0) return;
    const std::string& a = pieces_[tokens[left]];
    const std::string& b = pieces_[tokens[right]];
    if (a.size() + b.size() > static_cast<std::size_t>(max_token_length_)) return;
    merged.assign(a);
    merged += b;
    const int id = lookup(merged);
    // llama2.c's threshold: a piece scoring -1e10 or less never merges.
    if (id >= 0 && scores_[id] > -1e10f) {
      queue.push({scores_[id], left, right, tokens[left], tokens[right], id});
    }
  };
  for (int i = 0; i + 1 < n; ++i) consider(i, i + 1);

  while (!queue.empty()) {
    const Candidate c = queue.top();
    queue.pop();
    const bool stale = !alive[c.left] || !alive[c.right] || next[c.left] != c.right ||
                       tokens[c.left] != c.left_token || tokens[c.right] != c.right_token;
    if (stale) continue;
    tokens[c.left] = c.merged_token;
    alive[c.right] = false;
    next[c.left] = next[c.right];
    if (next[c.left] >= 0) prev[next[c.left]] = c.left;
    consider(prev[c.left], c.left);
    consider(c.left, next[c.left]);
  }
  int kept = 0;
  for (int i = 0; i < n; ++i) {
    if (alive[i]) tokens[kept++] = tokens[i];
  }
  tokens.resize(kept);
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
