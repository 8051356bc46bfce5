// The KV cache's size is checked before anything is allocated: a header with a
// huge context, many layers or many KV heads is a one-line error naming them.
#include "common/kv_memory.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <string>

#include "common/check.hpp"
#include "tests/support/test_support.hpp"

namespace kvc {
namespace {

std::string error_of(const ModelConfig& c, std::int64_t positions, std::uint64_t memory) {
  try {
    checked_kv_floats(c, positions, memory, "test cache", "1 sequence x seq_len 4194304");
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(KvMemory, CountsKAndVFloatsOfEveryLayer) {
  ModelConfig c = testing::config_beyond_any_memory();
  c.n_layers = 5;
  // 5 layers x 100 positions x 8 KV heads x head_dim 128; K and V in fp32: 8x that in bytes.
  EXPECT_EQ(checked_kv_floats(c, 100, 5u * 100 * 8 * 128 * 8, "t", "p"), 5u * 100 * 8 * 128);
  EXPECT_NE(error_of(c, 100, 5u * 100 * 8 * 128 * 8 - 1), "");
}

TEST(KvMemory, TooLargeNamesTheBytesAndTheirCause) {
  // 2 x 4 bytes x 4096 layers x 4194304 positions x 8 heads x 128 = 128 TiB.
  const std::string message =
      error_of(testing::config_beyond_any_memory(), ModelLimits::kMaxSeqLen, 1ull << 40);
  EXPECT_NE(message.find("test cache"), std::string::npos) << message;
  EXPECT_NE(message.find("128.00 TiB"), std::string::npos) << message;
  EXPECT_NE(message.find("4096 layers"), std::string::npos) << message;
  EXPECT_NE(message.find("4194304 positions"), std::string::npos) << message;
  EXPECT_NE(message.find("8 KV heads"), std::string::npos) << message;
  EXPECT_NE(message.find("seq_len 4194304"), std::string::npos) << message;
  EXPECT_EQ(message.find('\n'), std::string::npos) << message;
}

TEST(KvMemory, ProductsBeyond64BitsAndNegativePositionsAreErrors) {
  EXPECT_NE(
      error_of(testing::config_beyond_any_memory(), INT64_MAX, UINT64_MAX).find("more than 2^64"),
      std::string::npos);
  EXPECT_NE(error_of(testing::config_beyond_any_memory(), -1, UINT64_MAX), "");
}

TEST(KvMemory, HostCheckRejectsWhatNoMachineHolds) {
  EXPECT_THROW(checked_host_kv_floats(testing::config_beyond_any_memory(), ModelLimits::kMaxSeqLen,
                                      "t", "p"),
               Error);
  ModelConfig small = testing::config_beyond_any_memory();
  small.n_layers = 2;
  EXPECT_EQ(checked_host_kv_floats(small, 16, "t", "p"), 2u * 16 * 8 * 128);
}

TEST(KvMemory, ZeroedKvFloatsAreZeroAndSized) {
  EXPECT_TRUE(zeroed_kv_floats(0).empty());
  for (std::size_t count : {std::size_t{1}, std::size_t{1000}, std::size_t{3} << 20}) {
    const KvFloats floats = zeroed_kv_floats(count);
    ASSERT_EQ(floats.size(), count);
    EXPECT_EQ(std::count(floats.begin(), floats.end(), 0.0f), std::ptrdiff_t(count));
  }
}

// A 4 KiB row must start a 4 KiB page (decode attention reads rows that
// straddle two pages slower), and a large cache a 2 MiB page.
TEST(KvMemory, ZeroedKvFloatsStartOnAPageAndLargeOnesOnAHugePage) {
  for (std::size_t count : {std::size_t{1}, std::size_t{1000}, std::size_t{3} << 20}) {
    const KvFloats floats = zeroed_kv_floats(count);
    const auto address = reinterpret_cast<std::uintptr_t>(floats.data());
    EXPECT_EQ(address % 4096, 0u) << count;
    if (count * sizeof(float) >= (std::size_t{2} << 20)) {
      EXPECT_EQ(address % (2u << 20), 0u) << count;
    }
  }
  // A vector grown past 2 MiB is moved to a huge page too: the alignment is the allocator's.
  KvFloats grown = zeroed_kv_floats(1000);
  grown.resize(1u << 20);
  EXPECT_EQ(reinterpret_cast<std::uintptr_t>(grown.data()) % (2u << 20), 0u);
}

}  // namespace
}  // namespace kvc
