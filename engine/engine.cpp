#include "engine/engine.hpp"

#include "common/check.hpp"
#include "common/number_format.hpp"

#ifdef KVC_HAVE_CUDA
#include "engine/cuda/cuda_engine.hpp"
#endif

namespace kvc {

Device parse_device(const std::string& name) {
  if (name == "cpu") return Device::kCpu;
  if (name == "cuda") return Device::kCuda;
  KVC_FAIL("unknown device '", name, "' (choose cpu or cuda)");
}

std::unique_ptr<Engine> make_engine(const Model& model, Device device, ThreadPool* pool,
                                    const std::string& weights_dtype) {
  const NumberFormat weights_format = parse_float_format(weights_dtype, "--weights-dtype");
  if (device == Device::kCpu) {
    KVC_CHECK(weights_format == NumberFormat::fp32, "--weights-dtype ", weights_dtype,
              ": the CPU engine computes in fp32 only (fp16/bf16 weights are for --device cuda)");
    return std::make_unique<CpuEngine>(model, pool);
  }
#ifdef KVC_HAVE_CUDA
  return std::make_unique<cuda::CudaEngine>(model, weights_format);
#else
  KVC_FAIL(
      "--device cuda: this build has no CUDA support (configure with -DKVC_CUDA=ON where nvcc "
      "is installed)");
#endif
}

}  // namespace kvc
