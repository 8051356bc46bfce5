// The checkpoint loader on arbitrary bytes read as a legacy llama2.c header
// (7 int32, then tensors). Inputs that start with the version-1 magic are
// left to fuzz_checkpoint_v1. A kvc::Error is the expected answer to bad
// input; anything else (a crash, a sanitizer report, another exception) is a bug.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string_view>

#include "common/check.hpp"
#include "common/checkpoint.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  std::uint32_t magic = 0;
  if (size >= sizeof(magic)) std::memcpy(&magic, data, sizeof(magic));
  if (magic == 0x616b3432) return -1;  // not a legacy file: keep it out of the corpus
  try {
    const kvc::Model model = kvc::load_checkpoint_bytes(bytes, "fuzz.bin");
    // A model that loads is exactly the size its header says.
    if (kvc::checkpoint_file_size(model.config, kvc::CheckpointFormat::kLegacy) != size) {
      __builtin_trap();
    }
  } catch (const kvc::Error&) {
  }
  return 0;
}
