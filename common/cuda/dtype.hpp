// Storage of device tensors: weights and KV caches are kept in a float format
// (fp32, fp16 or bf16, common/number_format.hpp); activations are always fp32.
// The conversion rounds on the host, to nearest even.
#pragma once

#include <cstddef>

#include "common/cuda/device_buffer.hpp"
#include "common/number_format.hpp"

namespace kvc::cuda {

// Conversion on upload: `count` floats from the host, stored on the device in `format`
// (a float format; throws kvc::Error for another).
DeviceBuffer<std::byte> upload_as(const float* host_values, std::size_t count, NumberFormat format);

}  // namespace kvc::cuda
