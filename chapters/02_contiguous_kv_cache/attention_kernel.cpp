#include "chapters/02_contiguous_kv_cache/attention_kernel.hpp"

#include "common/check.hpp"

namespace kvc::ch02 {

AttentionKernel parse_attention_kernel(const std::string& name) {
  if (name == "loop") return AttentionKernel::kLoop;
  if (name == "fast") return AttentionKernel::kFast;
  if (name == "split") return AttentionKernel::kSplit;
  KVC_FAIL("unknown attention kernel '", name, "' (choose loop, fast or split)");
}

std::string to_string(AttentionKernel kernel) {
  switch (kernel) {
    case AttentionKernel::kLoop:
      return "loop";
    case AttentionKernel::kFast:
      return "fast";
    case AttentionKernel::kSplit:
      return "split";
  }
  KVC_FAIL("unknown attention kernel");
}

std::vector<std::string> attention_kernel_names() {
  return {"loop", "fast", "split"};
}

}  // namespace kvc::ch02
