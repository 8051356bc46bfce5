// Solution: chapter 04, decode attention through a block table.
#include "chapters/04_paged_allocator/paged_kv_cache.hpp"
#include "kernels/cpu/ops.hpp"

namespace kvc::ch04 {

void paged_decode_attention(float* out, const float* q, const PagedLayout& layout,
                            const float* layer_k_pages, const float* layer_v_pages,
                            const BlockTable& table, int pos, int n_heads, float* scratch) {
  // The kernel walks the table itself: positions 0..pos live in blocks
  // table.blocks[0 .. pos / block_size], in order.
  cpu::attention_decode_paged(cpu::kBestPagedDecode, out, q, layer_k_pages, layer_v_pages,
                              table.blocks.data(), pos + 1, layout.block_size, n_heads,
                              layout.n_kv_heads, layout.head_dim, scratch);
}

std::size_t paged_decode_scratch_floats(const PagedLayout& layout, int n_ctx, int n_heads) {
  return cpu::attention_decode_paged_scratch_floats(cpu::kBestPagedDecode, n_ctx, n_heads,
                                                    layout.n_kv_heads);
}

}  // namespace kvc::ch04
