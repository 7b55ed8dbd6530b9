#!/usr/bin/env python3
"""Checks `insitu quantize --output-format gguf` against llama.cpp (issue 6's acceptance test).

For each model (default: SmolLM2; --models smollm2,gemma3 for both):
  1. `insitu convert` turns the shipped GGUF into a full-precision (f32) Hugging Face directory;
  2. `insitu quantize -m DIR --isq f32` writes an f32 GGUF of those weights (the source llama.cpp's
     quantizer is given) and `insitu quantize -m DIR --isq q4k --pure` the model to check;
  3. `llama-quantize --pure F32.gguf Q4_K` quantizes the same weights; every tensor's type and bytes
     must be identical;
  4. the same for the Q4_K_M mix (`--isq q4k_m` against `llama-quantize ... Q4_K_M`), and, for
     SmolLM2, for Q4_K_M with an importance matrix made by llama-imatrix (`--imatrix`);
  5. llama.cpp (the llama_cpp Python package) loads insitu's f32 and q4k files and continues
     several prompts greedily; `insitu run --raw --greedy` on the same file must print the same
     text, exactly on the f32 file, and on the q4k file up to partings at near-ties (where
     llama.cpp's own logits for the two tokens are within --tie: the engines' quantized kernels
     round differently). The shipped file, quantized by llama.cpp itself, is run the same way as
     the baseline for those partings.
Prints one line per check and exits non-zero when any fails.

  python3 scripts/check_gguf_export.py [--insitu build/bin/insitu] [--llama-bin /tmp/llama-build/bin]
      [--models smollm2] [--tokens 48] [--keep DIR]

llama.cpp: the one vendored in llama-cpp-python 0.3.36, with its tools built (llama-quantize,
llama-imatrix).
"""
import argparse
import os
import shutil
import subprocess
import sys
import tempfile

import gguf
import numpy as np

from gen_model_reference import CACHE, MODELS, PROMPTS, ROOT

failures = []


def check(ok, what):
    print(("PASS " if ok else "FAIL ") + what, flush=True)
    if not ok:
        failures.append(what)


def run(cmd, env=None, stdout=subprocess.PIPE):
    p = subprocess.run(cmd, env=env, stdout=stdout, stderr=subprocess.PIPE, text=True)
    if p.returncode != 0:
        sys.exit(f"failed ({p.returncode}): {' '.join(cmd)}\n{p.stderr[-3000:]}")
    return p.stdout


def compare_tensors(ours_path, theirs_path, label):
    ours = {t.name: t for t in gguf.GGUFReader(ours_path).tensors}
    theirs = {t.name: t for t in gguf.GGUFReader(theirs_path).tensors}
    if set(ours) != set(theirs):
        check(False, f"{label}: tensor names differ: {sorted(set(ours) ^ set(theirs))[:8]}")
        return
    bad_type, bad_bytes = [], []
    for name, t in theirs.items():
        o = ours[name]
        if o.tensor_type != t.tensor_type:
            bad_type.append(f"{name} ({o.tensor_type.name} vs {t.tensor_type.name})")
        elif o.data.tobytes() != t.data.tobytes():
            bad_bytes.append(name)
    nbytes = sum(t.n_bytes for t in theirs.values())
    check(not bad_type and not bad_bytes,
          f"{label}: {len(theirs)} tensors, {nbytes / 2**20:.1f} MiB; "
          f"{len(theirs) - len(bad_type) - len(bad_bytes)} identical in type and bytes"
          + (f"; type differs: {bad_type[:4]}" if bad_type else "")
          + (f"; bytes differ: {bad_bytes[:4]}" if bad_bytes else ""))


class LlamaCpp:
    """llama.cpp through its Python package: greedy continuation and teacher-forced logits."""

    def __init__(self, path, threads):
        import llama_cpp
        self.lib = llama_cpp
        self.llm = llama_cpp.Llama(model_path=path, n_ctx=512, n_threads=threads, logits_all=True,
                                   verbose=False)
        self.vocab = llama_cpp.llama_model_get_vocab(self.llm.model)

    def tokenize(self, text):
        return self.llm.tokenize(text.encode("utf-8"), add_bos=True, special=False)

    def greedy(self, prompt, n_tokens):
        """Token by token, as a chat front end runs; returns (ids with prompt, text)."""
        ids = self.tokenize(prompt)
        self.llm.reset()
        self.llm.eval(ids)
        gen = []
        for _ in range(n_tokens):
            tok = int(np.argmax(np.asarray(self.llm.scores[self.llm.n_tokens - 1])))
            if self.lib.llama_vocab_is_eog(self.vocab, tok):
                break
            gen.append(tok)
            self.llm.eval([tok])
        return ids + gen, self.llm.detokenize(gen).decode("utf-8", errors="replace")

    def margin(self, prefix, a, b):
        """logit(a) - logit(b) after `prefix`, evaluated as one batch."""
        self.llm.reset()
        self.llm.eval(prefix)
        s = np.asarray(self.llm.scores[self.llm.n_tokens - 1])
        return float(s[a] - s[b])

    def text(self, ids):
        return self.llm.detokenize(ids).decode("utf-8", errors="replace")


