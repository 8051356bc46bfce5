// What a KV format costs in quality, measured three ways on a real model:
//  - teacher-forced perplexity of the texts (engine/perplexity.hpp);
//  - agreement of each next-token distribution with fp32's under teacher
//    forcing: top-1 equal, and KL(p_fp32 || p_format) in nats. Every position
//    sees the true prefix, so one early difference does not poison the rest
//    (as it does for "greedy agreement");
//  - the attention output's error alone: the same captured q, k, v of every
//    layer replayed through the fp32 and the quantized cache, so errors do
//    not compound through layers.
#pragma once

#include <memory>
#include <span>
#include <vector>

#include "chapters/07_quantization/quantized_paged_cache.hpp"
#include "common/kv_dtype.hpp"
#include "engine/engine.hpp"
#include "engine/perplexity.hpp"

namespace kvc::ch07 {

// KL(softmax(p_logits) || softmax(q_logits)) in nats, computed in double.
double kl_divergence(std::span<const float> p_logits, std::span<const float> q_logits);

// ||got - want||_2 / ||want||_2 (0 when both are zero).
double relative_error(std::span<const float> got, std::span<const float> want);

struct DistributionAgreement {
  double kl_sum = 0;   // nats, summed over positions
  int top1_equal = 0;  // positions whose argmax matches the reference's
  int positions = 0;

  double mean_kl() const { return kl_sum / positions; }
  double top1() const { return static_cast<double>(top1_equal) / positions; }
  // Adds rows of [rows][vocab] logits against the reference's.
  void add(std::span<const float> reference, std::span<const float> logits, int vocab);
};

// A KV strategy that records what the forward pass hands the cache, then
// passes it on to `inner`: q, k, v of every layer for one batch.
struct CapturedAttention {
  Batch batch;
  std::vector<std::vector<float>> q, k, v;  // [layer][n * (dim or kv_dim)]
};
std::unique_ptr<KVStrategy> make_capturing_strategy(std::unique_ptr<KVStrategy> inner,
                                                    const ModelConfig& config,
                                                    CapturedAttention& capture);

// Every layer's attention output for the captured inputs, through `kv`:
// [n_layers][n][dim], concatenated.
std::vector<float> replay_attention(KVStrategy& kv, const CapturedAttention& capture,
                                    const ModelConfig& config);

struct FormatQuality {
  KvDtype dtype;
  NegativeLogLikelihood nll;
  DistributionAgreement agreement;  // against fp32
};

// Teacher-forced quality of `dtype` on the texts; reference_logits[i] are
// fp32's teacher_forced_logits of texts[i].
FormatQuality evaluate_format(Engine& engine, const KvDtype& dtype, int block_size,
                              const std::vector<std::vector<int>>& texts,
                              const std::vector<std::vector<float>>& reference_logits,
                              const QuantOptions& options = {});

}  // namespace kvc::ch07
