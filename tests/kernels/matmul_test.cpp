#include <gtest/gtest.h>

#include <cstddef>
#include <memory>
#include <vector>

#include "common/thread_pool.hpp"
#include "kernels/cpu/ops.hpp"
#include "tests/kernels/test_helpers.hpp"

namespace kvc::cpu {
namespace {

using test::expect_all_close;
using test::expect_bit_identical;
using test::random_floats;

// out: [n][d_out], accumulated in double straight from the definition.
std::vector<double> matmul_in_double(const std::vector<float>& x, const std::vector<float>& w,
                                     int n, int d_in, int d_out) {
  std::vector<double> out(std::size_t(n) * d_out);
  for (int i = 0; i < n; ++i) {
    for (int j = 0; j < d_out; ++j) {
      double sum = 0.0;
      for (int k = 0; k < d_in; ++k) {
        sum += double(x[std::size_t(i) * d_in + k]) * w[std::size_t(j) * d_in + k];
      }
      out[std::size_t(i) * d_out + j] = sum;
    }
  }
  return out;
}

struct Shape {
  int n, d_in, d_out;
};

// Odd sizes on purpose: d_in with a tail after the 8-wide lanes, d_out not a
// multiple of the column tile, n not a multiple of the row tile; the last two
// are big enough (> 32K multiply-adds) to be split across threads.
const Shape kShapes[] = {
    {1, 1, 1},     {1, 7, 5},     {3, 8, 3},    {3, 9, 31},     {17, 33, 97},
    {1, 288, 288}, {17, 301, 97}, {4, 64, 257}, {1, 601, 1001}, {19, 301, 515},
};

TEST(Matmul, ReferenceMatchesDoubleAccumulation) {
  const Shape shape{5, 37, 11};
  const auto x = random_floats(std::size_t(shape.n) * shape.d_in, 1);
  const auto w = random_floats(std::size_t(shape.d_out) * shape.d_in, 2);
  std::vector<float> out(std::size_t(shape.n) * shape.d_out);
  matmul_reference(out.data(), x.data(), w.data(), shape.n, shape.d_in, shape.d_out);
  expect_all_close(out, matmul_in_double(x, w, shape.n, shape.d_in, shape.d_out), 1e-6, 1e-6);
}

TEST(Matmul, MatchesReferenceOnOddShapes) {
  for (int threads : {0, 1, 2, 3}) {
    const auto pool = threads > 0 ? std::make_unique<ThreadPool>(threads) : nullptr;
    for (const Shape& shape : kShapes) {
      SCOPED_TRACE(testing::Message() << "n " << shape.n << ", d_in " << shape.d_in << ", d_out "
                                      << shape.d_out << ", threads " << threads);
      const auto x = random_floats(std::size_t(shape.n) * shape.d_in, 10 + shape.d_in);
      const auto w = random_floats(std::size_t(shape.d_out) * shape.d_in, 20 + shape.d_out);
      std::vector<float> out(std::size_t(shape.n) * shape.d_out);
      matmul(out.data(), x.data(), w.data(), shape.n, shape.d_in, shape.d_out, pool.get());
      expect_all_close(out, matmul_in_double(x, w, shape.n, shape.d_in, shape.d_out), 1e-4, 1e-5);
    }
  }
}

// The determinism contract: a row's result has the same bits whether it is
// computed alone (decode), anywhere inside a batch (prefill), or with any
// number of threads.
TEST(Matmul, RowResultIsIndependentOfBatchAndThreads) {
  constexpr int kBatch = 37;
  constexpr int kDIn = 301;    // 37 lanes of 8 plus a tail of 5
  constexpr int kDOut = 1747;  // not a multiple of the column tile; threaded even for n = 1
  const auto x = random_floats(std::size_t(kBatch) * kDIn, 3);
  const auto w = random_floats(std::size_t(kDOut) * kDIn, 4);

  std::vector<float> batch_single_thread(std::size_t(kBatch) * kDOut);
  matmul(batch_single_thread.data(), x.data(), w.data(), kBatch, kDIn, kDOut, nullptr);

  for (int threads : {1, 2, 3}) {
    SCOPED_TRACE(testing::Message() << "threads " << threads);
    ThreadPool pool(threads);

    std::vector<float> batch(std::size_t(kBatch) * kDOut);
    matmul(batch.data(), x.data(), w.data(), kBatch, kDIn, kDOut, &pool);
    expect_bit_identical(batch.data(), batch_single_thread.data(), batch.size());

    std::vector<float> row(kDOut);
    for (int i = 0; i < kBatch; ++i) {
      matmul(row.data(), x.data() + std::size_t(i) * kDIn, w.data(), 1, kDIn, kDOut, &pool);
      expect_bit_identical(row.data(), batch_single_thread.data() + std::size_t(i) * kDOut, kDOut);
    }

    // A sub-batch that starts mid-tile: rows 5..21 computed as a batch of 17.
    constexpr int kFirst = 5, kCount = 17;
    std::vector<float> sub_batch(std::size_t(kCount) * kDOut);
    matmul(sub_batch.data(), x.data() + std::size_t(kFirst) * kDIn, w.data(), kCount, kDIn, kDOut,
           &pool);
    expect_bit_identical(sub_batch.data(), batch_single_thread.data() + std::size_t(kFirst) * kDOut,
                         sub_batch.size());
  }
}

}  // namespace
}  // namespace kvc::cpu
