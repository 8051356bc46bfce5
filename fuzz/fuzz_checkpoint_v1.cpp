// The checkpoint loader on a version-1 header: the input follows the magic
// "ak42" (which the fuzzer would rarely find itself), so every run reaches the
// version, the seven fields, the shared flag and the tensor reads.
#include <cstddef>
#include <cstdint>
#include <string>

#include "common/check.hpp"
#include "common/checkpoint.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::uint32_t magic = 0x616b3432;  // "ak42"
  std::string bytes(reinterpret_cast<const char*>(&magic), sizeof(magic));
  bytes.append(reinterpret_cast<const char*>(data), size);
  try {
    const kvc::Model model = kvc::load_checkpoint_bytes(bytes, "fuzz.bin");
    if (kvc::checkpoint_file_size(model.config, kvc::CheckpointFormat::kVersion1) != bytes.size()) {
      __builtin_trap();
    }
  } catch (const kvc::Error&) {
  }
  return 0;
}
