// The launch behind both paged decode entry points: attention_decode_paged
// (attention_paged.cu, float pages) and attention_decode_paged_quant
// (attention_paged_quant.cu, int8/fp8 codes with per-row scales). Both run the
// same kernels; only the loader (kv_loaders.cuh) that reads a row differs.
#pragma once

#include <cuda_runtime_api.h>

#include "kernels/cuda/attention.hpp"
#include "kernels/cuda/kv_loaders.cuh"

namespace kvc::cuda {

// attention_decode_paged's contract, with k and v given as a CacheSide each (values or
// codes, and the rows' scales where shape.cache_dtype has them: int8, fp8).
void launch_decode_paged(int variant, float* out, const float* q, CacheSide k, CacheSide v,
                         const int* block_tables, const int* table_rows, const int* context_lengths,
                         const PagedDecodeShape& shape, void* workspace, cudaStream_t stream);

}  // namespace kvc::cuda
