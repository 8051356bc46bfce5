// A model loaded onto one device, ready to run batches: what generate() and
// the demos drive. Both engines run the same kvc::forward_pass; they differ in
// where the weights and activations live and which kernels do the work.
#pragma once

#include <memory>
#include <string>

#include "common/checkpoint.hpp"
#include "engine/batch.hpp"
#include "engine/device_context.hpp"
#include "engine/forward.hpp"
#include "engine/kv_strategy.hpp"

namespace kvc {

class Engine {
 public:
  virtual ~Engine() = default;

  virtual const ModelConfig& config() const = 0;

  // What a KV strategy built for this engine needs: the device and its resources.
  virtual DeviceContext context() = 0;

  // Runs the batch through every layer. Returns the logits of batch.logit_rows
  // on the host, [rows][vocab_size], valid until the next call.
  virtual float* forward(const Batch& batch, KVStrategy& kv) = 0;
};

class CpuEngine final : public Engine {
 public:
  CpuEngine(const Model& model, ThreadPool* pool) : model_(model), pool_(pool) {}

  const ModelConfig& config() const override { return model_.config; }
  DeviceContext context() override { return {Device::kCpu, pool_, nullptr}; }
  float* forward(const Batch& batch, KVStrategy& kv) override {
    kvc::forward(model_, batch, kv, acts_, pool_);
    return acts_.logits.data();
  }

 private:
  const Model& model_;
  ThreadPool* pool_;
  Activations acts_;
};

// "cpu" or "cuda" -> Device; throws a one-line kvc::Error for anything else.
Device parse_device(const std::string& name);

// The engine for `device`. weights_dtype ("fp32", "fp16", "bf16") is how the
// GPU stores weight matrices; the CPU engine computes in fp32 only. Throws a
// one-line kvc::Error when CUDA is asked for but not built or no GPU is usable.
std::unique_ptr<Engine> make_engine(const Model& model, Device device, ThreadPool* pool,
                                    const std::string& weights_dtype = "fp32");

}  // namespace kvc
