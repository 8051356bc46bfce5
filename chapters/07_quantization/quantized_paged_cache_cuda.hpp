// Chapter 07 on the GPU: the quantized paged cache with its codes and scales
// in device memory (int8 and fp8).
//
// The bookkeeping is chapter 04's (a BlockManager on the host), and so is the
// once-per-forward upload of the batch's slots, block tables and context
// lengths (chapters/04_paged_allocator/paged_kv_cache_cuda.hpp). Per layer,
// one kernel quantizes the batch's K and V rows into the pool
// (kernels/cuda/kv_quantize.hpp), then one paged decode kernel over the codes
// (kernels/cuda/attention_paged_quant.hpp) attends for every token of the
// batch. Prefill tokens too run through it, each as a decode query over its
// own positions 0..pos: the CPU cache does the same, so both read the same
// codes, and there is no quantized prefill kernel yet.
//   k_codes:  [n_layers][num_blocks][block_size][n_kv_heads][head_dim] bytes (v_codes the same)
//   k_scales: [n_layers][num_blocks][block_size][n_kv_heads] floats         (v_scales the same)
#pragma once

#include <cstdint>
#include <vector>

#include "chapters/04_paged_allocator/paged_kv_cache.hpp"
#include "common/cuda/device_buffer.hpp"
#include "common/kv_dtype.hpp"
#include "engine/cuda/cuda_context.hpp"
#include "kernels/cuda/attention.hpp"

namespace kvc::ch07 {

class QuantizedPagedKVCacheCuda final : public ch04::PagedKVStrategy {
 public:
  // Throws kvc::Error for a format other than int8 or fp8, a block size
  // outside [1, 256] or fewer than one block.
  QuantizedPagedKVCacheCuda(const ModelConfig& config, const KvDtype& dtype, int num_blocks,
                            int block_size, cuda::CudaContext& context);

  std::string name() const override {
    return "07 quantized paged cache (" + dtype_.name() + "), cuda";
  }
  void attend(int layer, const Batch& batch, const float* q, const float* k, const float* v,
              float* out) override;

  const KvDtype& dtype() const { return dtype_; }

  // One layer of the pool copied to the host (blocking), in the layout above.
  struct HostLayer {
    std::vector<unsigned char> k_codes, v_codes;
    std::vector<float> k_scales, v_scales;
  };
  HostLayer download_layer(int layer) const;

 private:
  void prepare(const Batch& batch, std::vector<std::int64_t> slots) override;
  void copy_block(const ch04::BlockCopy& copy) override;
  std::size_t codes_per_layer() const { return layout_.values_per_layer(); }
  std::size_t scales_per_layer() const { return codes_per_layer() / layout_.head_dim; }

  KvDtype dtype_;
  int n_heads_;
  cuda::CudaContext& context_;
  cuda::DeviceBuffer<unsigned char> k_codes_, v_codes_;
  cuda::DeviceBuffer<float> k_scales_, v_scales_;

  // The batch, as reserve() placed it: every token attends through the tables.
  std::vector<std::int64_t> slots_;   // [n] pool row of each token
  ch04::BatchBlockTables tables_;     // one row per sequence of the batch
  std::vector<int> context_lengths_;  // [n] pos + 1
  cuda::DeviceBuffer<std::int64_t> d_slots_;
  cuda::DeviceBuffer<int> d_block_tables_, d_table_rows_, d_context_lengths_;
  cuda::DeviceBuffer<std::byte> workspace_;
  int tokens_per_launch_ = 1;  // the workspace's score rows are bounded: long prefills run in parts
};

}  // namespace kvc::ch07
