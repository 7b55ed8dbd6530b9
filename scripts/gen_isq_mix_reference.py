#!/usr/bin/env python3
"""Records which type llama.cpp's quantizer gives each weight of the shipped models under every
llama.cpp mix (file type), for insitu's test of its port of the recipe (src/model/isq_mix.cc).

For each model and mix it runs `llama-quantize --dry-run --allow-requantize MODEL FTYPE`, which
decides every tensor's type from names and shapes alone (the source's own types do not enter the
decision), and reads the decisions from its per-tensor log lines. Each mix is run without an
importance matrix (skipped when llama.cpp says the mix needs one) and with one (a small imatrix
made by llama-imatrix from tests/data/text/eval.txt; only its presence matters to the recipe). The
log parsing is checked once per model against a real Q4_K_M file read with the `gguf` package.

Output: tests/data/reference/isq_mixes.json. Per model: n_layer and, per mix name (insitu's),
per variant ("plain", "imatrix"): token_embd / output types and, per role, the per-layer types
run-length encoded ("q5_0*3,q8_0,q5_0*26"). A variant that is absent with
"plain_requires_imatrix": true is one llama.cpp refuses without an imatrix. CI does not run this;
its output is committed.

  python3 scripts/gen_isq_mix_reference.py [--llama-bin /tmp/llama-build/bin]

llama.cpp: the one vendored in llama-cpp-python 0.3.36, built with its tools.
"""
import argparse
import json
import os
import re
import subprocess
import sys
import tempfile

import gguf

from gen_model_reference import CACHE, MODELS, ROOT

# insitu's mix name -> llama-quantize's type name (src/model/isq_mix.cc's table).
MIXES = {
    "q4_0_mix": "Q4_0", "q4_1_mix": "Q4_1", "q8_0_mix": "Q8_0", "q5_0_mix": "Q5_0",
    "q5_1_mix": "Q5_1", "q2k_mix": "Q2_K", "q3k_s": "Q3_K_S", "q3k_m": "Q3_K_M",
    "q3k_l": "Q3_K_L", "q4k_s": "Q4_K_S", "q4k_m": "Q4_K_M", "q5k_s": "Q5_K_S",
    "q5k_m": "Q5_K_M", "q6k_mix": "Q6_K", "iq2_xxs_mix": "IQ2_XXS", "iq2_xs_mix": "IQ2_XS",
    "q2k_s": "Q2_K_S", "iq3_xs": "IQ3_XS", "iq3_xxs_mix": "IQ3_XXS", "iq1_s_mix": "IQ1_S",
    "iq4_nl_mix": "IQ4_NL", "iq3_s_mix": "IQ3_S", "iq3_m": "IQ3_M", "iq2_s_mix": "IQ2_S",
    "iq2_m": "IQ2_M", "iq4_xs_mix": "IQ4_XS", "iq1_m_mix": "IQ1_M", "tq1_0_mix": "TQ1_0",
    "tq2_0_mix": "TQ2_0",
}
ROLES = ["attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down"]
LINE = re.compile(r"^\[\s*\d+/\s*\d+\]\s+(\S+)\s+- \[([^\]]*)\], type =\s*(\S+), size =\s*[\d.]+ MiB"
                  r"(?: ->\s*[\d.]+ MiB \((\S+)\))?")


def run(cmd, env):
    p = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    return p.returncode, p.stdout


def dry_run(bin_dir, env, model, ftype, imatrix):
    cmd = [os.path.join(bin_dir, "llama-quantize"), "--dry-run", "--allow-requantize"]
    if imatrix:
        cmd += ["--imatrix", imatrix]
    rc, out = run(cmd + [model, ftype, "2"], env)
    if rc != 0:
        sys.exit(f"llama-quantize {ftype} failed:\n{out[-3000:]}")
    types = {}
    for line in out.splitlines():
        m = LINE.match(line)
        if not m:
            continue
        name, shape, src, dst = m.groups()
        dims = [int(x) for x in shape.split(",")]
        if sum(d > 1 for d in dims) < 2:
            continue  # 1-D tensors (norms) are never quantized
        types[name] = (dst or src).lower()
    if not types:
        sys.exit(f"llama-quantize {ftype}: no per-tensor lines recognised:\n{out[-3000:]}")
    return types, "will require an imatrix" in out


