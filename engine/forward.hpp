// The Llama forward pass over a batch (llama2.c's forward(), batched).
#pragma once

#include <vector>

#include "common/checkpoint.hpp"
#include "engine/batch.hpp"
#include "engine/kv_strategy.hpp"

namespace kvc {

class ThreadPool;

// Activation scratch for up to `capacity` tokens; grows on demand and is
// reused across calls so the decode loop does not allocate.
struct Activations {
  int capacity = 0;
  std::vector<float> x;       // [n][dim]        the residual stream
  std::vector<float> xb;      // [n][dim]        normalized input of a sub-block
  std::vector<float> xb2;     // [n][dim]        sub-block output before the residual add
  std::vector<float> q;       // [n][dim]
  std::vector<float> k;       // [n][kv_dim]
  std::vector<float> v;       // [n][kv_dim]
  std::vector<float> attn;    // [n][dim]        attention output, heads concatenated
  std::vector<float> hb;      // [n][hidden_dim] SwiGLU gate
  std::vector<float> hb2;     // [n][hidden_dim] SwiGLU up
  std::vector<float> logits;  // [n_logit_rows][vocab_size]

  void reserve(const ModelConfig& config, int n_tokens, int n_logit_rows);
};

// Runs every layer over the batch and writes the logits of batch.logit_rows
// to acts.logits (row r of logits belongs to token batch.logit_rows[r]).
void forward(const Model& model, const Batch& batch, KVStrategy& kv, Activations& acts,
             ThreadPool* pool);

}  // namespace kvc
