// Tables and number formatting shared by every report.
#include <gtest/gtest.h>

#include <sstream>

#include "common/check.hpp"
#include "common/report.hpp"

namespace kvc {
namespace {

TEST(Report, NumbersAndUnits) {
  EXPECT_EQ(format_thousands(0), "0");
  EXPECT_EQ(format_thousands(999), "999");
  EXPECT_EQ(format_thousands(1'073'741'824), "1,073,741,824");
  EXPECT_EQ(format_thousands(-1234), "-1,234");
  EXPECT_EQ(format_bytes(512), "512 B");
  EXPECT_EQ(format_bytes(524'288), "512.00 KiB");
  EXPECT_EQ(format_bytes(10.0 * (1 << 30)), "10.00 GiB");
  EXPECT_EQ(format_bytes(3.0 * (1ll << 50)), "3.00 PiB");
  EXPECT_EQ(format_bytes(-3.0 * (1ll << 60)), "-3.00 EiB");
  EXPECT_EQ(format_percent(0.628), "62.8%");
  EXPECT_EQ(format_fixed(3.14159, 2), "3.14");
}

TEST(Report, TableAlignsNumbersRightAndTextLeft) {
  Table table({"name", "n", "note"});
  table.add_row({"a", "1", "yes"});
  table.add_row({"long name", "12345", "-"});
  std::ostringstream out;
  table.print(out);
  EXPECT_EQ(out.str(),
            "name           n  note\n"
            "a              1  yes\n"
            "long name  12345  -\n");
  EXPECT_THROW(table.add_row({"too", "few"}), Error);
}

TEST(Report, JsonEscapesAndKeepsOrder) {
  JsonObject json;
  json.add("text", std::string("a\"b\\\n\x01"))
      .add("n", 3)
      .add("ok", true)
      .add("ids", std::vector<int>{1, 2});
  EXPECT_EQ(json.str(),
            "{\n  \"text\": \"a\\\"b\\\\\\n\\u0001\",\n  \"n\": 3,\n  \"ok\": true,\n"
            "  \"ids\": [1,2]\n}\n");
}

TEST(Report, JsonListsObjects) {
  JsonObject row;
  row.add("n", 1);
  JsonObject json;
  json.add("rows", std::vector<JsonObject>{row, row}).add("none", std::vector<JsonObject>{});
  EXPECT_EQ(json.str(), "{\n  \"rows\": [{\n  \"n\": 1\n},{\n  \"n\": 1\n}],\n  \"none\": []\n}\n");
}

}  // namespace
}  // namespace kvc
