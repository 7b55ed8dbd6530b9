#!/usr/bin/env python3
"""insitu bench vs llama.cpp, side by side in one run (same model file, same threads).

llama.cpp is driven through the PyPI package llama-cpp-python (its bundled libllama), measuring
what llama-bench measures: pp = one batch of P random tokens into an empty cache, tg = N tokens
decoded one at a time. insitu is measured by `insitu bench -o json`. Runs alternate between the two
engines for each repetition so machine noise hits both alike; medians and ratios are printed.

  python3 bench/bench_vs_llamacpp.py [--insitu build/bin/insitu] [-t 2] [-p 512] [-n 128] [-r 3]
"""
import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CACHE = os.environ.get("INSITU_MODEL_CACHE", os.path.expanduser("~/.cache/insitu/models"))
MODELS = {
    "smollm2": "SmolLM2-135M-Instruct.Q4_1.gguf",
    "gemma3": "gemma-3-270m-q4_k_m.gguf",
}


def llama_cpp_once(llm, n_vocab, p, n):
    rng = random.Random(1234)
    prompt = [rng.randrange(n_vocab) for _ in range(p)]
    llm.reset()
    llm._ctx.memory_clear(True) if hasattr(llm._ctx, "memory_clear") else None
    t0 = time.perf_counter()
    llm.eval(prompt)
    pp = p / (time.perf_counter() - t0)
    llm.reset()
    if hasattr(llm._ctx, "memory_clear"):
        llm._ctx.memory_clear(True)
    tok = llm.token_bos()
    t0 = time.perf_counter()
    for _ in range(n):
        llm.eval([tok])
        tok = rng.randrange(n_vocab)
    tg = n / (time.perf_counter() - t0)
    return pp, tg


def insitu_once(exe, path, t, p, n):
    out = subprocess.run([exe, "bench", "--format", "gguf", "-f", path, "-t", str(t), "-p", str(p),
                          "-n", str(n), "-r", "1", "-o", "json", "--log-level", "warn"],
                         check=True, capture_output=True, text=True).stdout
    # llama-bench's records: n_prompt > 0 is the pp test, n_gen > 0 the tg one.
    rows = json.loads(out)
    pp = next(r["avg_ts"] for r in rows if r["n_prompt"] > 0)
    tg = next(r["avg_ts"] for r in rows if r["n_gen"] > 0)
    return pp, tg


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--insitu", default=os.path.join(ROOT, "build/bin/insitu"))
    ap.add_argument("--models", default="smollm2,gemma3")
    ap.add_argument("-t", "--threads", type=int, default=2)
    ap.add_argument("-p", type=int, default=512)
    ap.add_argument("-n", type=int, default=128)
    ap.add_argument("-r", "--reps", type=int, default=3)
    args = ap.parse_args()
    import llama_cpp

    print(f"| model | test | llama.cpp t/s | insitu t/s | insitu / llama.cpp |")
    print(f"|---|---|---:|---:|---:|")
    for name in args.models.split(","):
        path = os.path.join(CACHE, MODELS[name])
        llm = llama_cpp.Llama(model_path=path, n_ctx=args.p + args.n + 16, n_batch=args.p,
                              n_ubatch=args.p, n_threads=args.threads,
                              n_threads_batch=args.threads, verbose=False)
        n_vocab = llm.n_vocab()
        llama_cpp_once(llm, n_vocab, 16, 4)  # warm-up
        ref = {"pp": [], "tg": []}
        ours = {"pp": [], "tg": []}
        for _ in range(args.reps):
            pp, tg = llama_cpp_once(llm, n_vocab, args.p, args.n)
            ref["pp"].append(pp)
            ref["tg"].append(tg)
            pp, tg = insitu_once(args.insitu, path, args.threads, args.p, args.n)
            ours["pp"].append(pp)
            ours["tg"].append(tg)
        for test, n in (("pp", args.p), ("tg", args.n)):
            a = statistics.median(ref[test])
            b = statistics.median(ours[test])
            print(f"| {name} | {test}{n} | {a:.2f} | {b:.2f} | {b / a:.2f}x |")
        sys.stdout.flush()
        del llm


if __name__ == "__main__":
    main()
