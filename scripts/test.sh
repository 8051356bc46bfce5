#!/usr/bin/env bash
# The README's second command: install, build, run the whole test suite.
# CUDA tests skip with a reason when no GPU is present.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
cmake --preset release
cmake --build build -j"$(nproc)"
ctest --test-dir build --output-on-failure -j"$(nproc)"
