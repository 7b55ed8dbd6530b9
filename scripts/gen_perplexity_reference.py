#!/usr/bin/env python3
"""Records llama.cpp's own perplexity of the shipped models, for insitu's perplexity test.

Runs llama.cpp's `llama-perplexity` (the tool whose method `insitu perplexity` ports) on each
model over tests/data/text/eval.txt and writes tests/data/reference/perplexity.json: per model the
context, batch and thread settings, the number of chunks, the running estimate after each chunk
and the final "PPL = X +/- Y". The text is ~2000 tokens, so --ctx 256 gives 7 chunks. The batch
equals the context (one sequence per pass, as insitu evaluates) and flash attention is off (as in
scripts/gen_model_reference.py's llama-cpp-python settings). CI does not run this; its output is
committed.

  python3 scripts/gen_perplexity_reference.py /path/to/llama-perplexity [--models smollm2,gemma3]
      [--ctx 256] [--threads 2] [--text tests/data/text/eval.txt] [--out FILE]

Building llama-perplexity from the llama.cpp sources vendored in the PyPI llama-cpp-python sdist
(the same llama.cpp as the Python package the other references use):
  pip download --no-deps --no-binary :all: llama-cpp-python==0.3.36
  tar xzf llama_cpp_python-0.3.36.tar.gz
  cmake -S llama_cpp_python-0.3.36/vendor/llama.cpp -B llama-build -DCMAKE_BUILD_TYPE=Release \\
        -DLLAMA_CURL=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_SERVER=OFF
  cmake --build llama-build -j --target llama-perplexity
  # binary: llama-build/bin/llama-perplexity
"""
import argparse
import json
import os
import re
import subprocess
import sys

# The model list, cache location and checksum are the model reference's, beside this script.
from gen_model_reference import CACHE, MODELS, ROOT, sha256


def llama_version(binary):
    out = subprocess.run([binary, "--version"], capture_output=True, text=True)
    m = re.search(r"version: (.+)", out.stdout + out.stderr)
    return m.group(1).strip() if m else "unknown"


def run_model(binary, model, text, ctx, threads):
    cmd = [binary, "-m", model, "-f", text, "-c", str(ctx), "-b", str(ctx), "-t", str(threads),
           "-fa", "off"]
    out = subprocess.run(cmd, capture_output=True, text=True)
    log = out.stdout + out.stderr
    if out.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed ({out.returncode}):\n{log[-4000:]}")
    running = [float(v) for _, v in re.findall(r"\[(\d+)\](\d+\.\d+),", log)]
    final = re.search(r"Final estimate: PPL = (\d+\.\d+) \+/- (\d+\.\d+)", log)
    chunks = re.search(r"calculating perplexity over (\d+) chunks, n_ctx=(\d+), batch_size=(\d+), "
                       r"n_seq=(\d+)", log)
    if not final or not chunks or len(running) != int(chunks.group(1)):
        sys.exit(f"cannot parse llama-perplexity's output:\n{log[-4000:]}")
    return {
        "n_chunks": int(chunks.group(1)),
        "n_seq": int(chunks.group(4)),
        "ppl": float(final.group(1)),
        "ppl_unc": float(final.group(2)),
        "running_ppl": running,
        "command": " ".join(["llama-perplexity"] + cmd[1:2] + [os.path.basename(model)] +
                            ["-f", os.path.relpath(text, ROOT)] + cmd[5:]),
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("llama_perplexity", help="path to llama.cpp's llama-perplexity binary")
    ap.add_argument("--models", default="smollm2,gemma3")
    ap.add_argument("--ctx", type=int, default=256)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--text", default=os.path.join(ROOT, "tests/data/text/eval.txt"))
    ap.add_argument("--out", default=os.path.join(ROOT, "tests/data/reference/perplexity.json"))
    args = ap.parse_args()

    ref = {
        "generator": f"llama-perplexity {llama_version(args.llama_perplexity)}",
        "text_file": os.path.relpath(args.text, ROOT),
        "ctx": args.ctx,
        "batch": args.ctx,
        "threads": args.threads,
        "flash_attn": False,
        "models": {},
    }
    for name in args.models.split(","):
        path = os.path.join(CACHE, MODELS[name])
        r = run_model(args.llama_perplexity, path, args.text, args.ctx, args.threads)
        ref["models"][name] = {"model": MODELS[name], "sha256": sha256(path), **r}
        print(f"{name}: {r['n_chunks']} chunks, PPL = {r['ppl']:.4f} +/- {r['ppl_unc']:.5f}",
              file=sys.stderr)
    with open(args.out, "w") as f:
        json.dump(ref, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
