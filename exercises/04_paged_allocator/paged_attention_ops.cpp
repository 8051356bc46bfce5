// Exercise: chapter 04, decode attention through a block table.
//
// Build and test with scripts/check-exercises.sh 4 (see exercises/README.md);
// ch04_paged_allocator and ch04_serve then decode through your code.
#include "chapters/04_paged_allocator/paged_kv_cache.hpp"
#include "common/check.hpp"
#include "kernels/cpu/ops.hpp"

namespace kvc::ch04 {

// Contract: see paged_kv_cache.hpp. Chapter 03's grouped loop, with the rows
// found through the block table: position t of this sequence is pool row
// slot_for(table, t, layout.block_size), and the layer's pages are rows of
// kv_dim floats:
//   layer_k_pages viewed as [num_blocks * block_size][n_kv_heads][head_dim]
// For each position t, look its row up once and score it against every query
// head h (KV head h / (n_heads / n_kv_heads)); softmax each head's scores;
// then for each t look the value row up once and add p_h,t * v into every
// head's output. scratch holds paged_decode_scratch_floats(pos + 1, n_heads)
// floats: scores as [n_heads][pos + 1].
// Hints:
//  1. The token attends to pos + 1 positions, its own included: the last one
//     usually sits in a partly filled block, and the rows after it in that
//     block (and every block the table does not name) hold garbage. The tests
//     fill them with NaN and shuffle the tables.
//  2. Round as in chapters 02 and 03 (in-order float dot products divided by
//     sqrtf(head_dim), cpu::softmax, outputs summed over t in order from 0):
//     the output must be bit-identical to chapter 02's, so the text is too.
//  3. slot_for returns a 64-bit row: multiply by kv_dim in 64 bits.
// Expected time: 30 minutes.
void paged_decode_attention(float* /*out*/, const float* /*q*/, const PagedLayout& /*layout*/,
                            const float* /*layer_k_pages*/, const float* /*layer_v_pages*/,
                            const BlockTable& /*table*/, int /*pos*/, int /*n_heads*/,
                            float* /*scratch*/) {
  throw NotImplemented("ch04: paged_decode_attention");
}

}  // namespace kvc::ch04
