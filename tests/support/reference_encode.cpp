#include "tests/support/reference_encode.hpp"

#include <string>

namespace kvc::testing {

std::vector<int> reference_encode(const Tokenizer& tokenizer, std::string_view text, bool bos,
                                  bool eos) {
  std::vector<int> tokens;
  if (bos) tokens.push_back(kBosToken);
  if (!text.empty()) tokens.push_back(tokenizer.lookup(" "));

  // UTF-8 code points (a byte and up to 3 continuation bytes), byte fallback = byte + 3.
  for (std::size_t start = 0; start < text.size();) {
    std::size_t length = 1;
    while (length < 4 && start + length < text.size() &&
           (static_cast<unsigned char>(text[start + length]) & 0xC0) == 0x80) {
      ++length;
    }
    const int id = tokenizer.lookup(text.substr(start, length));
    if (id >= 0) {
      tokens.push_back(id);
    } else {
      for (std::size_t i = start; i < start + length; ++i) {
        tokens.push_back(static_cast<unsigned char>(text[i]) + 3);
      }
    }
    start += length;
  }

  while (true) {
    float best_score = -1e10f;
    int best_id = -1;
    std::size_t best_index = 0;
    for (std::size_t i = 0; i + 1 < tokens.size(); ++i) {
      const int id = tokenizer.lookup(tokenizer.piece(tokens[i]) + tokenizer.piece(tokens[i + 1]));
      if (id != -1 && tokenizer.score(id) > best_score) {
        best_score = tokenizer.score(id);
        best_id = id;
        best_index = i;
      }
    }
    if (best_id == -1) break;
    tokens[best_index] = best_id;
    tokens.erase(tokens.begin() + static_cast<std::ptrdiff_t>(best_index) + 1);
  }
  if (eos) tokens.push_back(kEosToken);
  return tokens;
}

}  // namespace kvc::testing
