// The device layer: availability check, buffers, status checks.
#include <gtest/gtest.h>

#include <cuda_runtime_api.h>

#include <limits>
#include <string>
#include <vector>

#include "common/check.hpp"
#include "common/cuda/cuda_check.hpp"
#include "tests/cuda/cuda_test_helpers.hpp"

namespace kvc::cuda {
namespace {

// Runs everywhere, GPU or not: the check answers instead of crashing.
TEST(CudaDevice, AvailabilityAnswersWithAReason) {
  std::string why;
  const bool available = cuda_device_available(&why);
  if (available) {
    EXPECT_TRUE(why.empty());
    EXPECT_FALSE(cuda_device_description().empty());
  } else {
    EXPECT_FALSE(why.empty());
    EXPECT_THROW(require_cuda_device(), kvc::Error);
  }
  EXPECT_EQ(cuda_device_available(nullptr), available);
}

TEST(CudaDevice, BufferRoundTripsThroughTheDevice) {
  KVC_SKIP_WITHOUT_GPU();
  const std::vector<float> host = test::random_floats(1000, 1);
  DeviceBuffer<float> buffer = to_device(host);
  EXPECT_EQ(buffer.size(), host.size());
  EXPECT_EQ(to_host(buffer), host);

  DeviceBuffer<float> moved = std::move(buffer);
  EXPECT_EQ(buffer.data(), nullptr);
  EXPECT_EQ(to_host(moved), host);
}

TEST(CudaDevice, FailedCallsNameTheCallAndTheError) {
  KVC_SKIP_WITHOUT_GPU();
  try {
    DeviceBuffer<float> too_big(std::numeric_limits<std::size_t>::max() / 8);
    FAIL() << "allocating exabytes succeeded";
  } catch (const kvc::Error& error) {
    const std::string message = error.what();
    EXPECT_NE(message.find("cudaMalloc"), std::string::npos) << message;
    EXPECT_NE(message.find("cudaErrorMemoryAllocation"), std::string::npos) << message;
  }
  cudaGetLastError();  // leave no error behind for the next test
}

}  // namespace
}  // namespace kvc::cuda
