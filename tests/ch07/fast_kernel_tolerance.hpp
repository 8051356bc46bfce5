// How far the CPU cache's fast decode kernel may sit from dequantize-then-
// reference (or from another kernel over the same codes): it rounds
// differently (FMA, the scale after the sum, a vector exp), and over an int8
// pool variant 4 also rounds q and each chunk's softmax weights to int16.
#pragma once

#include "common/kv_dtype.hpp"

namespace kvc::testing {

inline float fast_kernel_tolerance(const KvDtype& dtype) {
  return dtype.format == NumberFormat::int8 ? 2e-4f : 1e-5f;
}

}  // namespace kvc::testing
