// Numbers and aligned tables for the calculator's terminal report.
#pragma once

#include <cstdint>
#include <ostream>
#include <string>
#include <vector>

namespace kvc {

std::string with_commas(std::int64_t value);  // 1073741824 -> "1,073,741,824"
std::string human_bytes(std::int64_t bytes);  // binary units: "1.00 GiB", "512.0 KiB"
std::string percent(double fraction);         // 0.628 -> "62.8%"

struct TextTable {
  std::vector<std::string> headers;
  std::vector<std::vector<std::string>> rows;  // each as wide as `headers`
};

// The first column left-aligned (labels), the others right-aligned (numbers),
// two spaces between columns.
void print_table(std::ostream& out, const TextTable& table);

}  // namespace kvc
