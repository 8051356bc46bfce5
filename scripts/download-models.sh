#!/usr/bin/env bash
# Fetches the larger TinyStories checkpoints (llama2.c's `tinyllamas`, MIT licence) into models/.
# Only when asked: the build and the tests never download anything.
#
#   scripts/download-models.sh                 # stories15M
#   scripts/download-models.sh 15M 42M 110M    # any of them
#
# Each file is checked before it is kept: its llama2.c header must be the model's known shape and
# its size exactly what that header implies. The release publishes no checksums, so the script
# prints the SHA-256 of what it got for you to record. They run with `-z models/tokenizer.bin`.
set -euo pipefail
cd "$(dirname "$0")/.."

base_url="https://huggingface.co/karpathy/tinyllamas/resolve/main"

# The seven header ints (dim hidden_dim n_layers n_heads n_kv_heads vocab_size seq_len) per model.
declare -A shapes=(
  [15M]="288 768 6 6 6 32000 256"
  [42M]="512 1376 8 8 8 32000 1024"
  [110M]="768 2048 12 12 12 32000 1024"
)

# Bytes of a legacy llama2.c checkpoint with a shared classifier (the layout in common/checkpoint.hpp).
expected_bytes() {
  local d=$1 h=$2 L=$3 heads=$4 kv_heads=$5 V=$6 seq=$7
  local head_dim=$((d / heads)) kv=$((kv_heads * d / heads))
  local floats=$((V * d + L * d + L * d * d + 2 * L * kv * d + L * d * d + L * d + 3 * L * h * d + d + seq * head_dim))
  echo $((28 + 4 * floats))
}

fetch() {
  local url=$1 out=$2
  if command -v curl >/dev/null; then
    curl --fail --location --silent --show-error --output "$out" "$url"
  elif command -v wget >/dev/null; then
    wget --quiet --output-document="$out" "$url"
  else
    echo "error: neither curl nor wget is installed (apt-get install curl)" >&2
    return 1
  fi
}

# Checks a file against model $1's shape; prints why not and fails when it does not match.
verify() {
  local m=$1 path=$2 source=$3
  local want got header
  read -r -a shape <<<"${shapes[$m]}"
  want=$(expected_bytes "${shape[@]}")
  got=$(stat -c %s "$path")
  header=$(od -An -t d4 -N 28 "$path" | xargs)
  if [[ "$header" != "${shapes[$m]}" ]]; then
    echo "error: $source is not stories$m: header is '$header', expected '${shapes[$m]}'" >&2
    return 1
  fi
  if [[ "$got" != "$want" ]]; then
    echo "error: $source: $got bytes, its header implies $want (truncated download?)" >&2
    return 1
  fi
}

models=("$@")
((${#models[@]})) || models=(15M)
for m in "${models[@]}"; do
  m=${m#stories}
  m=${m%.bin}
  [[ -n "${shapes[$m]:-}" ]] || { echo "error: unknown model '$m' (choose 15M, 42M or 110M)" >&2; exit 2; }
  file="models/stories$m.bin"
  url="$base_url/stories$m.bin"
  if [[ -f "$file" ]]; then
    verify "$m" "$file" "$file" || exit 1
    echo "$file: already here, header and size ok"
    continue
  fi
  echo "downloading $url"
  tmp=$(mktemp "models/.stories$m.XXXXXX")
  trap 'rm -f "$tmp"' EXIT
  if ! fetch "$url" "$tmp"; then
    cat >&2 <<MSG
error: could not download $url
Offline? On a machine with internet access, download that URL and copy the file to
$file; then run this script again to check it. Everything else in the course works without it:
the tests and the tour use models/stories260K.bin, and build/bin/kvc_make_model --preset 15m
writes a checkpoint of the same shape with random weights.
MSG
    exit 1
  fi
  verify "$m" "$tmp" "$url" || exit 1
  mv "$tmp" "$file"
  trap - EXIT
  echo "$file: header and size ok, sha256 $(sha256sum "$file" | cut -d' ' -f1)"
done
