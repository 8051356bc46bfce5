// The forward pass on the CPU: kvc::forward_pass with the CPU kernels.
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
  std::vector<float> x, xb, xb2, q, k, v, attn, hb, hb2;  // shapes: see ActivationViews
  std::vector<float> logits;                              // [n_logit_rows][vocab_size]

  void reserve(const ModelConfig& config, int n_tokens, int n_logit_rows);
};

// Checks the batch against the model: token ids in the vocabulary, positions
// inside the context. Throws kvc::Error naming the first bad entry.
void validate_batch(const ModelConfig& config, const Batch& batch);

// Runs every layer over the batch and writes the logits of batch.logit_rows
// to acts.logits (row r of logits belongs to token batch.logit_rows[r]).
void forward(const Model& model, const Batch& batch, KVStrategy& kv, Activations& acts,
             ThreadPool* pool);

}  // namespace kvc
