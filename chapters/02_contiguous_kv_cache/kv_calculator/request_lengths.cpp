#include "chapters/02_contiguous_kv_cache/kv_calculator/request_lengths.hpp"

#include <charconv>
#include <limits>
#include <string>

#include "common/check.hpp"
#include "common/read_file.hpp"

namespace kvc {
namespace {

bool is_separator(char c) {
  return c == ',' || c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

// Quotes at most the first 32 bytes of a token, so a garbage file gives a short message.
std::string quote(std::string_view token) {
  constexpr std::size_t kShown = 32;
  std::string quoted = "'";
  quoted.append(token.substr(0, kShown));
  quoted.append(token.size() > kShown ? "...'" : "'");
  return quoted;
}

int parse_length(std::string_view token, int line) {
  int value = 0;
  const auto [end, error] = std::from_chars(token.data(), token.data() + token.size(), value);
  KVC_CHECK(error == std::errc() && end == token.data() + token.size() && value > 0, "line ", line,
            ": request length ", quote(token), " is not a positive integer (at most ",
            std::numeric_limits<int>::max(), ")");
  return value;
}

}  // namespace

std::vector<int> parse_request_lengths(std::string_view text) {
  std::vector<int> lengths;
  int line = 1;
  std::size_t i = 0;
  while (i < text.size()) {
    if (is_separator(text[i])) {
      if (text[i] == '\n') ++line;
      ++i;
    } else if (text[i] == '#') {
      while (i < text.size() && text[i] != '\n') ++i;
    } else {
      const std::size_t begin = i;
      while (i < text.size() && !is_separator(text[i]) && text[i] != '#') ++i;
      lengths.push_back(parse_length(text.substr(begin, i - begin), line));
    }
  }
  KVC_CHECK(!lengths.empty(), "no request lengths given");
  return lengths;
}

std::vector<int> read_request_lengths_file(const std::string& path) {
  const std::string contents =
      read_file_bounded(path, kMaxRequestLengthsFileBytes, "request lengths file");
  try {
    return parse_request_lengths(contents);
  } catch (const Error& error) {
    KVC_FAIL("request lengths file '", path, "': ", error.what());
  }
}

}  // namespace kvc
