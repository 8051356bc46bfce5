// Storage types of device tensors: weights and KV caches are kept in fp32,
// fp16 or bf16; activations are always fp32. Conversions round to nearest even.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "common/cuda/device_buffer.hpp"

namespace kvc::cuda {

enum class Dtype { f32, f16, bf16 };

// Bytes per element: 4, 2, 2.
std::size_t dtype_size(Dtype dtype);
// "fp32", "fp16", "bf16": the spelling of --weights-dtype / --kv-dtype.
const char* dtype_name(Dtype dtype);
// Inverse of dtype_name; throws kvc::Error listing the choices for anything else.
Dtype parse_dtype(const std::string& name);

// `count` floats rounded to `dtype`, as raw bytes (count * dtype_size(dtype)).
std::vector<std::byte> convert_from_f32(const float* values, std::size_t count, Dtype dtype);
// What a float becomes after a round trip through `dtype`: the value a kernel
// reading that storage sees. CPU references use it to get the same inputs.
float round_to_dtype(float value, Dtype dtype);

// Conversion on upload: `count` floats from the host, stored on the device in `dtype`.
DeviceBuffer<std::byte> upload_as(const float* host_values, std::size_t count, Dtype dtype);

}  // namespace kvc::cuda