def compare_greedy(insitu, path, label, tie, args):
    llama = LlamaCpp(path, args.threads)
    same, gaps = 0, []
    for prompt in PROMPTS:
        llama_ids, text = llama.greedy(prompt, args.tokens)
        ours = run(insitu + ["run", "--format", "gguf", "-f", path, "--raw", "--greedy", "-p",
                             prompt, "-n", str(args.tokens), "-t", str(args.threads)])
        if ours == text or ours == text + "\n":
            same += 1
            continue
        our_ids = llama.tokenize(prompt + ours.removesuffix("\n"))
        n = min(len(our_ids), len(llama_ids))
        k = next((i for i in range(n) if our_ids[i] != llama_ids[i]), n)
        if k == n:  # one of them ended the text earlier
            gaps.append(float("inf"))
            print(f"  {prompt!r}: one continuation stops at token {k} (llama.cpp {text!r}, "
                  f"insitu {ours!r})")
            continue
        gap = abs(llama.margin(llama_ids[:k], llama_ids[k], our_ids[k]))
        gaps.append(gap)
        print(f"  {prompt!r}: parts after {k - len(llama.tokenize(prompt))} tokens (llama.cpp "
              f"{llama.text([llama_ids[k]])!r}, insitu {llama.text([our_ids[k]])!r}; llama.cpp's "
              f"logits for the two differ by {gap:.3f})")
    del llama
    ok = all(g <= tie for g in gaps)
    check(ok, f"{label} greedy text ({args.tokens} tokens) identical to insitu run for "
              f"{same}/{len(PROMPTS)} prompts"
              + (f", the others part at near-ties (gap <= {tie})" if gaps and ok else ""))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--insitu", default=os.path.join(ROOT, "build/bin/insitu"))
    ap.add_argument("--llama-bin", default=os.environ.get("LLAMA_CPP_BIN", "/tmp/llama-build/bin"))
    ap.add_argument("--models", default="smollm2")
    ap.add_argument("--tokens", type=int, default=48)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--tie", type=float, default=1.0,
                    help="on quantized files, a parting where llama.cpp's logits for the two "
                         "tokens are this close is a near-tie (llama_cpp_reference_test.cc's bound)")
    ap.add_argument("--keep", help="write the files here and keep them")
    args = ap.parse_args()
    env = dict(os.environ, LD_LIBRARY_PATH=args.llama_bin)
    quantize = os.path.join(args.llama_bin, "llama-quantize")
    insitu = [args.insitu]
    t = str(args.threads)

    tmp = args.keep or tempfile.mkdtemp(prefix="insitu-gguf-export-")
    os.makedirs(tmp, exist_ok=True)
    try:
        for key in args.models.split(","):
            src = os.path.join(CACHE, MODELS[key])
            d = lambda name: os.path.join(tmp, f"{key}-{name}")
            hf = d("f32")
            if os.path.exists(hf):
                shutil.rmtree(hf)
            run(insitu + ["convert", "--format", "gguf", "-f", src, "-o", hf, "-t", t])
            run(insitu + ["quantize", "-m", hf, "--isq", "f32", "-o", d("f32.gguf"), "-t", t])

            run(insitu + ["quantize", "-m", hf, "--isq", "q4k", "--pure", "-o", d("q4k.gguf"),
                          "-t", t])
            run([quantize, "--pure", d("f32.gguf"), d("llama-q4k.gguf"), "Q4_K", t], env)
            compare_tensors(d("q4k.gguf"), d("llama-q4k.gguf"),
                            f"{key} --isq q4k --pure vs llama-quantize --pure Q4_K")

            run(insitu + ["quantize", "-m", hf, "--isq", "q4k_m", "-o", d("q4k_m.gguf"), "-t", t])
            run([quantize, d("f32.gguf"), d("llama-q4k_m.gguf"), "Q4_K_M", t], env)
            compare_tensors(d("q4k_m.gguf"), d("llama-q4k_m.gguf"),
                            f"{key} --isq q4k_m vs llama-quantize Q4_K_M")

            if key == "smollm2":
                imatrix = d("imatrix.gguf")
                run([os.path.join(args.llama_bin, "llama-imatrix"), "-m", d("f32.gguf"), "-f",
                     os.path.join(ROOT, "tests/data/text/eval.txt"), "-c", "128", "--chunks", "4",
                     "-t", t, "-o", imatrix], env)
                run(insitu + ["quantize", "-m", hf, "--isq", "q4k_m", "--imatrix", imatrix, "-o",
                              d("q4k_m-imat.gguf"), "-t", t])
                run([quantize, "--imatrix", imatrix, d("f32.gguf"), d("llama-q4k_m-imat.gguf"),
                     "Q4_K_M", t], env)
                compare_tensors(d("q4k_m-imat.gguf"), d("llama-q4k_m-imat.gguf"),
                                f"{key} --isq q4k_m --imatrix vs llama-quantize --imatrix Q4_K_M")
                meta = gguf.GGUFReader(d("q4k_m-imat.gguf")).fields
                check("quantize.imatrix.file" in meta and "quantize.imatrix.entries_count" in meta
                      and int(meta["general.file_type"].parts[-1][0]) == 15,
                      f"{key}: quantize.imatrix.* and general.file_type = 15 (Q4_K_M) recorded")

            # llama.cpp runs insitu's files and continues the prompts as insitu does. On the f32
            # file the arithmetic leaves no room for rounding differences, so the text must be
            # identical; on a quantized file the two engines' integer kernels round differently
            # (tests/model/llama_cpp_reference_test.cc), so a continuation may part where llama.cpp's
            # own logits for the two tokens are within --tie. llama.cpp's own Q4_1 file is the
            # baseline for that.
            greedy = lambda path, label, tie: compare_greedy(insitu, path, label, tie, args)
            greedy(d("f32.gguf"), f"{key}: llama.cpp loads insitu's f32 GGUF;", 0.0)
            greedy(d("q4k.gguf"), f"{key}: llama.cpp loads insitu's q4k GGUF;", args.tie)
            greedy(src, f"{key} (baseline, llama.cpp's own {MODELS[key]}):", args.tie)
    finally:
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)
    print(f"{'FAILED' if failures else 'OK'}: {len(failures)} check(s) failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
