#!/usr/bin/env bash
# Builds the exercise variant (build-ex, against exercises/) and runs exactly
# the tests a learner who has finished chapters 01..N can pass: the labels
# core, kernels and ch01 .. chN. Every test carries the label of the highest
# chapter whose exercises it needs.
#   scripts/check-exercises.sh 2          # chapters 01 and 02 done
#   scripts/check-exercises.sh 4 -j2      # extra arguments go to ctest
set -euo pipefail

usage="usage: scripts/check-exercises.sh N [ctest arguments], N = the last chapter done (1-7)"
last=${1:-}
if [[ ! $last =~ ^[1-7]$ ]]; then
  echo "check-exercises: $usage" >&2
  exit 2
fi
shift

cd "$(dirname "$0")/.."
cmake --preset exercises >/dev/null  # build-ex, against exercises/
# Build first: ctest alone runs whatever binaries a failed build left behind.
cmake --build --preset exercises -j"$(nproc)"
ctest --test-dir build-ex -L "^(core|kernels|ch0[1-$last])\$" --output-on-failure "$@"
