#include "chapters/02_contiguous_kv_cache/kv_calculator/report_format.hpp"

#include <algorithm>
#include <array>
#include <iomanip>
#include <sstream>

namespace kvc {

std::string with_commas(std::int64_t value) {
  const std::string digits = std::to_string(value < 0 ? -value : value);
  std::string result;
  for (std::size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) result += ',';
    result += digits[i];
  }
  return value < 0 ? "-" + result : result;
}

std::string human_bytes(std::int64_t bytes) {
  constexpr std::array kUnits = {"B", "KiB", "MiB", "GiB", "TiB"};
  double value = static_cast<double>(bytes);
  std::size_t unit = 0;
  while (value >= 1024 && unit + 1 < kUnits.size()) {
    value /= 1024;
    ++unit;
  }
  std::ostringstream out;
  if (unit == 0) {
    out << bytes << " B";
  } else {
    out << std::fixed << std::setprecision(2) << value << " " << kUnits[unit];
  }
  return out.str();
}

std::string percent(double fraction) {
  std::ostringstream out;
  out << std::fixed << std::setprecision(1) << 100 * fraction << "%";
  return out.str();
}

void print_table(std::ostream& out, const TextTable& table) {
  std::vector<std::size_t> widths(table.headers.size());
  const auto widen = [&](const std::vector<std::string>& row) {
    for (std::size_t c = 0; c < row.size() && c < widths.size(); ++c) {
      widths[c] = std::max(widths[c], row[c].size());
    }
  };
  widen(table.headers);
  for (const auto& row : table.rows) widen(row);

  const auto print_row = [&](const std::vector<std::string>& row) {
    std::ostringstream line;
    for (std::size_t c = 0; c < widths.size(); ++c) {
      if (c > 0) line << "  ";
      line << (c == 0 ? std::left : std::right) << std::setw(static_cast<int>(widths[c]))
           << (c < row.size() ? row[c] : std::string());
    }
    // Padding of empty trailing cells would leave invisible spaces at the end.
    std::string text = line.str();
    text.erase(text.find_last_not_of(' ') + 1);
    out << text << "\n";
  };
  print_row(table.headers);
  for (const auto& row : table.rows) print_row(row);
}

}  // namespace kvc
