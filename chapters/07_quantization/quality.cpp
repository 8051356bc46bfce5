#include "chapters/07_quantization/quality.hpp"

#include <algorithm>
#include <cmath>

#include "chapters/07_quantization/quantized_paged_cache.hpp"
#include "common/check.hpp"

namespace kvc::ch07 {

namespace {

class CapturingStrategy final : public KVStrategy {
 public:
  CapturingStrategy(std::unique_ptr<KVStrategy> inner, const ModelConfig& config,
                    CapturedAttention& capture)
      : inner_(std::move(inner)), config_(config), capture_(capture) {}

  std::string name() const override { return inner_->name(); }
  bool keeps_history() const override { return inner_->keeps_history(); }
  std::size_t kv_bytes_reserved() const override { return inner_->kv_bytes_reserved(); }
  void release(int seq_id) override { inner_->release(seq_id); }
  int begin_sequence(int seq_id, std::span<const int> tokens) override {
    return inner_->begin_sequence(seq_id, tokens);
  }
  void reserve(const Batch& batch) override { inner_->reserve(batch); }
  void publish(int seq_id, std::span<const int> tokens) override {
    inner_->publish(seq_id, tokens);
  }
  void finish_sequence(int seq_id, std::span<const int> tokens) override {
    inner_->finish_sequence(seq_id, tokens);
  }

  void attend(int layer, const Batch& batch, const float* q, const float* k, const float* v,
              float* out) override {
    // The engine's device is the CPU here, so q, k, v are host pointers.
    if (layer == 0) {
      capture_.batch = batch;
      capture_.q.clear();
      capture_.k.clear();
      capture_.v.clear();
    }
    const std::size_t n = batch.size();
    capture_.q.emplace_back(q, q + n * config_.dim);
    capture_.k.emplace_back(k, k + n * config_.kv_dim());
    capture_.v.emplace_back(v, v + n * config_.kv_dim());
    inner_->attend(layer, batch, q, k, v, out);
  }

 private:
  std::unique_ptr<KVStrategy> inner_;
  ModelConfig config_;
  CapturedAttention& capture_;
};

}  // namespace

double kl_divergence(std::span<const float> p_logits, std::span<const float> q_logits) {
  KVC_CHECK(p_logits.size() == q_logits.size(), "kl_divergence: ", p_logits.size(), " vs ",
            q_logits.size(), " logits");
  const auto log_normalizer = [](std::span<const float> logits) {
    const double max_logit = *std::ranges::max_element(logits);
    double sum = 0;
    for (float x : logits) sum += std::exp(x - max_logit);
    return max_logit + std::log(sum);
  };
  const double p_norm = log_normalizer(p_logits), q_norm = log_normalizer(q_logits);
  double kl = 0;
  for (std::size_t i = 0; i < p_logits.size(); ++i) {
    const double log_p = p_logits[i] - p_norm, log_q = q_logits[i] - q_norm;
    kl += std::exp(log_p) * (log_p - log_q);
  }
  return std::max(kl, 0.0);  // rounding can leave -1e-17 for identical inputs
}

double relative_error(std::span<const float> got, std::span<const float> want) {
  KVC_CHECK(got.size() == want.size(), "relative_error: ", got.size(), " vs ", want.size());
  double diff = 0, norm = 0;
  for (std::size_t i = 0; i < got.size(); ++i) {
    diff += (double(got[i]) - want[i]) * (double(got[i]) - want[i]);
    norm += double(want[i]) * want[i];
  }
  return norm > 0 ? std::sqrt(diff / norm) : std::sqrt(diff);
}

void DistributionAgreement::add(std::span<const float> reference, std::span<const float> logits,
                                int vocab) {
  KVC_CHECK(reference.size() == logits.size() && vocab > 0 && logits.size() % vocab == 0,
            "DistributionAgreement: mismatched logits");
  for (std::size_t row = 0; row < logits.size() / vocab; ++row) {
    const auto ref = reference.subspan(row * vocab, vocab);
    const auto got = logits.subspan(row * vocab, vocab);
    kl_sum += kl_divergence(ref, got);
    top1_equal +=
        std::ranges::max_element(ref) - ref.begin() == std::ranges::max_element(got) - got.begin();
    ++positions;
  }
}

std::unique_ptr<KVStrategy> make_capturing_strategy(std::unique_ptr<KVStrategy> inner,
                                                    const ModelConfig& config,
                                                    CapturedAttention& capture) {
  return std::make_unique<CapturingStrategy>(std::move(inner), config, capture);
}

std::vector<float> replay_attention(KVStrategy& kv, const CapturedAttention& capture,
                                    const ModelConfig& config) {
  const std::size_t n = capture.batch.size();
  std::vector<float> out(capture.q.size() * n * config.dim);
  kv.reserve(capture.batch);
  for (std::size_t l = 0; l < capture.q.size(); ++l) {
    kv.attend(static_cast<int>(l), capture.batch, capture.q[l].data(), capture.k[l].data(),
              capture.v[l].data(), out.data() + l * n * config.dim);
  }
  return out;
}

FormatQuality evaluate_format(Engine& engine, const KvDtype& dtype, int block_size,
                              const std::vector<std::vector<int>>& texts,
                              const std::vector<std::vector<float>>& reference_logits,
                              const QuantOptions& options) {
  const KVStrategyFactory factory = [&](const ModelConfig& c, const DeviceContext& device) {
    return make_strategy(c, device, dtype, block_size, 1, options);
  };
  const int vocab = engine.config().vocab_size;
  FormatQuality quality{dtype, {}, {}};
  for (std::size_t i = 0; i < texts.size(); ++i) {
    const std::vector<float> logits = teacher_forced_logits(engine, factory, texts[i]);
    quality.nll += score_logits(logits, texts[i], vocab);
    quality.agreement.add(reference_logits[i], logits, vocab);
  }
  return quality;
}

}  // namespace kvc::ch07
