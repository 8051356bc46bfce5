#include "common/cuda/dtype.hpp"

namespace kvc::cuda {

DeviceBuffer<std::byte> upload_as(const float* host_values, std::size_t count,
                                  NumberFormat format) {
  return to_device(convert_from_f32(host_values, count, format));
}

}  // namespace kvc::cuda
