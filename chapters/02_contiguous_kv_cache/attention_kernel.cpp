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

CLI::Option* add_attention_kernel_option(CLI::App& app, std::string& kernel) {
  return app
      .add_option("--kernel", kernel,
                  "decode attention: loop (this chapter's), fast (same bits, vectorized, "
                  "threaded) or split (split-context, rounds differently)")
      ->check(CLI::IsMember(attention_kernel_names()))
      ->capture_default_str();
}

}  // namespace kvc::ch02
