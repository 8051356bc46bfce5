#!/usr/bin/env bash
# The README's first command: install, build (Release), run the course tour.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
cmake --preset release
cmake --build build -j"$(nproc)"
build/bin/kvc_tour "$@"
