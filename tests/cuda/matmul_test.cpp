// cuBLAS matmul against the CPU's double-precision reference, for each weight dtype.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "kernels/cpu/ops.hpp"
#include "kernels/cuda/matmul.hpp"
#include "tests/cuda/cuda_test_helpers.hpp"

namespace kvc::cuda {
namespace {

TEST(CudaMatmul, MatchesReferenceForEveryWeightDtype) {
  KVC_SKIP_WITHOUT_GPU();
  CublasHandle cublas;
  struct Shape {
    int n, d_in, d_out;
  };
  for (Shape s :
       {Shape{1, 64, 64}, {1, 288, 32000}, {7, 288, 768}, {33, 127, 65}, {130, 512, 96}}) {
    for (NumberFormat dtype : {NumberFormat::fp32, NumberFormat::fp16, NumberFormat::bf16}) {
      SCOPED_TRACE(testing::Message() << "n=" << s.n << " d_in=" << s.d_in << " d_out=" << s.d_out
                                      << " " << format_name(dtype));
      const std::vector<float> x = test::random_floats(std::size_t(s.n) * s.d_in, 20);
      const std::vector<float> w = test::random_floats(std::size_t(s.d_out) * s.d_in, 21);
      // The GPU multiplies x and w as rounded to the weight dtype, exactly, in fp32.
      const std::vector<float> x_seen = test::rounded(x, dtype);
      const std::vector<float> w_seen = test::rounded(w, dtype);
      std::vector<float> expected(std::size_t(s.n) * s.d_out);
      cpu::matmul_reference(expected.data(), x_seen.data(), w_seen.data(), s.n, s.d_in, s.d_out);

      const DeviceBuffer<float> d_x = to_device(x);
      const DeviceBuffer<std::byte> d_w = upload_as(w.data(), w.size(), dtype);
      DeviceBuffer<std::byte> d_scratch(matmul_scratch_bytes(dtype, s.n, s.d_in));
      DeviceBuffer<float> d_out(expected.size());
      matmul(cublas.get(), d_out.data(), d_x.data(), d_w.data(), dtype, s.n, s.d_in, s.d_out,
             d_scratch.data(), nullptr);
      // fp32 sums of d_in terms of size ~1: error grows like sqrt(d_in) * 2^-24 * d_in.
      test::expect_close(to_host(d_out), expected, 1e-6 * s.d_in, 1e-5);
    }
  }
}

TEST(CudaMatmul, LowPrecisionWeightsWithoutScratchAreAnError) {
  KVC_SKIP_WITHOUT_GPU();
  CublasHandle cublas;
  DeviceBuffer<float> x(8);
  DeviceBuffer<float> out(8);
  DeviceBuffer<std::byte> w(64 * 2);
  EXPECT_THROW(matmul(cublas.get(), out.data(), x.data(), w.data(), NumberFormat::fp16, 1, 8, 8,
                      nullptr, nullptr),
               kvc::Error);
}

}  // namespace
}  // namespace kvc::cuda
