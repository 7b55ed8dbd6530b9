#!/usr/bin/env python3
"""Generates llama.cpp reference outputs for the shipped models, for insitu's model tests.

For each model it records, using llama.cpp through the PyPI package llama-cpp-python:
  * token ids of every prompt and of the evaluation text (BOS first, as llama.cpp adds it);
  * teacher-forced next-token distributions over the first N positions of real text, stored
    compactly as the top-K log-probabilities per position (the full distributions would be
    hundreds of MB); the tests compare against them with KL over the top-K classes plus one
    class for the remaining mass, which equals the full KL when the top K carry the mass;
  * greedy continuations of 64 tokens for several prompts.

Outputs go to tests/data/reference/<model>.json and <model>.topk.bin (little-endian; per position
float32 logsumexp-free log-probs: K x (int32 id, float32 log-prob), ids sorted by probability).
CI does not run this; its outputs are committed.

  python3 scripts/gen_model_reference.py [--models smollm2,gemma3] [--positions 512] [--topk 64]

With --first F the distributions recorded are those of positions F .. F+positions-1 of one
sequence of F+positions+1 tokens (evaluated in batches of 512, as llama.cpp's default n_ubatch),
and the outputs are named <model>_from<F>; no prompts are recorded. The long-context reference
for Gemma 3 (sliding-window layers whose cache is a ring in insitu) is made with:
  python3 scripts/gen_model_reference.py --models gemma3 --first 1024 --positions 512

The evaluation text tests/data/text/eval.txt is the body of the GNU Coding Standards from Debian's
gnu-standards package, made with:
  zcat /usr/share/doc/gnu-standards/standards.text.gz |
    awk 'f>=2 || /^1 About the GNU Coding Standards/{ if(/^1 About the GNU Coding Standards/) f++;
         if (f>=2) print }' | head -c 9000
"""
import argparse
import hashlib
import json
import os
import struct
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CACHE = os.environ.get("INSITU_MODEL_CACHE", os.path.expanduser("~/.cache/insitu/models"))
MODELS = {
    "smollm2": "SmolLM2-135M-Instruct.Q4_1.gguf",
    "gemma3": "gemma-3-270m-q4_k_m.gguf",
}
PROMPTS = [
    "The capital of France is",
    "Once upon a time, in a small village by the sea,",
    "def fibonacci(n):\n    \"\"\"Return the n-th Fibonacci number.\"\"\"\n",
    "A hacker is a person who enjoys",
    "The three primary colors are",
    "List of steps to install Debian:\n1.",
]


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def log_softmax(x):
    x = np.asarray(x, dtype=np.float64)
    m = x.max()
    return x - (m + np.log(np.exp(x - m).sum()))


def greedy(llm, ids, n):
    llm.reset()
    llm.eval(ids)
    out = []
    for _ in range(n):
        logits = np.asarray(llm.scores[llm.n_tokens - 1], dtype=np.float32)
        tok = int(np.argmax(logits))
        out.append(tok)
        if tok == llm.token_eos():
            break
        llm.eval([tok])
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", default="smollm2,gemma3")
    ap.add_argument("--positions", type=int, default=512)
    ap.add_argument("--topk", type=int, default=64)
    ap.add_argument("--first", type=int, default=0)
    ap.add_argument("--text", default=os.path.join(ROOT, "tests/data/text/eval.txt"))
    ap.add_argument("--out", default=os.path.join(ROOT, "tests/data/reference"))
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()

    import llama_cpp

    text = open(args.text, encoding="utf-8").read()
    os.makedirs(args.out, exist_ok=True)
    for name in args.models.split(","):
        path = os.path.join(CACHE, MODELS[name])
        first = args.first
        out_name = name if first == 0 else f"{name}_from{first}"
        n_ctx = first + args.positions + 8
        batch = n_ctx if first == 0 else 512
        llm = llama_cpp.Llama(model_path=path, n_ctx=max(n_ctx, 1024), n_batch=batch,
                              n_ubatch=batch, logits_all=True, n_threads=args.threads,
                              verbose=False)
        ids = llm.tokenize(text.encode("utf-8"), add_bos=True, special=False)
        if len(ids) < first + args.positions + 1:
            sys.exit(f"{args.text}: only {len(ids)} tokens; need {first + args.positions + 1}")
        ids = ids[: first + args.positions + 1]
        llm.reset()
        llm.eval(ids[: first + args.positions])
        scores = np.asarray(llm.scores[first : first + args.positions], dtype=np.float32)
        blob = bytearray()
        for pos in range(args.positions):
            lp = log_softmax(scores[pos])
            top = np.argsort(-lp, kind="stable")[: args.topk]
            for t in top:
                blob += struct.pack("<if", int(t), float(lp[t]))
        with open(os.path.join(args.out, f"{out_name}.topk.bin"), "wb") as f:
            f.write(blob)

        prompts = []
        for p in PROMPTS if first == 0 else []:
            pid = llm.tokenize(p.encode("utf-8"), add_bos=True, special=False)
            prompts.append({"text": p, "ids": pid, "greedy": greedy(llm, pid, 64)})
        ref = {
            "model": MODELS[name],
            "sha256": sha256(path),
            "generator": f"llama-cpp-python {llama_cpp.__version__}",
            "text_file": os.path.relpath(args.text, ROOT),
            "text_ids": ids,
            "first_position": first,
            "positions": args.positions,
            "topk": args.topk,
            "topk_file": f"{out_name}.topk.bin",
            "prompts": prompts,
        }
        with open(os.path.join(args.out, f"{out_name}.json"), "w") as f:
            json.dump(ref, f, indent=1)
        print(f"{name}: {len(ids)} text tokens, {len(prompts)} prompts", file=sys.stderr)
        del llm


if __name__ == "__main__":
    main()
