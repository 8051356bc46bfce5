// The tokenizer.bin loader on arbitrary bytes. The first two bytes choose the
// vocab_size the caller expects (0..1023, so too-small and mismatched sizes
// come up); the rest is the file. A vocabulary that loads is then used: a short
// text is encoded and every token decoded.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "common/check.hpp"
#include "common/tokenizer.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 2) return -1;
  const int vocab_size = (data[0] | (data[1] << 8)) % 1024;
  const std::string_view file(reinterpret_cast<const char*>(data) + 2, size - 2);
  try {
    const kvc::Tokenizer tokenizer = kvc::Tokenizer::from_bytes(file, vocab_size, "fuzz.bin");
    const auto tokens = tokenizer.encode("Once upon a time \xC3\xA9\xFF", true, true);
    int prev = kvc::kBosToken;
    for (int token : tokens) {
      tokenizer.decode(prev, token);
      prev = token;
    }
  } catch (const kvc::Error&) {
  }
  return 0;
}
