// Reporting: aligned text tables for people, flat JSON objects for tools.
#pragma once

#include <ostream>
#include <string>
#include <utility>
#include <vector>

namespace kvc {

// A text table: a header and rows of cells, printed two spaces apart with
// columns of numbers right-aligned and everything else left-aligned.
class Table {
 public:
  explicit Table(std::vector<std::string> header) : header_(std::move(header)) {}
  void add_row(std::vector<std::string> cells);
  void print(std::ostream& out) const;

 private:
  std::vector<std::string> header_;
  std::vector<std::vector<std::string>> rows_;
};

// Cell formatting.
std::string format_fixed(double value, int decimals);  // (3.14159, 2) -> "3.14"
std::string format_general(double value);              // 1e-05, 0.5, 1048576: up to 7 digits
std::string format_bytes(double bytes);                // 1536 -> "1.50 KiB", 512 -> "512 B"
std::string format_thousands(long long value);         // 1073741824 -> "1,073,741,824"
std::string format_percent(double fraction);           // 0.628 -> "62.8%"
std::string format_count(double count);                // 3033344 -> "3.03M", 1.02e9 -> "1.02B"

// A JSON object written field by field, in insertion order.
class JsonObject {
 public:
  JsonObject& add(const std::string& key, const std::string& value);
  JsonObject& add(const std::string& key, const char* value);
  JsonObject& add(const std::string& key, double value);
  JsonObject& add(const std::string& key, long long value);
  JsonObject& add(const std::string& key, int value) {
    return add(key, static_cast<long long>(value));
  }
  JsonObject& add(const std::string& key, std::size_t value) {
    return add(key, static_cast<long long>(value));
  }
  JsonObject& add(const std::string& key, bool value);
  JsonObject& add(const std::string& key, const std::vector<int>& values);
  JsonObject& add(const std::string& key, const JsonObject& nested);
  JsonObject& add(const std::string& key, const std::vector<JsonObject>& list);
  std::string str() const;
  // Writes str() to `path` through an OutputFile (common/output_file.hpp): a
  // temporary file renamed into place; throws kvc::Error when it cannot be written.
  void save(const std::string& path) const;

 private:
  JsonObject& add_raw(const std::string& key, std::string json_value);
  std::vector<std::pair<std::string, std::string>> fields_;
};

// `text` as a JSON string literal, quotes included.
std::string json_quote(const std::string& text);

}  // namespace kvc
