// The request-lengths parser (kv_calculator and ch04_fragmentation --lengths,
// --lengths-file) on arbitrary bytes: positive ints, or a kvc::Error.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "chapters/02_contiguous_kv_cache/kv_calculator/request_lengths.hpp"
#include "common/check.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  try {
    const auto lengths =
        kvc::parse_request_lengths(std::string_view(reinterpret_cast<const char*>(data), size));
    if (lengths.empty()) __builtin_trap();
    for (int length : lengths) {
      if (length <= 0) __builtin_trap();
    }
  } catch (const kvc::Error&) {
  }
  return 0;
}
