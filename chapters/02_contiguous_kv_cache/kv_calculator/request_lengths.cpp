#include "chapters/02_contiguous_kv_cache/kv_calculator/request_lengths.hpp"

#include <charconv>
#include <fstream>
#include <sstream>

#include "common/check.hpp"

namespace kvc {
namespace {

bool is_separator(char c) {
  return c == ',' || c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

int parse_length(std::string_view token) {
  int value = 0;
  const auto [end, error] = std::from_chars(token.data(), token.data() + token.size(), value);
  KVC_CHECK(error == std::errc() && end == token.data() + token.size() && value > 0,
            "request length '", token, "' is not a positive integer");
  return value;
}

}  // namespace

std::vector<int> parse_request_lengths(std::string_view text) {
  std::vector<int> lengths;
  std::size_t i = 0;
  while (i < text.size()) {
    if (is_separator(text[i])) {
      ++i;
    } else if (text[i] == '#') {
      while (i < text.size() && text[i] != '\n') ++i;
    } else {
      const std::size_t begin = i;
      while (i < text.size() && !is_separator(text[i]) && text[i] != '#') ++i;
      lengths.push_back(parse_length(text.substr(begin, i - begin)));
    }
  }
  KVC_CHECK(!lengths.empty(), "no request lengths given");
  return lengths;
}

std::vector<int> read_request_lengths_file(const std::string& path) {
  std::ifstream in(path);
  KVC_CHECK(in, "cannot read request lengths file '", path, "'");
  std::ostringstream contents;
  contents << in.rdbuf();
  KVC_CHECK(!in.bad(), "cannot read request lengths file '", path, "'");
  try {
    return parse_request_lengths(contents.str());
  } catch (const Error& error) {
    KVC_FAIL(path, ": ", error.what());
  }
}

}  // namespace kvc
