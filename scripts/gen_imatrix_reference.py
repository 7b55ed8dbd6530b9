#!/usr/bin/env python3
"""Records llama.cpp's importance matrix of SmolLM2 on the calibration text, for insitu's imatrix test.

Runs llama.cpp's `llama-imatrix` (the tool `insitu imatrix` ports) on SmolLM2 over
tests/data/text/calib.txt and writes
  tests/data/reference/smollm2.imatrix.gguf   the imatrix as llama-imatrix writes it
  tests/data/reference/smollm2.imatrix.json   how it was made (settings, versions, checksums)
The test (tests/engine/imatrix_collect_test.cc) collects with insitu under the same settings and
compares E[x^2] per column, the entries and the counts.

Settings, chosen so that the comparison measures the method and not rounding noise:
  * the model is the shipped SmolLM2 Q4_1 GGUF dequantized to F32 (`llama-quantize
    --allow-requantize ... F32`, the same values `insitu convert` writes): with quantized weights
    both tools round activations to 8 bits, and a 1e-7 difference that flips one rounding is
    amplified layer by layer;
  * the KV cache is f32 and flash attention off, for the same reason (an f16 cache rounds K, V, Q
    and the attention weights to f16);
  * one chunk per batch (-b = -ub = --ctx), as insitu evaluates, and --ctx 256, 4 chunks.
CI does not run this; its outputs are committed.

  python3 scripts/gen_imatrix_reference.py /path/to/llama.cpp/bin [--threads 2] [--ctx 256]
      [--chunks 4]

The directory must hold llama-imatrix and llama-quantize. Building them from the llama.cpp sources
vendored in the PyPI llama-cpp-python sdist (the same llama.cpp as the other references):
  pip download --no-deps --no-binary :all: llama-cpp-python==0.3.36
  tar xzf llama_cpp_python-0.3.36.tar.gz
  cmake -S llama_cpp_python-0.3.36/vendor/llama.cpp -B llama-build -DCMAKE_BUILD_TYPE=Release \\
        -DLLAMA_CURL=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_SERVER=OFF
  cmake --build llama-build -j --target llama-imatrix llama-quantize
  # binaries: llama-build/bin/
"""
import argparse
import json
import os
import re
import subprocess
import sys
import tempfile

# The model list, cache location and checksum are the model reference's, beside this script.
from gen_model_reference import CACHE, MODELS, ROOT, sha256

TEXT = os.path.join("tests", "data", "text", "calib.txt")
OUT_GGUF = os.path.join(ROOT, "tests", "data", "reference", "smollm2.imatrix.gguf")
OUT_JSON = os.path.join(ROOT, "tests", "data", "reference", "smollm2.imatrix.json")


def run(cmd, cwd=None):
    out = subprocess.run(cmd, capture_output=True, text=True, cwd=cwd)
    log = out.stdout + out.stderr
    if out.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed ({out.returncode}):\n{log[-4000:]}")
    return log


def llama_version(binary):
    out = subprocess.run([binary, "--version"], capture_output=True, text=True)
    m = re.search(r"version: (.+)", out.stdout + out.stderr)
    return m.group(1).strip() if m else "unknown"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("bin_dir", help="directory with llama-imatrix and llama-quantize")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--ctx", type=int, default=256)
    ap.add_argument("--chunks", type=int, default=4)
    args = ap.parse_args()

    imatrix = os.path.join(args.bin_dir, "llama-imatrix")
    quantize = os.path.join(args.bin_dir, "llama-quantize")
    model = os.path.join(CACHE, MODELS["smollm2"])
    if not os.path.exists(model):
        sys.exit(f"{model} missing: run scripts/fetch-models.sh")

    with tempfile.TemporaryDirectory() as tmp:
        f32 = os.path.join(tmp, "smollm2-f32.gguf")
        run([quantize, "--allow-requantize", model, f32, "F32", str(args.threads)])
        # Relative text path, run from the repository root: it is what imatrix.datasets records.
        cmd = [imatrix, "-m", f32, "-f", TEXT, "-o", OUT_GGUF, "-c", str(args.ctx),
               "--chunks", str(args.chunks), "-b", str(args.ctx), "-ub", str(args.ctx),
               "-fa", "off", "-ctk", "f32", "-ctv", "f32", "--no-ppl", "-t", str(args.threads)]
        log = run(cmd, cwd=ROOT)
        m = re.search(r"computing over (\d+) chunks, n_ctx=(\d+)", log)
        if not m or int(m.group(1)) != args.chunks or int(m.group(2)) != args.ctx:
            sys.exit(f"unexpected llama-imatrix run:\n{log[-4000:]}")

    info = {
        "model": MODELS["smollm2"],
        "model_sha256": sha256(model),
        "weights": "the model dequantized to F32 by llama-quantize --allow-requantize",
        "text": TEXT.replace(os.sep, "/"),
        "text_sha256": sha256(os.path.join(ROOT, TEXT)),
        "n_ctx": args.ctx,
        "n_chunks": args.chunks,
        "kv_cache": "f32",
        "flash_attn": "off",
        "llama_cpp_version": llama_version(imatrix),
        "command": " ".join(["llama-imatrix", "-m", "smollm2-f32.gguf"] + cmd[3:5] +
                            ["-o", "smollm2.imatrix.gguf"] + cmd[7:]),
    }
    with open(OUT_JSON, "w") as f:
        json.dump(info, f, indent=1)
        f.write("\n")
    print(f"wrote {OUT_GGUF} ({os.path.getsize(OUT_GGUF)} bytes) and {OUT_JSON}")


if __name__ == "__main__":
    main()
