// Reporting: aligned text tables for people, flat JSON objects for tools.
#pragma once

#include <ostream>
#include <string>
#include <utility>
#include <vector>

namespace kvc {

// A text table: add a header and rows of cells, print with columns aligned
// (numbers right-aligned, text left-aligned).
class Table {
 public:
  explicit Table(std::vector<std::string> header) : header_(std::move(header)) {}
  void add_row(std::vector<std::string> cells);
  void print(std::ostream& out) const;

 private:
  std::vector<std::string> header_;
  std::vector<std::vector<std::string>> rows_;
};

// Fixed-point formatting for table cells.
std::string format_fixed(double value, int decimals);
// 1536 -> "1.50 KiB"
std::string format_bytes(double bytes);

// A JSON object written field by field, in insertion order.
class JsonObject {
 public:
  JsonObject& add(const std::string& key, const std::string& value);
  JsonObject& add(const std::string& key, const char* value);
  JsonObject& add(const std::string& key, double value);
  JsonObject& add(const std::string& key, long long value);
  JsonObject& add(const std::string& key, int value) { return add(key, static_cast<long long>(value)); }
  JsonObject& add(const std::string& key, std::size_t value) {
    return add(key, static_cast<long long>(value));
  }
  JsonObject& add(const std::string& key, bool value);
  JsonObject& add(const std::string& key, const std::vector<int>& values);
  std::string str() const;
  // Writes str() to `path`; throws kvc::Error when the file cannot be written.
  void save(const std::string& path) const;

 private:
  JsonObject& add_raw(const std::string& key, std::string json_value);
  std::vector<std::pair<std::string, std::string>> fields_;
};

// `text` as a JSON string literal, quotes included.
std::string json_quote(const std::string& text);

}  // namespace kvc