def rle(values):
    out = []
    for v in values:
        if out and out[-1][0] == v:
            out[-1][1] += 1
        else:
            out.append([v, 1])
    return ",".join(v if n == 1 else f"{v}*{n}" for v, n in out)


def encode(types, n_layer):
    rec = {}
    for name in ("token_embd.weight", "output.weight"):
        if name in types:
            rec[name.split(".")[0]] = types.pop(name)
    for role in ROLES:
        rec[role] = rle([types.pop(f"blk.{il}.{role}.weight") for il in range(n_layer)])
    if types:
        sys.exit(f"tensors outside the known roles: {sorted(types)}")
    return rec


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--llama-bin", default=os.environ.get("LLAMA_CPP_BIN", "/tmp/llama-build/bin"))
    ap.add_argument("--out", default=os.path.join(ROOT, "tests/data/reference/isq_mixes.json"))
    args = ap.parse_args()
    env = dict(os.environ, LD_LIBRARY_PATH=args.llama_bin)
    result = {
        "generator": "scripts/gen_isq_mix_reference.py (llama-quantize --dry-run, llama.cpp as "
                     "vendored in llama-cpp-python 0.3.36)",
        "models": {},
    }
    with tempfile.TemporaryDirectory() as tmp:
        for key, fname in MODELS.items():
            model = os.path.join(CACHE, fname)
            reader = gguf.GGUFReader(model)
            arch = bytes(reader.fields["general.architecture"].parts[-1]).decode()
            n_layer = int(reader.fields[f"{arch}.block_count"].parts[-1][0])
            imatrix = os.path.join(tmp, key + ".imatrix")
            rc, out = run([os.path.join(args.llama_bin, "llama-imatrix"), "-m", model, "-f",
                           os.path.join(ROOT, "tests/data/text/eval.txt"), "-c", "128",
                           "--chunks", "2", "-t", "2", "-o", imatrix], env)
            if rc != 0:
                sys.exit(f"llama-imatrix failed:\n{out[-3000:]}")

            # The log parsing against a file llama.cpp actually writes.
            plain, _ = dry_run(args.llama_bin, env, model, "Q4_K_M", None)
            written = os.path.join(tmp, key + ".q4_k_m.gguf")
            rc, out = run([os.path.join(args.llama_bin, "llama-quantize"), "--allow-requantize",
                           model, written, "Q4_K_M", "2"], env)
            if rc != 0:
                sys.exit(f"llama-quantize Q4_K_M failed:\n{out[-3000:]}")
            real = {t.name: t.tensor_type.name.lower() for t in gguf.GGUFReader(written).tensors
                    if t.name in plain}
            if real != plain:
                diff = {n: (plain[n], real.get(n)) for n in plain if plain[n] != real.get(n)}
                sys.exit(f"{key}: dry-run log and written file disagree: {diff}")
            os.remove(written)

            mixes = {}
            for name, ftype in MIXES.items():
                rec = {}
                types, needs = dry_run(args.llama_bin, env, model, ftype, None)
                if needs:
                    rec["plain_requires_imatrix"] = True
                else:
                    rec["plain"] = encode(types, n_layer)
                types, _ = dry_run(args.llama_bin, env, model, ftype, imatrix)
                rec["imatrix"] = encode(types, n_layer)
                mixes[name] = rec
                print(f"{key} {name}: done", file=sys.stderr)
            result["models"][key] = {"file": fname, "n_layer": n_layer, "mixes": mixes}
    with open(args.out, "w") as f:
        json.dump(result, f, indent=1, sort_keys=False)
        f.write("\n")
    print(f"wrote {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
