#!/usr/bin/env bash
# Builds the libFuzzer targets (clang, ASan + UBSan) and runs each for FUZZ_SECONDS (default 30),
# seeded with the malformed corpus and small valid files. Exits non-zero on any crash, sanitizer
# report, leak, timeout or out-of-memory; the reproducer lands in fuzz/corpus-run/artifacts/.
#   FUZZ_SECONDS=30 FUZZ_JOBS=2 scripts/fuzz.sh [target ...]
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${FUZZ_SECONDS:-30}
jobs=${FUZZ_JOBS:-$(nproc)}
build=${FUZZ_BUILD_DIR:-build-fuzz}
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  targets=(gguf_fuzz safetensors_fuzz json_config_fuzz)
fi

CC=clang CXX=clang++ cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DINSITU_BUILD_FUZZ=ON \
  -DINSITU_BUILD_TESTS=OFF -DINSITU_BUILD_BENCH=OFF >/dev/null
cmake --build "$build" -j"$jobs" --target "${targets[@]}"

run_dir=fuzz/corpus-run
mkdir -p "$run_dir/artifacts"
seed_dir=$(mktemp -d)
trap 'rm -rf "$seed_dir"' EXIT

# Seeds per target: every malformed file of the format plus the small valid references.
seed() {
  local target=$1
  shift
  mkdir -p "$seed_dir/$target"
  for f in "$@"; do
    [ -f "$f" ] && cp "$f" "$seed_dir/$target/"
  done
  return 0
}
seed gguf_fuzz tests/data/malformed/*.gguf tests/data/io/python_writer.gguf
seed safetensors_fuzz tests/data/malformed/*.safetensors tests/data/io/reference.safetensors
seed json_config_fuzz tests/data/malformed/*.json
cat >"$seed_dir/json_config_fuzz/config.json" <<'JSON'
{"architectures": ["LlamaForCausalLM"], "hidden_size": 576, "num_attention_heads": 9,
 "rms_norm_eps": 1e-05, "tie_word_embeddings": true, "model_type": "llama", "rope_scaling": null,
 "eos_token_id": [1, 2], "quantization_config": {"bits": 4, "quant_method": "gptq"}}
JSON

export ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=1:detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}
status=0
for target in "${targets[@]}"; do
  corpus="$run_dir/$target"
  mkdir -p "$corpus"
  echo "fuzz: $target for ${seconds}s"
  if ! "$build/bin/$target" -max_total_time="$seconds" -max_len=65536 -timeout=10 \
      -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$run_dir/artifacts/$target-" \
      "$corpus" "$seed_dir/$target" >"$run_dir/$target.log" 2>&1; then
    echo "fuzz: $target FAILED; see $run_dir/$target.log and $run_dir/artifacts/" >&2
    tail -n 40 "$run_dir/$target.log" >&2
    status=1
  else
    grep -E 'stat::number_of_executed_units|cov:' "$run_dir/$target.log" | tail -n 2
  fi
done
exit $status
