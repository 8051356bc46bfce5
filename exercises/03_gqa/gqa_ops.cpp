// Exercise: chapter 03, the query-head -> KV-head mapping and mean-pooling.
//
// Build with -DKVC_EXERCISES=ON and run `ctest -L ch03`; kvc_convert_gqa then
// converts checkpoints with your code.
#include "chapters/03_gqa/gqa_kv_cache.hpp"
#include "common/check.hpp"

namespace kvc::ch03 {

// Contract: see gqa_kv_cache.hpp. With 8 query heads and 2 KV heads, query
// heads 0-3 read KV head 0 and 4-7 read KV head 1. MHA (n_kv_heads == n_heads)
// maps every head to itself; MQA (n_kv_heads == 1) maps all of them to 0.
int kv_head_for(int /*query_head*/, int /*n_heads*/, int /*n_kv_heads*/) {
  throw NotImplemented("ch03: kv_head_for");
}

// Contract: see gqa_kv_cache.hpp. Hints: one head of the projection is
// head_dim consecutive rows of `dim` floats; sum the merged heads' rows in
// increasing input-head order, in a float, then divide by the number merged.
void mean_pool_kv_heads(const float* /*w_in*/, float* /*w_out*/, int /*n_kv_heads_in*/,
                        int /*n_kv_heads_out*/, int /*head_dim*/, int /*dim*/) {
  throw NotImplemented("ch03: mean_pool_kv_heads");
}

}  // namespace kvc::ch03
