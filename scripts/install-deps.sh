#!/usr/bin/env bash
# Installs the Debian packages the course builds with, skipping what is already there.
# The CUDA toolkit is optional: with nvcc in /usr/local/cuda the CUDA kernels are built too.
set -euo pipefail

packages=(cmake g++ make libgtest-dev googletest libbenchmark-dev libcli11-dev)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "Installing: ${missing[*]}"
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
