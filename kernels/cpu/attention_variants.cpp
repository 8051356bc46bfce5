// Decode attention over a contiguous cache, every variant by number (see ops.hpp).
#include <cstddef>

#include "common/check.hpp"
#include "kernels/cpu/attention_rows.hpp"
#include "kernels/cpu/ops.hpp"

namespace kvc::cpu {

namespace {
void check_variant(int variant) {
  KVC_CHECK(variant >= 0 && variant <= kDecodeVariants,
            "cpu::attention_decode_variant: no variant ", variant, " (0 = best, 1..",
            kDecodeVariants, ")");
}
}  // namespace

std::size_t attention_decode_scratch_floats(int variant, int n_ctx, int n_heads, int n_kv_heads,
                                            int head_dim) {
  check_variant(variant);
  switch (variant) {
    case 1:
      return std::size_t(n_ctx);
    case 2:
      return attention_decode_repeat_kv_scratch_floats(n_ctx, n_heads, head_dim);
    case 3:
      return attention_decode_grouped_scratch_floats(n_ctx, n_heads, n_kv_heads);
    case 5:
      return 0;  // keeps its per-slice partials itself
    default:
      return std::size_t(n_heads) * n_ctx;
  }
}

void attention_decode_variant(int variant, float* out, const float* q, const float* k_cache,
                              const float* v_cache, int n_ctx, int n_heads, int n_kv_heads,
                              int head_dim, float* scratch, ThreadPool* pool) {
  check_variant(variant);
  switch (variant) {
    case 1:
      attention_decode(out, q, k_cache, v_cache, n_ctx, n_heads, n_kv_heads, head_dim, scratch);
      return;
    case 2:
      attention_decode_repeat_kv(out, q, k_cache, v_cache, n_ctx, n_heads, n_kv_heads, head_dim,
                                 scratch);
      return;
    case 3:
      attention_decode_grouped(out, q, k_cache, v_cache, n_ctx, n_heads, n_kv_heads, head_dim,
                               scratch);
      return;
    default: {
      // A contiguous cache is one block of n_ctx rows.
      const int whole_cache = 0;
      const fast::BlockRows rows{k_cache, v_cache, &whole_cache, n_ctx > 0 ? n_ctx : 1,
                                 std::size_t(n_kv_heads) * head_dim};
      if (variant == 5) {
        fast::decode_split_context(out, q, rows, n_ctx, n_heads, n_kv_heads, head_dim, pool);
      } else {
        fast::decode_grouped_blocks(out, q, rows, n_ctx, n_heads, n_kv_heads, head_dim, scratch,
                                    pool);
      }
    }
  }
}

}  // namespace kvc::cpu
