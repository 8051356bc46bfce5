// Exercise: chapter 04, decode attention through a block table.
//
// Build with -DKVC_EXERCISES=ON and run `ctest -L ch04`; ch04_paged_allocator
// then decodes through your code.
#include "chapters/04_paged_allocator/paged_kv_cache.hpp"
#include "common/check.hpp"
#include "kernels/cpu/ops.hpp"

namespace kvc::ch04 {

// Contract: see paged_kv_cache.hpp. Two ways to write it:
//  1. Gather: copy the K and V rows of positions 0..pos into contiguous
//     scratch ([pos + 1][n_kv_heads][head_dim] each; row of position t is
//     slot_for(table, t, block_size) in the layer's pages viewed as
//     [num_blocks * block_size][kv_dim]), then call cpu::attention_decode on
//     the copies. Simple, but it moves every byte twice.
//  2. Call cpu::attention_decode_paged (kernels/cpu/ops.hpp), which reads the
//     rows in place through table.blocks — what the solution does.
// Either way the output must be bit-identical to chapter 02's.
void paged_decode_attention(float* /*out*/, const float* /*q*/, const PagedLayout& /*layout*/,
                            const float* /*layer_k_pages*/, const float* /*layer_v_pages*/,
                            const BlockTable& /*table*/, int /*pos*/, int /*n_heads*/,
                            float* /*scratch*/) {
  throw NotImplemented("ch04: paged_decode_attention");
}

// Contract: scratch floats paged_decode_attention needs for n_ctx positions.
// Size it for the way you wrote it (the gather needs room for the copies).
std::size_t paged_decode_scratch_floats(const PagedLayout& layout, int n_ctx, int n_heads) {
  // Room for the gathered K and V plus one score per position and head.
  return 2 * static_cast<std::size_t>(n_ctx) * layout.kv_dim() +
         static_cast<std::size_t>(n_ctx) * n_heads;
}

}  // namespace kvc::ch04
