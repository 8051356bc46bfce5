// The device layer: availability check, buffers, status checks, dtypes.
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

TEST(CudaDevice, DtypeNamesRoundTrip) {
  for (Dtype dtype : {Dtype::f32, Dtype::f16, Dtype::bf16})
    EXPECT_EQ(parse_dtype(dtype_name(dtype)), dtype);
  EXPECT_THROW(parse_dtype("fp8"), kvc::Error);
  EXPECT_EQ(dtype_size(Dtype::f32), 4u);
  EXPECT_EQ(dtype_size(Dtype::f16), 2u);
  EXPECT_EQ(dtype_size(Dtype::bf16), 2u);
}

TEST(CudaDevice, RoundingMatchesTheFormats) {
  // 1 + 2^-11 is halfway between fp16 neighbours 1 and 1 + 2^-10: ties round to even (1).
  EXPECT_EQ(round_to_dtype(1.0f + 1.0f / 2048, Dtype::f16), 1.0f);
  EXPECT_EQ(round_to_dtype(1.0f + 3.0f / 2048, Dtype::f16), 1.0f + 2.0f / 1024);
  // bf16 keeps 8 significant bits: 1 + 2^-7 survives, 1 + 2^-9 does not.
  EXPECT_EQ(round_to_dtype(1.0f + 1.0f / 128, Dtype::bf16), 1.0f + 1.0f / 128);
  EXPECT_EQ(round_to_dtype(1.0f + 1.0f / 512, Dtype::bf16), 1.0f);
  EXPECT_EQ(round_to_dtype(0.1f, Dtype::f32), 0.1f);
  EXPECT_EQ(convert_from_f32(std::vector<float>(5).data(), 5, Dtype::bf16).size(), 10u);
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
