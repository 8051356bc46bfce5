// Row and pointwise kernels against the CPU reference (kernels/cpu/ops.hpp).
#include <gtest/gtest.h>

#include <cstddef>
#include <vector>

#include "common/sampler.hpp"
#include "kernels/cpu/ops.hpp"
#include "kernels/cuda/ops.hpp"
#include "tests/cuda/cuda_test_helpers.hpp"

namespace kvc::cuda {
namespace {

using test::expect_close;
using test::random_floats;

constexpr cudaStream_t kStream = nullptr;

TEST(CudaOps, EmbeddingGathersRowsInEveryDtype) {
  KVC_SKIP_WITHOUT_GPU();
  const int vocab = 37;
  const int dim = 67;
  const std::vector<int> tokens = {5, 0, 36, 5, 12, 1, 30};
  const int n = static_cast<int>(tokens.size());
  const std::vector<float> table = random_floats(std::size_t(vocab) * dim, 2);
  for (NumberFormat dtype : {NumberFormat::fp32, NumberFormat::fp16, NumberFormat::bf16}) {
    SCOPED_TRACE(format_name(dtype));
    const std::vector<float> seen = test::rounded(table, dtype);
    std::vector<float> expected;
    for (int token : tokens)
      expected.insert(expected.end(), seen.begin() + std::size_t(token) * dim,
                      seen.begin() + std::size_t(token + 1) * dim);

    const DeviceBuffer<std::byte> d_table = upload_as(table.data(), table.size(), dtype);
    const DeviceBuffer<int> d_tokens = to_device(tokens);
    DeviceBuffer<float> d_out(std::size_t(n) * dim);
    embedding(d_out.data(), d_table.data(), dtype, d_tokens.data(), n, dim, kStream);
    expect_close(to_host(d_out), expected, 0.0, 0.0);
  }
}

TEST(CudaOps, RmsnormMatchesCpu) {
  KVC_SKIP_WITHOUT_GPU();
  for (auto [n, dim] : {std::pair{1, 64}, {5, 288}, {3, 1000}, {7, 4096}, {2, 33}}) {
    SCOPED_TRACE(testing::Message() << "n=" << n << " dim=" << dim);
    const std::vector<float> x = random_floats(std::size_t(n) * dim, 3, -4.0f, 4.0f);
    const std::vector<float> weight = random_floats(dim, 4);
    std::vector<float> expected(x.size());
    cpu::rmsnorm(expected.data(), x.data(), weight.data(), n, dim);

    const DeviceBuffer<float> d_x = to_device(x);
    const DeviceBuffer<float> d_weight = to_device(weight);
    DeviceBuffer<float> d_out(x.size());
    rmsnorm(d_out.data(), d_x.data(), d_weight.data(), n, dim, kStream);
    expect_close(to_host(d_out), expected, 1e-6, 1e-5);
  }
}

TEST(CudaOps, RopeMatchesCpu) {
  KVC_SKIP_WITHOUT_GPU();
  struct Shape {
    int n, n_heads, n_kv_heads, head_dim;
  };
  for (Shape s : {Shape{1, 8, 4, 8}, {13, 8, 2, 64}, {9, 4, 4, 128}, {5, 6, 3, 48}}) {
    SCOPED_TRACE(testing::Message() << "n=" << s.n << " heads=" << s.n_heads << "/" << s.n_kv_heads
                                    << " head_dim=" << s.head_dim);
    std::vector<float> q = random_floats(std::size_t(s.n) * s.n_heads * s.head_dim, 5);
    std::vector<float> k = random_floats(std::size_t(s.n) * s.n_kv_heads * s.head_dim, 6);
    std::vector<int> positions(s.n);
    for (int i = 0; i < s.n; ++i) positions[i] = (i * 977) % 5003;  // large, unordered positions

    DeviceBuffer<float> d_q = to_device(q);
    DeviceBuffer<float> d_k = to_device(k);
    const DeviceBuffer<int> d_positions = to_device(positions);
    rope(d_q.data(), d_k.data(), d_positions.data(), s.n, s.n_heads, s.n_kv_heads, s.head_dim,
         kStream);
    cpu::rope(q.data(), k.data(), positions.data(), s.n, s.n_heads, s.n_kv_heads, s.head_dim);
    // Same rounding as the CPU (see pointwise.cu): equal up to a rare last-bit difference.
    expect_close(to_host(d_q), q, 1e-7, 1e-6);
    expect_close(to_host(d_k), k, 1e-7, 1e-6);
  }
}

TEST(CudaOps, SwigluAndAddMatchCpu) {
  KVC_SKIP_WITHOUT_GPU();
  for (std::size_t size : {std::size_t{1}, std::size_t{777}, std::size_t{3 * 11008 + 5}}) {
    SCOPED_TRACE(testing::Message() << "size=" << size);
    std::vector<float> gate = random_floats(size, 7, -6.0f, 6.0f);
    const std::vector<float> up = random_floats(size, 8);
    DeviceBuffer<float> d_gate = to_device(gate);
    const DeviceBuffer<float> d_up = to_device(up);

    swiglu(d_gate.data(), d_up.data(), size, kStream);
    cpu::swiglu(gate.data(), up.data(), size);
    expect_close(to_host(d_gate), gate, 1e-6, 1e-5);

    add_inplace(d_gate.data(), d_up.data(), size, kStream);
    cpu::add_inplace(gate.data(), up.data(), size);
    expect_close(to_host(d_gate), gate, 1e-6, 1e-5);
  }
}

TEST(CudaOps, SoftmaxMatchesCpuRowByRow) {
  KVC_SKIP_WITHOUT_GPU();
  for (auto [n, size] : {std::pair{1, 1}, {4, 512}, {3, 32000}, {2, 1001}}) {
    SCOPED_TRACE(testing::Message() << "n=" << n << " size=" << size);
    std::vector<float> x = random_floats(std::size_t(n) * size, 9, -20.0f, 20.0f);
    DeviceBuffer<float> d_x = to_device(x);
    softmax(d_x.data(), n, size, kStream);
    for (int i = 0; i < n; ++i) cpu::softmax(x.data() + std::size_t(i) * size, size);
    expect_close(to_host(d_x), x, 1e-7, 1e-5);
  }
}

TEST(CudaOps, ArgmaxPicksTheFirstMaximumLikeTheCpu) {
  KVC_SKIP_WITHOUT_GPU();
  const int size = 32000;
  const int n = 4;
  std::vector<float> x = random_floats(std::size_t(n) * size, 10);
  // Row 1: a tie between two late positions; row 2: every value equal; row 3: max at the end.
  x[1 * size + 20000] = 5.0f;
  x[1 * size + 31000] = 5.0f;
  std::fill(x.begin() + 2 * size, x.begin() + 3 * size, -1.0f);
  x[3 * size + size - 1] = 7.0f;

  const DeviceBuffer<float> d_x = to_device(x);
  DeviceBuffer<int> d_out(n);
  argmax(d_out.data(), d_x.data(), n, size, kStream);
  const std::vector<int> got = to_host(d_out);
  for (int i = 0; i < n; ++i)
    EXPECT_EQ(got[i], kvc::argmax(x.data() + std::size_t(i) * size, size)) << "row " << i;
  EXPECT_EQ(got[1], 20000);
  EXPECT_EQ(got[2], 0);
}

TEST(CudaOps, KvCacheStoreWritesRoundedRowsAtTheirSlots) {
  KVC_SKIP_WITHOUT_GPU();
  const int n_slots = 3;
  const int max_ctx = 11;
  const int n_kv_heads = 2;
  const int head_dim = 24;
  const int row = n_kv_heads * head_dim;
  const std::vector<int> slots = {0, 2, 2, 1, 0};
  const std::vector<int> positions = {0, 10, 3, 7, 5};
  const int n = static_cast<int>(slots.size());
  const std::vector<float> k = random_floats(std::size_t(n) * row, 11);
  const std::vector<float> v = random_floats(std::size_t(n) * row, 12);
  for (NumberFormat dtype : {NumberFormat::fp32, NumberFormat::fp16, NumberFormat::bf16}) {
    SCOPED_TRACE(format_name(dtype));
    const std::size_t cache_size = std::size_t(n_slots) * max_ctx * row;
    const std::vector<float> zeros(cache_size, 0.0f);
    DeviceBuffer<std::byte> d_k_cache = upload_as(zeros.data(), cache_size, dtype);
    DeviceBuffer<std::byte> d_v_cache = upload_as(zeros.data(), cache_size, dtype);
    const DeviceBuffer<float> d_k = to_device(k);
    const DeviceBuffer<float> d_v = to_device(v);
    const DeviceBuffer<int> d_slots = to_device(slots);
    const DeviceBuffer<int> d_positions = to_device(positions);
    kv_cache_store(d_k_cache.data(), d_v_cache.data(), dtype, d_k.data(), d_v.data(),
                   d_slots.data(), d_positions.data(), n, max_ctx, n_kv_heads, head_dim, kStream);

    std::vector<float> expected_k(cache_size, 0.0f);
    std::vector<float> expected_v(cache_size, 0.0f);
    for (int i = 0; i < n; ++i)
      for (int c = 0; c < row; ++c) {
        const std::size_t at = (std::size_t(slots[i]) * max_ctx + positions[i]) * row + c;
        expected_k[at] = round_to_format(k[std::size_t(i) * row + c], dtype);
        expected_v[at] = round_to_format(v[std::size_t(i) * row + c], dtype);
      }
    EXPECT_EQ(to_host(d_k_cache), convert_from_f32(expected_k.data(), cache_size, dtype));
    EXPECT_EQ(to_host(d_v_cache), convert_from_f32(expected_v.data(), cache_size, dtype));
  }
}

}  // namespace
}  // namespace kvc::cuda
