// Quantized paged decode attention (see attention_paged_quant.hpp): no kernel
// of its own. The shape is attention_paged.cu's with cache_dtype set to the
// codes' format, and its launch runs the paged kernels with the int8/fp8 loader.
//
// Tests: build/bin/kvc_cuda_tests --gtest_filter='*PagedQuant*'
// Compiled, not yet run on a GPU when this was written.
#include "kernels/cuda/attention_paged_quant.hpp"

#include "common/check.hpp"
#include "kernels/cuda/attention_paged_launch.cuh"

namespace kvc::cuda {
namespace {

// `shape` as the paged kernels read `format`'s codes.
PagedDecodeShape coded(const PagedDecodeShape& shape, NumberFormat format) {
  PagedDecodeShape with_format = shape;
  with_format.cache_dtype = format;
  return with_format;
}

// kBestVariant resolved once for 8-bit codes, so a workspace sized without the format
// (attention_decode_paged_quant_workspace_bytes) fits the variant the launch runs.
int resolve(int variant, const PagedDecodeShape& shape) {
  return variant == kBestVariant ? attention_decode_paged_quant_best_variant(shape) : variant;
}

}  // namespace

bool attention_decode_paged_quant_supports(const KvDtype& dtype, std::string* why) {
  const bool ok = dtype.format == NumberFormat::int8 || dtype.format == NumberFormat::fp8_e4m3;
  if (!ok && why) *why = "the CUDA quantized kernel runs int8 and fp8, not " + dtype.name();
  return ok;
}

bool attention_decode_paged_quant_supports(int variant, const KvDtype& dtype,
                                           const PagedDecodeShape& shape, std::string* why) {
  if (!attention_decode_paged_quant_supports(dtype, why)) return false;
  if (!attention_decode_paged_supports(variant, coded(shape, dtype.format), why)) return false;
  return true;
}

int attention_decode_paged_quant_best_variant(const PagedDecodeShape& shape) {
  return attention_decode_paged_best_variant(coded(shape, NumberFormat::int8));
}

std::size_t attention_decode_paged_quant_workspace_bytes(int variant,
                                                         const PagedDecodeShape& shape) {
  if (shape.n_tokens == 0) return 0;
  return attention_decode_paged_workspace_bytes(resolve(variant, shape),
                                                coded(shape, NumberFormat::int8));
}

std::size_t attention_decode_paged_quant_workspace_bytes(const PagedDecodeShape& shape) {
  return attention_decode_paged_quant_workspace_bytes(kBestVariant, shape);
}

void attention_decode_paged_quant(int variant, const KvDtype& dtype, float* out, const float* q,
                                  const unsigned char* k_codes, const float* k_scales,
                                  const unsigned char* v_codes, const float* v_scales,
                                  const int* block_tables, const int* table_rows,
                                  const int* context_lengths, const PagedDecodeShape& shape,
                                  void* workspace, cudaStream_t stream) {
  std::string why;
  KVC_CHECK(attention_decode_paged_quant_supports(dtype, &why),
            "cuda::attention_decode_paged_quant: ", why);
  if (shape.n_tokens == 0) return;
  launch_decode_paged(resolve(variant, shape), out, q, {k_codes, k_scales}, {v_codes, v_scales},
                      block_tables, table_rows, context_lengths, coded(shape, dtype.format),
                      workspace, stream);
}

void attention_decode_paged_quant(const KvDtype& dtype, float* out, const float* q,
                                  const unsigned char* k_codes, const float* k_scales,
                                  const unsigned char* v_codes, const float* v_scales,
                                  const int* block_tables, const int* table_rows,
                                  const int* context_lengths, const PagedDecodeShape& shape,
                                  void* workspace, cudaStream_t stream) {
  attention_decode_paged_quant(kBestVariant, dtype, out, q, k_codes, k_scales, v_codes, v_scales,
                               block_tables, table_rows, context_lengths, shape, workspace, stream);
}

}  // namespace kvc::cuda
