// Tokenizer::encode on arbitrary text with the real vocabularies (models/
// tok512.bin and the 32K tokenizer.bin); the first byte picks one. Texts up to
// 512 bytes are also encoded by llama2.c's quadratic algorithm
// (tests/support/reference_encode.hpp): any difference is a crash.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "common/tokenizer.hpp"
#include "tests/support/reference_encode.hpp"

namespace {

std::unique_ptr<kvc::Tokenizer> tok512, tok32k;

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  tok512 = std::make_unique<kvc::Tokenizer>(std::string(KVC_MODELS_DIR) + "/tok512.bin", 512);
  tok32k = std::make_unique<kvc::Tokenizer>(std::string(KVC_MODELS_DIR) + "/tokenizer.bin", 32000);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return -1;
  const kvc::Tokenizer& tokenizer = data[0] % 2 == 0 ? *tok512 : *tok32k;
  const std::string_view text(reinterpret_cast<const char*>(data) + 1, size - 1);
  const auto tokens = tokenizer.encode(text, true, false);
  if (text.size() <= 512 &&
      tokens != kvc::testing::reference_encode(tokenizer, text, true, false)) {
    __builtin_trap();
  }
  return 0;
}
