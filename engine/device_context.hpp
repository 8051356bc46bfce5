// Where the engine runs, as a KV strategy needs to know it: the device, and
// that device's execution resources (CPU threads, or a CUDA stream + cuBLAS).
#pragma once

namespace kvc {

class ThreadPool;
namespace cuda {
class CudaContext;
}

enum class Device { kCpu, kCuda };

struct DeviceContext {
  Device device = Device::kCpu;
  ThreadPool* pool = nullptr;         // CPU: threads for kernels (may be null: one thread)
  cuda::CudaContext* cuda = nullptr;  // CUDA: the engine's stream and cuBLAS handle
};

}  // namespace kvc
