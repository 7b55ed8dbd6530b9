#!/usr/bin/env bash
# Builds insitu and runs every test: unit tests, golden conformance, real-model comparisons
# against llama.cpp reference data, hostile inputs against the CLI, a bounded fuzzing pass over
# each file reader, the Python package (installed with `pip install .` into a fresh virtual
# environment, its pytest suite compared against the CLI), and the reader, Jinja, topology and
# tokenizer unit tests again under ASan+UBSan (a separate, smaller build in build-asan/).
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh
scripts/fetch-models.sh >/dev/null
# The server tests (tests/server) drive `insitu serve` with the official openai client from PyPI
# and its chat page in headless chromium through Selenium.
[ -x build/venv/bin/python ] || python3 -m venv build/venv
build/venv/bin/python -c 'import openai, pytest, selenium' 2>/dev/null ||
  build/venv/bin/pip install -q openai pytest selenium

jobs=$(nproc)
# ccache (from install-deps) lets the Python package's build reuse the objects of this one: paths
# are hashed relative to the checkout, and build/ and build-py/ sit at the same depth.
launcher=()
if command -v ccache >/dev/null; then
  export CCACHE_BASEDIR="$PWD" CCACHE_NOHASHDIR=1
  export CCACHE_DIR="${CCACHE_DIR:-$HOME/.cache/insitu/ccache}"
  launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache -DCMAKE_C_COMPILER_LAUNCHER=ccache)
fi
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DINSITU_BUILD_BENCH=OFF "${launcher[@]}" >/dev/null
cmake --build build -j"$jobs"
FUZZ_SECONDS="${FUZZ_SECONDS:-20}" scripts/fuzz.sh
ctest --test-dir build --output-on-failure -j"$jobs"

# The Python package: a fresh virtual environment, `pip install .` from this checkout (only the
# library and the extension are compiled, in build-py/, through ccache when there is one), then
# pytest against the CLI built above. pytest's exit status (5 when no test ran) fails the script.
rm -rf build/py-venv
python3 -m venv build/py-venv
if command -v ccache >/dev/null; then
  export CMAKE_CXX_COMPILER_LAUNCHER=ccache CMAKE_C_COMPILER_LAUNCHER=ccache
fi
CMAKE_BUILD_PARALLEL_LEVEL="$jobs" build/py-venv/bin/pip install -q ".[test]"
(cd build && py-venv/bin/python -m pytest -q -p no:cacheprovider ../python/tests)

# The sanitizer pass: only the targets whose tests cover untrusted input, at -O1 to keep the
# build short. Any sanitizer report is fatal.
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g1" \
  -DINSITU_SANITIZE=ON -DINSITU_BUILD_BENCH=OFF >/dev/null
cmake --build build-asan -j"$jobs" --target formats_tests tokenizer_tests topology_tests
export ASAN_OPTIONS=halt_on_error=1:abort_on_error=1:detect_leaks=1:detect_stack_use_after_return=1
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
build-asan/bin/formats_tests --gtest_brief=1 \
  --gtest_filter='Gguf*:Safetensors*:Imatrix*:JsonFile*:MalformedCorpus*:UqffReader*:AtomicFile*'
# The llama.cpp reference comparisons run whole corpora per model and take minutes under ASan;
# the release run above covers them.
build-asan/bin/tokenizer_tests --gtest_brief=1 --gtest_filter='-*TokenizerReference*:*TokenizerVariant*'
build-asan/bin/topology_tests --gtest_brief=1
