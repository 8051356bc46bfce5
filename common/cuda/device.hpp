// Is there a usable GPU? Asked before any other CUDA call, so that a machine
// without a GPU or driver gets a one-line reason instead of a crash.
#pragma once

#include <string>

namespace kvc::cuda {

// True when device 0 can run kernels. Otherwise false, with the reason in
// *why (when why is not null), e.g. "no CUDA GPU found".
// Never throws and never aborts.
bool cuda_device_available(std::string* why);

// Throws kvc::Error with the reason when no GPU is usable ("--device cuda: ...").
void require_cuda_device();

// "NVIDIA H100 80GB HBM3 (sm_90, 132 SMs)": for benchmark and demo headers.
std::string cuda_device_description();

// The exit status of a GPU benchmark on a machine without a GPU: ctest counts
// it as skipped (kvc_skip_exit_code in cmake/KvcHelpers.cmake, automake's 77).
inline constexpr int kNoGpuExitCode = 77;

}  // namespace kvc::cuda
