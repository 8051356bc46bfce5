// The seam between the forward pass and KV-cache management.
//
// The forward pass is written once. For every layer it computes q, k, v for
// all tokens of the batch and hands them to the strategy, which stores k and v
// wherever it keeps them and computes each token's attention over that
// token's own sequence history. Each chapter is one implementation of this.
#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <string>

#include "common/config.hpp"
#include "engine/batch.hpp"
#include "engine/device_context.hpp"

namespace kvc {

class KVStrategy {
 public:
  virtual ~KVStrategy() = default;

  virtual std::string name() const = 0;

  // false: the strategy stores nothing between forward calls, so every call
  // must carry each sequence's whole history (chapter 01).
  virtual bool keeps_history() const = 0;

  // Store this layer's k, v for the batch's tokens and compute attention.
  // All pointers are in the memory of the engine's device (see DeviceContext).
  //   q:   [n][n_heads * head_dim]     (rotary embedding already applied)
  //   k,v: [n][n_kv_heads * head_dim]  (k rotated)
  //   out: [n][n_heads * head_dim]
  virtual void attend(int layer, const Batch& batch, const float* q, const float* k, const float* v,
                      float* out) = 0;

  // Bytes of KV storage the strategy holds right now (reserved, used or not).
  virtual std::size_t kv_bytes_reserved() const = 0;

  // The sequence is finished; its storage may be reused.
  virtual void release(int seq_id) = 0;
};

// Builds a chapter's strategy for a model on a device (CPU or CUDA).
using KVStrategyFactory = std::function<std::unique_ptr<KVStrategy>(const ModelConfig& config,
                                                                    const DeviceContext& device)>;

}  // namespace kvc
