// Exercise: chapter 01, causal attention of one head (matrix form).
//
// Build and test with scripts/check-exercises.sh 1 (see exercises/README.md);
// the chapter's demo (build-ex/bin/ch01_naive_attention) then runs on it.
#include "chapters/01_naive_attention/naive_attention.hpp"
#include "common/check.hpp"

namespace kvc::ch01 {

// Contract: see naive_attention.hpp. Hints:
//  1. Allocate an n_tokens x n_tokens score matrix filled with -infinity.
//  2. For j <= i: S[i][j] = dot(q_i, k_j) / sqrtf(head_dim). Accumulate the
//     dot product in a float, d = 0..head_dim-1 in order, and divide (do not
//     multiply by 1/sqrt): llama2.c rounds that way, and the bit-identity
//     test expects exactly that rounding.
//  3. Softmax each row: subtract the row max, exp, sum, divide.
//  4. out_i = sum over j <= i of P[i][j] * v_j, accumulated for j = 0..i.
//  Remember the strides: row i of q is q + i * q_stride.
// Expected time: 30 minutes.
void causal_attention_one_head(float* /*out*/, const float* /*q*/, const float* /*k*/,
                               const float* /*v*/, int /*n_tokens*/, int /*head_dim*/,
                               std::size_t /*q_stride*/, std::size_t /*kv_stride*/) {
  throw NotImplemented("ch01: causal_attention_one_head");
}

}  // namespace kvc::ch01
