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
  targets=(gguf_fuzz safetensors_fuzz json_config_fuzz imatrix_fuzz chat_template_fuzz uqff_fuzz
    kld_base_fuzz)
fi

CC=clang CXX=clang++ cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DINSITU_BUILD_FUZZ=ON \
  -DINSITU_BUILD_TESTS=OFF -DINSITU_BUILD_BENCH=OFF >/dev/null
cmake --build "$build" -j"$jobs" --target "${targets[@]}"

run_dir=fuzz/corpus-run
mkdir -p "$run_dir/artifacts"
seed_dir=$(mktemp -d)
trap 'rm -rf "$seed_dir"' EXIT

# Seeds per target: every malformed file of the format plus small valid files.
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
seed imatrix_fuzz
seed chat_template_fuzz
# A UQFF shard is a safetensors file: the safetensors seeds reach its container parsing.
seed uqff_fuzz tests/data/malformed/*.safetensors tests/data/io/reference.safetensors \
  tests/data/io/*.uqff
seed kld_base_fuzz
# Chat-template seeds: every real template and snippet with a Python jinja2 reference render.
python3 - "$seed_dir/chat_template_fuzz" tests/data/templates/models.json tests/data/templates/snippets.json <<'PY'
import json, sys
out = sys.argv[1]
n = 0
def walk(x):
    global n
    if isinstance(x, dict):
        for k, v in x.items():
            if k in ("template", "source") and isinstance(v, str):
                open(f"{out}/t{n:04d}.jinja", "w").write(v)
                n += 1
            else:
                walk(v)
    elif isinstance(x, list):
        for v in x:
            walk(v)
for path in sys.argv[2:]:
    walk(json.load(open(path)))
PY
# imatrix seeds carry a selector byte (even: GGUF/legacy reader, odd: .cimatrix reader).
python3 - "$seed_dir/imatrix_fuzz" <<'PY'
import struct, sys
out = sys.argv[1]
legacy = struct.pack("<i", 1) + struct.pack("<i", 5) + b"blk.0" + struct.pack("<ii", 2, 2) + \
    struct.pack("<ff", 1.0, 2.0) + struct.pack("<i", 3)
cim = struct.pack("<Q", 1) + struct.pack("<Q", 3) + b"a.b" + struct.pack("<Q", 2) + struct.pack("<ff", 1, 2)
open(out + "/legacy.dat", "wb").write(b"\0" + legacy)
open(out + "/m.cimatrix", "wb").write(b"\1" + cim)
def gstr(t):
    return struct.pack("<Q", len(t)) + t
def info(name, ne, offset):
    return gstr(name) + struct.pack("<I", len(ne)) + b"".join(struct.pack("<Q", d) for d in ne) + \
        struct.pack("<IQ", 0, offset)
g = b"GGUF" + struct.pack("<IQQ", 3, 2, 1) + gstr(b"general.type") + struct.pack("<I", 8) + gstr(b"imatrix")
g += info(b"a.in_sum2", [2, 1], 0) + info(b"a.counts", [1, 1], 32)
g += b"\0" * (-len(g) % 32) + struct.pack("<ff", 4, 2) + b"\0" * 24 + struct.pack("<f", 2) + b"\0" * 28
open(out + "/gguf.imatrix", "wb").write(b"\0" + g)
PY
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
