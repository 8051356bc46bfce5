#include "common/report.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <iomanip>
#include <sstream>

#include "common/check.hpp"
#include "common/output_file.hpp"

namespace kvc {
void Table::add_row(std::vector<std::string> cells) {
  KVC_CHECK(cells.size() == header_.size(), "Table: row has ", cells.size(), " cells, header has ",
            header_.size());
  rows_.push_back(std::move(cells));
}

namespace {

// "12", "-3.5", "2.00 MiB", "62.8%": a cell that starts with a number.
bool starts_with_number(const std::string& cell) {
  const std::size_t digit = !cell.empty() && cell[0] == '-' ? 1 : 0;
  return digit < cell.size() && std::isdigit(static_cast<unsigned char>(cell[digit]));
}

}  // namespace

void Table::print(std::ostream& out) const {
  const std::size_t columns = header_.size();
  std::vector<std::size_t> widths(columns);
  std::vector<bool> numeric(columns);
  for (std::size_t c = 0; c < columns; ++c) {
    widths[c] = header_[c].size();
    // A column of numbers reads best right-aligned; labels and text left-aligned.
    numeric[c] = c > 0 && !rows_.empty();
    for (const auto& row : rows_) {
      widths[c] = std::max(widths[c], row[c].size());
      numeric[c] = numeric[c] && (row[c].empty() || starts_with_number(row[c]));
    }
  }
  auto print_row = [&](const std::vector<std::string>& cells) {
    std::ostringstream line;
    for (std::size_t c = 0; c < columns; ++c) {
      line << (c == 0 ? "" : "  ") << (numeric[c] ? std::right : std::left)
           << std::setw(static_cast<int>(widths[c])) << cells[c];
    }
    std::string text = line.str();
    text.erase(text.find_last_not_of(' ') + 1);  // no invisible trailing padding
    out << text << '\n';
  };
  print_row(header_);
  for (const auto& row : rows_) print_row(row);
}

std::string format_fixed(double value, int decimals) {
  std::ostringstream s;
  s << std::fixed << std::setprecision(decimals) << value;
  return s.str();
}

std::string format_general(double value) {
  char text[32];
  std::snprintf(text, sizeof(text), "%.7g", value);  // a float's digits, no more
  return text;
}

std::string format_bytes(double bytes) {
  static const char* const kUnits[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
  int unit = 0;
  while (std::fabs(bytes) >= 1024.0 && unit < 6) {
    bytes /= 1024.0;
    ++unit;
  }
  return unit == 0 ? format_fixed(bytes, 0) + " B" : format_fixed(bytes, 2) + " " + kUnits[unit];
}

std::string format_thousands(long long value) {
  const std::string digits = std::to_string(value < 0 ? -value : value);
  std::string grouped;
  for (std::size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) grouped += ',';
    grouped += digits[i];
  }
  return value < 0 ? "-" + grouped : grouped;
}

std::string format_count(double count) {
  if (count >= 1e9) return format_fixed(count / 1e9, 2) + "B";
  if (count >= 1e6) return format_fixed(count / 1e6, 2) + "M";
  if (count >= 1e3) return format_fixed(count / 1e3, 2) + "K";
  return format_fixed(count, 0);
}

std::string format_percent(double fraction) {
  return format_fixed(100 * fraction, 1) + "%";
}

std::string json_quote(const std::string& text) {
  std::string quoted = "\"";
  for (unsigned char ch : text) {
    switch (ch) {
      case '"':
        quoted += "\\\"";
        break;
      case '\\':
        quoted += "\\\\";
        break;
      case '\n':
        quoted += "\\n";
        break;
      case '\r':
        quoted += "\\r";
        break;
      case '\t':
        quoted += "\\t";
        break;
      default:
        if (ch < 0x20) {
          char escaped[8];
          std::snprintf(escaped, sizeof(escaped), "\\u%04x", ch);
          quoted += escaped;
        } else {
          quoted += static_cast<char>(ch);
        }
    }
  }
  return quoted + "\"";
}

JsonObject& JsonObject::add_raw(const std::string& key, std::string json_value) {
  fields_.emplace_back(key, std::move(json_value));
  return *this;
}

JsonObject& JsonObject::add(const std::string& key, const std::string& value) {
  return add_raw(key, json_quote(value));
}
JsonObject& JsonObject::add(const std::string& key, const char* value) {
  return add_raw(key, json_quote(value));
}
JsonObject& JsonObject::add(const std::string& key, double value) {
  if (!std::isfinite(value)) return add_raw(key, "null");
  std::ostringstream s;
  s << std::setprecision(10) << value;
  return add_raw(key, s.str());
}
JsonObject& JsonObject::add(const std::string& key, long long value) {
  return add_raw(key, std::to_string(value));
}
JsonObject& JsonObject::add(const std::string& key, bool value) {
  return add_raw(key, value ? "true" : "false");
}
JsonObject& JsonObject::add(const std::string& key, const std::vector<int>& values) {
  std::string list = "[";
  for (std::size_t i = 0; i < values.size(); ++i) {
    if (i > 0) list += ',';
    list += std::to_string(values[i]);
  }
  return add_raw(key, list + "]");
}

JsonObject& JsonObject::add(const std::string& key, const JsonObject& nested) {
  return add_raw(key, nested.str());
}

JsonObject& JsonObject::add(const std::string& key, const std::vector<JsonObject>& list) {
  std::string json = "[";
  for (std::size_t i = 0; i < list.size(); ++i) {
    std::string item = list[i].str();
    item.pop_back();  // str()'s final newline
    json += (i > 0 ? "," : "") + item;
  }
  return add_raw(key, json + "]");
}

std::string JsonObject::str() const {
  std::string json = "{";
  for (std::size_t i = 0; i < fields_.size(); ++i) {
    json += i > 0 ? ",\n  " : "\n  ";
    json += json_quote(fields_[i].first) + ": " + fields_[i].second;
  }
  return json + "\n}\n";
}

void JsonObject::save(const std::string& path) const {
  write_output_file(path, str());
}

}  // namespace kvc
