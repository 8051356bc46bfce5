// Chapter 02 on the GPU: the same contiguous cache in device memory.
//
// One difference from the CPU layout: the GPU keeps each layer's cache in one
// block, [max_seqs][max_seq_len][n_kv_heads][head_dim], because its kernels
// take one layer's cache for a whole batch of sequences. The memory bill is
// the same: every slot reserves the model's full context.
#pragma once

#include <vector>

#include "chapters/02_contiguous_kv_cache/contiguous_kv_cache.hpp"
#include "common/cuda/device_buffer.hpp"
#include "engine/cuda/cuda_context.hpp"
#include "kernels/cuda/attention.hpp"

namespace kvc::ch02 {

class ContiguousKVCacheCuda final : public KVStrategy {
 public:
  // decode_variant: which kernels/cuda decode variant runs (chapter 03 compares them).
  ContiguousKVCacheCuda(const ModelConfig& config, int max_seqs, cuda::CudaContext& context,
                        int decode_variant = cuda::kBestVariant);

  std::string name() const override { return "02 contiguous cache, cuda"; }
  bool keeps_history() const override { return true; }
  // Checks the positions, then uploads the metadata every layer reads.
  void reserve(const Batch& batch) override;
  void attend(int layer, const Batch& batch, const float* q, const float* k, const float* v,
              float* out) override;
  std::size_t kv_bytes_reserved() const override;
  void release(int seq_id) override { lengths_.release(seq_id); }

  int length(int seq_id) const { return lengths_.length(seq_id); }

 private:
  ModelConfig config_;
  cuda::CudaContext& context_;
  SequenceLengths lengths_;
  int decode_variant_;
  cuda::DecodeShape decode_shape_;                  // one sequence's decode step over its slot
  std::vector<cuda::DeviceBuffer<float>> k_cache_;  // [n_layers] x [max_seqs][max_seq_len][kv_dim]
  std::vector<cuda::DeviceBuffer<float>> v_cache_;  // same
  cuda::DeviceBuffer<std::byte> decode_workspace_;
  // The batch's metadata on the device, uploaded at layer 0 and reused by every layer.
  cuda::DeviceBuffer<int> slots_, positions_, context_lengths_;  // [n] each
};

}  // namespace kvc::ch02
