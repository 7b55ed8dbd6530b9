#!/usr/bin/env python3
"""How much llama.cpp disagrees with itself when only its arithmetic changes.

Evaluates the first 512 tokens of tests/data/text/eval.txt (the ids stored in
tests/data/reference/<model>.json) with llama.cpp's default settings (those the reference data was
made with) and again with one setting changed (flash attention, f32 KV cache), and prints the mean
KL divergence over the full vocabulary and the top-1 agreement between the two. This is the noise
floor against which insitu's agreement with llama.cpp is judged (tests/model/llama_cpp_reference_test.cc).

  python3 bench/llamacpp_self_variance.py smollm2|gemma3
"""
import json
import os
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CACHE = os.environ.get("INSITU_MODEL_CACHE", os.path.expanduser("~/.cache/insitu/models"))
FILES = {"smollm2": "SmolLM2-135M-Instruct.Q4_1.gguf", "gemma3": "gemma-3-270m-q4_k_m.gguf"}


def main():
    import llama_cpp

    name = sys.argv[1] if len(sys.argv) > 1 else "smollm2"
    ref = json.load(open(os.path.join(ROOT, "tests/data/reference", name + ".json")))
    ids = ref["text_ids"][: ref["positions"]]
    n = len(ids)

    def run(**kw):
        llm = llama_cpp.Llama(os.path.join(CACHE, FILES[name]), n_ctx=1024, n_batch=n + 8,
                              n_ubatch=n + 8, logits_all=True, n_threads=2, verbose=False, **kw)
        llm.eval(ids)
        s = np.array(llm.scores[:n], dtype=np.float64)
        del llm
        m = s.max(1, keepdims=True)
        return s - m - np.log(np.exp(s - m).sum(1, keepdims=True))

    base = run()
    for label, kw in (("flash attention on", dict(flash_attn=True)),
                      ("f32 KV cache", dict(type_k=0, type_v=0))):
        other = run(**kw)
        kl = (np.exp(base) * (base - other)).sum(1)
        top1 = (base.argmax(1) == other.argmax(1)).mean()
        print(f"{name}: default vs {label}: mean KL {kl.mean():.5f}, top-1 {100 * top1:.1f}%")


if __name__ == "__main__":
    main()
