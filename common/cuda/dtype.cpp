#include "common/cuda/dtype.hpp"

#include <cstring>

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "common/check.hpp"

namespace kvc::cuda {

std::size_t dtype_size(Dtype dtype) {
  return dtype == Dtype::f32 ? 4 : 2;
}

const char* dtype_name(Dtype dtype) {
  switch (dtype) {
    case Dtype::f32:
      return "fp32";
    case Dtype::f16:
      return "fp16";
    case Dtype::bf16:
      return "bf16";
  }
  KVC_FAIL("unknown Dtype value ", static_cast<int>(dtype));
}

Dtype parse_dtype(const std::string& name) {
  for (Dtype dtype : {Dtype::f32, Dtype::f16, Dtype::bf16})
    if (name == dtype_name(dtype)) return dtype;
  KVC_FAIL("unknown dtype '", name, "' (expected fp32, fp16 or bf16)");
}

std::vector<std::byte> convert_from_f32(const float* values, std::size_t count, Dtype dtype) {
  std::vector<std::byte> bytes(count * dtype_size(dtype));
  switch (dtype) {
    case Dtype::f32:
      if (count > 0) std::memcpy(bytes.data(), values, bytes.size());
      break;
    case Dtype::f16: {
      auto* out = reinterpret_cast<__half*>(bytes.data());
      for (std::size_t i = 0; i < count; ++i) out[i] = __float2half_rn(values[i]);
      break;
    }
    case Dtype::bf16: {
      auto* out = reinterpret_cast<__nv_bfloat16*>(bytes.data());
      for (std::size_t i = 0; i < count; ++i) out[i] = __float2bfloat16_rn(values[i]);
      break;
    }
  }
  return bytes;
}

float round_to_dtype(float value, Dtype dtype) {
  switch (dtype) {
    case Dtype::f32:
      return value;
    case Dtype::f16:
      return __half2float(__float2half_rn(value));
    case Dtype::bf16:
      return __bfloat162float(__float2bfloat16_rn(value));
  }
  KVC_FAIL("unknown Dtype value ", static_cast<int>(dtype));
}

DeviceBuffer<std::byte> upload_as(const float* host_values, std::size_t count, Dtype dtype) {
  return to_device(convert_from_f32(host_values, count, dtype));
}

}  // namespace kvc::cuda
