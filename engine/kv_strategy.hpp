// The seam between the forward pass and KV-cache management.
//
// The forward pass is written once. For every layer it computes q, k, v for
// all tokens of the batch and hands them to the strategy, which stores k and v
// wherever it keeps them and computes each token's attention over that
// token's own sequence history. Each chapter is one implementation of this.
//
// The call order, for every sequence and every forward call:
//
//   cached = begin_sequence(seq, tokens)   a sequence starts (or resumes after preemption);
//                                          its first `cached` positions need no compute
//   reserve(batch)                         before each forward call: room for every token of
//                                          the batch, all or nothing
//   attend(layer, batch, ...)              for each layer: store k, v, compute attention;
//                                          reads only what reserve() prepared
//   publish(seq, tokens)                   optional, after a forward call: these positions
//                                          are computed, other sequences may share them
//   finish_sequence(seq, tokens)           the sequence ends (or is preempted); a prefix
//                                          cache keeps what it can, the rest is freed
//
// release(seq) drops a sequence without keeping anything (an aborted admission).
#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <span>
#include <string>

#include "common/check.hpp"
#include "common/config.hpp"
#include "engine/batch.hpp"
#include "engine/device_context.hpp"

namespace kvc {

// The strategy has no room for a batch. reserve() threw it having changed
// nothing: a result for a scheduler (wait, preempt), not a crash.
class PoolExhausted : public Error {
 public:
  using Error::Error;
};

class KVStrategy {
 public:
  virtual ~KVStrategy() = default;

  virtual std::string name() const = 0;

  // false: the strategy stores nothing between forward calls, so every call
  // must carry each sequence's whole history (chapter 01).
  virtual bool keeps_history() const = 0;

  // Sequence `seq_id` is about to run `tokens` (its prompt, or every token it
  // holds when it resumes). Returns how many leading positions the strategy
  // already holds K, V for (a prefix-cache hit, chapter 05); the caller feeds
  // the sequence from that position. Always less than tokens.size(), so the
  // last token is computed and yields logits. Default: nothing cached.
  virtual int begin_sequence(int seq_id, std::span<const int> tokens) {
    (void)seq_id;
    (void)tokens;
    return 0;
  }

  // Makes room for every token of the batch before the forward pass (each
  // sequence's positions continue what it holds). All or nothing: throws
  // PoolExhausted when the batch does not fit, and kvc::Error for a batch that
  // skips positions, in both cases having changed nothing.
  virtual void reserve(const Batch& batch) = 0;

  // Store this layer's k, v for the batch's tokens and compute attention.
  // All pointers are in the memory of the engine's device (see DeviceContext).
  //   q:   [n][n_heads * head_dim]     (rotary embedding already applied)
  //   k,v: [n][n_kv_heads * head_dim]  (k rotated)
  //   out: [n][n_heads * head_dim]
  virtual void attend(int layer, const Batch& batch, const float* q, const float* k, const float* v,
                      float* out) = 0;

  // The K, V of the sequence's positions so far (tokens[0 .. what it holds))
  // are computed; a prefix cache may share them with other sequences now,
  // before the sequence ends. Default: nothing to do.
  virtual void publish(int seq_id, std::span<const int> tokens) {
    (void)seq_id;
    (void)tokens;
  }

  // The sequence has ended (or is preempted). `tokens` are its tokens, at
  // least as many as the positions it holds. A prefix cache keeps the full
  // blocks of those positions for later sequences; the rest is freed.
  virtual void finish_sequence(int seq_id, std::span<const int> tokens) {
    (void)tokens;
    release(seq_id);
  }

  // Bytes of KV storage the strategy holds right now (reserved, used or not).
  virtual std::size_t kv_bytes_reserved() const = 0;

  // Drops the sequence, keeping nothing; its storage may be reused.
  virtual void release(int seq_id) = 0;
};

// Builds a chapter's strategy for a model on a device (CPU or CUDA).
using KVStrategyFactory = std::function<std::unique_ptr<KVStrategy>(const ModelConfig& config,
                                                                    const DeviceContext& device)>;

}  // namespace kvc
