#!/usr/bin/env bash
# The main job on a fresh machine: install the build dependencies, fetch the default model
# (SmolLM2-135M-Instruct), build insitu and answer a prompt with it.
#
#   scripts/quickstart.sh ["your prompt"]
set -euo pipefail
cd "$(dirname "$0")/.."

prompt="${1:-Explain in two sentences what a quantized language model is.}"

scripts/install-deps.sh
cache=$(scripts/fetch-models.sh smollm2)
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$(nproc)" --target insitu_cli
build/bin/insitu run --format gguf -f "$cache/SmolLM2-135M-Instruct.Q4_1.gguf" \
  --prompt "$prompt" --max-tokens 200
