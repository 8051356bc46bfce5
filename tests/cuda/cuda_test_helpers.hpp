// Helpers for the CUDA kernel tests: skip without a GPU, move vectors to and
// from the device, and compare against the CPU reference.
#pragma once

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "common/cuda/device.hpp"
#include "common/cuda/device_buffer.hpp"
#include "common/cuda/dtype.hpp"
#include "tests/kernels/test_helpers.hpp"

// First statement of every test that launches a kernel: CI machines have no GPU.
#define KVC_SKIP_WITHOUT_GPU()                                   \
  do {                                                           \
    std::string kvc_no_gpu_reason;                               \
    if (!::kvc::cuda::cuda_device_available(&kvc_no_gpu_reason)) \
      GTEST_SKIP() << "no GPU: " << kvc_no_gpu_reason;           \
  } while (0)

namespace kvc::test {

// Expects |actual[i] - expected[i]| <= tol + |expected[i]| * eps, printing the first mismatches.
inline void expect_close(const std::vector<float>& actual, const std::vector<float>& expected,
                         double tol, double eps) {
  expect_all_close(actual, std::vector<double>(expected.begin(), expected.end()), tol, eps);
}

// The values a kernel reading `dtype` storage sees: each one rounded through that dtype.
inline std::vector<float> rounded(std::vector<float> values, NumberFormat dtype) {
  for (float& value : values) value = round_to_format(value, dtype);
  return values;
}

inline void synchronize() {
  KVC_CUDA_CHECK(cudaDeviceSynchronize());
}

}  // namespace kvc::test
