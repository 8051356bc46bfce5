#!/usr/bin/env bash
# On a machine with an NVIDIA GPU: build with CUDA, run every CUDA test against the
# CPU reference (ctest -L cuda), then the paged attention benchmark rows (chapter 04's
# paged decode, chapter 05's split-K and paged prefill, chapter 07's int8/fp8 pools vs
# fp16), printing everything.
#
#   scripts/gpu-check.sh              # tests, then the benchmark rows
#   scripts/gpu-check.sh --tests-only # tests only (a few minutes)
#   BUILD_DIR=build-gpu CUDA_ARCHS=90 scripts/gpu-check.sh   # another build dir, one arch
#
# Exit status: non-zero when the build or a test fails (benchmarks still run after a
# test failure, so one run shows both; their output is in $BUILD_DIR/gpu-check-bench.json).
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1

build_dir=${BUILD_DIR:-build-gpu-check}
archs=${CUDA_ARCHS:-native}  # the GPU at hand; "80;90" builds the project's default pair
tests_only=0
[[ ${1:-} == --tests-only ]] && tests_only=1

if ! nvidia-smi -L; then
  echo "gpu-check: no GPU visible (nvidia-smi failed)" >&2
  exit 1
fi

launcher=()
command -v ccache > /dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache
  -DCMAKE_CUDA_COMPILER_LAUNCHER=ccache)
cmake -S . -B "$build_dir" -DCMAKE_BUILD_TYPE=Release -DKVC_CUDA=ON \
  -DCMAKE_CUDA_ARCHITECTURES="$archs" "${launcher[@]}" || exit 1
cmake --build "$build_dir" -j"$(nproc)" --target kvc_cuda_tests kvc_cuda_ch07_tests \
  bench_cuda_attention bench_cuda_quant || exit 1

echo "== ctest -L cuda"
ctest_log="$build_dir/gpu-check-ctest.log"
ctest --test-dir "$build_dir" -L cuda --output-on-failure -j4 2>&1 | tee "$ctest_log"
test_status=${PIPESTATUS[0]}
# A CUDA test skips only without a GPU: any skip here means the tests did not see it.
if grep -q "(Skipped)" "$ctest_log"; then
  echo "gpu-check: some CUDA tests skipped (no GPU seen by the test binaries)" >&2
  test_status=1
fi
[[ $tests_only == 1 ]] && exit "$test_status"

echo "== bench_cuda_attention: paged prefill from an offset vs the per-token fallback"
"$build_dir/bin/bench_cuda_attention" --benchmark_filter='paged_prefill' \
  --benchmark_out="$build_dir/gpu-check-bench.json"
echo "== bench_cuda_attention: split-K (paged/v3) vs paged v1/v2, one sequence (batch 1)"
"$build_dir/bin/bench_cuda_attention" \
  --benchmark_filter='paged/v[123]/block:16/kv_heads:(1|8|32)/batch:1/'
echo "== bench_cuda_attention: contiguous decode beside them, one sequence"
"$build_dir/bin/bench_cuda_attention" --benchmark_filter='^decode/v[23]/kv_heads:8/batch:1/'
echo "== bench_cuda_quant: int8 and fp8 paged decode vs fp16 (chapter 07), 8 x 16K and 1 x 32K"
"$build_dir/bin/bench_cuda_quant"
exit "$test_status"
