#!/usr/bin/env bash
# Builds insitu and runs every test: unit tests, golden conformance, real-model comparisons
# against llama.cpp reference data, and a bounded fuzzing pass over each file reader.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh
scripts/fetch-models.sh >/dev/null

jobs=$(nproc)
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DINSITU_BUILD_BENCH=OFF >/dev/null
cmake --build build -j"$jobs"
FUZZ_SECONDS="${FUZZ_SECONDS:-20}" scripts/fuzz.sh
ctest --test-dir build --output-on-failure -j"$jobs"
