// What every GPU benchmark times with: CUDA events on a stream, and the
// device-to-device copy bandwidth that bytes/s counters are divided by,
// measured once at start-up and reported beside the results.
#pragma once

#include <benchmark/benchmark.h>

#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdio>
#include <string>

#include "common/cuda/cuda_check.hpp"
#include "common/cuda/device.hpp"
#include "common/cuda/device_buffer.hpp"

namespace kvc::cuda {

// Times `work` on the stream with CUDA events; milliseconds.
template <typename Work>
float time_on_stream(cudaStream_t stream, Work&& work) {
  cudaEvent_t start;
  cudaEvent_t stop;
  KVC_CUDA_CHECK(cudaEventCreate(&start));
  KVC_CUDA_CHECK(cudaEventCreate(&stop));
  KVC_CUDA_CHECK(cudaEventRecord(start, stream));
  work();
  KVC_CUDA_CHECK(cudaEventRecord(stop, stream));
  KVC_CUDA_CHECK(cudaEventSynchronize(stop));
  float ms = 0.0f;
  KVC_CUDA_CHECK(cudaEventElapsedTime(&ms, start, stop));
  KVC_CUDA_CHECK(cudaEventDestroy(start));
  KVC_CUDA_CHECK(cudaEventDestroy(stop));
  return ms;
}

// Device-to-device copy bandwidth in GB/s, counting bytes read plus bytes written
// (as CUDA's bandwidthTest does): the practical ceiling for a kernel that streams memory.
inline double measure_copy_bandwidth_gbps(cudaStream_t stream) {
  const std::size_t bytes = std::size_t(1) << 30;
  DeviceBuffer<std::byte> from(bytes);
  DeviceBuffer<std::byte> to(bytes);
  KVC_CUDA_CHECK(cudaMemsetAsync(from.data(), 1, bytes, stream));
  constexpr int kCopies = 20;
  auto copy = [&] {
    KVC_CUDA_CHECK(
        cudaMemcpyAsync(to.data(), from.data(), bytes, cudaMemcpyDeviceToDevice, stream));
  };
  copy();  // warm up
  const float ms = time_on_stream(stream, [&] {
    for (int i = 0; i < kCopies; ++i) copy();
  });
  return 2.0 * bytes * kCopies / (ms * 1e-3) / 1e9;
}

// measure_copy_bandwidth_gbps, added to the benchmark's context (with the
// device) and printed: what the program's counters are fractions of.
inline double report_copy_bandwidth(cudaStream_t stream) {
  const double gbps = measure_copy_bandwidth_gbps(stream);
  benchmark::AddCustomContext("device", cuda_device_description());
  benchmark::AddCustomContext("copy_GBps", std::to_string(gbps));
  std::printf("%s: device-to-device copy %.0f GB/s (read + write)\n",
              cuda_device_description().c_str(), gbps);
  return gbps;
}

}  // namespace kvc::cuda
