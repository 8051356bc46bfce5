#!/usr/bin/env bash
# Builds the libFuzzer targets (clang, ASan + UBSan) in build-fuzz and runs
# each for SECONDS (default 30) from its seed corpus in fuzz/corpus/<target>/.
# Fails on the first crash, sanitizer report or leak; the input that caused it
# is saved as build-fuzz/artifacts/<target>-crash-<sha1>. See fuzz/README.md.
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-30}"
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  targets=(fuzz_checkpoint_legacy fuzz_checkpoint_v1 fuzz_tokenizer_load fuzz_encode
           fuzz_prompts_file fuzz_request_lengths)
fi

launcher=()
command -v ccache >/dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
CC=clang CXX=clang++ cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo -DKVC_FUZZ=ON \
  -DKVC_CUDA=OFF -DKVC_BENCHMARKS=OFF "${launcher[@]}" >/dev/null
cmake --build build-fuzz -j"$(nproc)" --target "${targets[@]}"

mkdir -p build-fuzz/artifacts
for target in "${targets[@]}"; do
  # New inputs go to a scratch corpus; the committed seeds stay as they are.
  work="build-fuzz/corpus/${target}"
  mkdir -p "${work}"
  echo "== ${target}: ${seconds} s"
  "build-fuzz/bin/${target}" -max_total_time="${seconds}" -max_len=8192 -timeout=10 \
    -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="build-fuzz/artifacts/${target}-" "${work}" "fuzz/corpus/${target}" \
    2>"build-fuzz/${target}.log" || { tail -n 60 "build-fuzz/${target}.log"; exit 1; }
  grep -E "stat::number_of_executed_units|stat::peak_rss_mb" "build-fuzz/${target}.log"
done
echo "fuzzing passed: no crash in ${#targets[@]} targets x ${seconds} s"
