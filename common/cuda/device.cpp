#include "common/cuda/device.hpp"

#include <cuda_runtime_api.h>

#include "common/check.hpp"
#include "common/cuda/cuda_check.hpp"

namespace kvc::cuda {

bool cuda_device_available(std::string* why) {
  auto fail = [why](const std::string& reason) {
    if (why != nullptr) *why = reason;
    return false;
  };
  int count = 0;
  // Nothing has been launched yet, so nothing can crash here. A machine with
  // the toolkit but no GPU has no driver either: the runtime then reports
  // cudaErrorInsufficientDriver ("CUDA driver version is insufficient"),
  // which would send the user after the wrong problem.
  const cudaError_t status = cudaGetDeviceCount(&count);
  if (status == cudaErrorNoDevice || status == cudaErrorInsufficientDriver) {
    cudaGetLastError();  // clear it, so later calls do not report it again
    return fail("no CUDA GPU found");
  }
  if (status != cudaSuccess) {
    cudaGetLastError();
    return fail(std::string("no usable CUDA device: ") + cudaGetErrorString(status));
  }
  if (count == 0) return fail("no CUDA GPU found");
  // Creating the context catches a driver too old for this toolkit.
  const cudaError_t context_status = cudaFree(nullptr);
  if (context_status != cudaSuccess) {
    cudaGetLastError();
    return fail(std::string("cannot initialise CUDA device 0: ") +
                cudaGetErrorString(context_status));
  }
  return true;
}

void require_cuda_device() {
  std::string why;
  KVC_CHECK(cuda_device_available(&why), "--device cuda: ", why);
}

std::string cuda_device_description() {
  cudaDeviceProp properties{};
  KVC_CUDA_CHECK(cudaGetDeviceProperties(&properties, 0));
  return std::string(properties.name) + " (sm_" + std::to_string(properties.major) +
         std::to_string(properties.minor) + ", " + std::to_string(properties.multiProcessorCount) +
         " SMs)";
}

}  // namespace kvc::cuda
