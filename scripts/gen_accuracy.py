#!/usr/bin/env python3
"""Measures what each quantization type costs in quality, and writes docs/accuracy.md and its plot.

For each shipped model (SmolLM2-135M-Instruct, Gemma 3 270M; fetched by scripts/fetch-models.sh):
  1. the GGUF is converted to a full-precision directory (`insitu convert`, f32: the GGUF's values
     exactly), which is the base every type is measured against;
  2. an importance matrix is collected on calibration text (`insitu imatrix`);
  3. the base's logits over held-out evaluation text are saved (`insitu perplexity
     --kl-divergence-base`);
  4. every GGUF weight type is loaded in situ from the base (`--isq TYPE`, with mistral.rs's
     promotion of embeddings/output and llama.cpp's row-length fallbacks, as a user gets it), without
     and with the imatrix, and measured against the saved logits (`--kl-divergence`).
The two texts never overlap: calibration is the Jargon File (Debian `jargon-text`), evaluation is the
GNU maintainers' guide (Debian `gnu-standards`, maintain.text). Bits per weight count every weight of
the model as loaded (quantized, promoted, fallen-back and float tensors alike), bytes / elements.

Usage (after `scripts/install-deps.sh`, `scripts/fetch-models.sh` and a Release build):
  apt-get install -y jargon-text gnu-standards
  python3 scripts/gen_accuracy.py [--insitu build/bin/insitu] [--models smollm2,gemma3]
      [--types all|q4_0,q4k,...] [--chunks 16] [--calib-chunks 32] [--ctx 512] [--threads 2]
      [--work /tmp/insitu-accuracy] [--out docs/accuracy.md] [--svg docs/accuracy.svg]
Intermediate results are cached as JSON under --work, so an interrupted run resumes.
"""
import argparse
import gzip
import json
import math
import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CACHE = os.environ.get("INSITU_MODEL_CACHE", os.path.expanduser("~/.cache/insitu/models"))
MODELS = {
    "smollm2": ("SmolLM2-135M-Instruct", "SmolLM2-135M-Instruct.Q4_1.gguf"),
    "gemma3": ("Gemma 3 270M", "gemma-3-270m-q4_k_m.gguf"),
}
CALIB_SOURCE = "/usr/share/doc/jargon-text/jargon.txt.gz"
EVAL_SOURCE = "/usr/share/doc/gnu-standards/maintain.text.gz"
# Every GGUF weight type insitu produces, by increasing size. The first three need an imatrix.
TYPES = ["iq1_s", "iq1_m", "iq2_xxs", "iq2_xs", "iq2_s", "tq1_0", "tq2_0", "q2k", "iq3_xxs",
         "iq3_s", "q3k", "iq4_xs", "iq4_nl", "mxfp4", "q4_0", "q4k", "q4_1", "q5_0", "q5k", "q5_1",
         "q6k", "q8_0", "q8_1", "bf16", "f16",
         # mistral.rs's own formats (HQQ groups of 64, AFQ groups of 64, FP8 per tensor and per
         # 128x128 tile, F8Q8) ...
         "hqq2", "hqq3", "hqq4", "hqq8", "afq2", "afq3", "afq4", "afq6", "afq8", "fp8", "fp8_b128",
         "f8q8",
         # ... and llama.cpp's per-tensor mixes.
         "q2k_s", "q3k_s", "q3k_m", "q3k_l", "q4k_s", "q4k_m", "q5k_s", "q5k_m", "iq2_m", "iq3_xs",
         "iq3_m"]
NEEDS_IMATRIX = {"iq1_s", "iq1_m", "iq2_xxs", "iq2_xs", "iq2_m", "q2k_s"}
# Types whose quantizers take no importance weights: only the plain run is meaningful.
NO_IMATRIX = {"tq1_0", "tq2_0", "mxfp4", "q8_0", "q8_1", "bf16", "f16", "hqq2", "hqq3", "hqq4",
              "hqq8", "afq2", "afq3", "afq4", "afq6", "afq8", "fp8", "fp8_b128", "f8q8"}
# What the in-situ quantization issue asks of mistral.rs's formats: (type, reference, factor):
# mean KLD of `type` at most factor x that of `reference` (strictly lower for factor 1).
FORMAT_CHECKS = [("hqq4", "q4_0", 1.0), ("fp8", "q8_0", 2.0), ("fp8_b128", "q8_0", 2.0),
                 ("f8q8", "q8_0", 2.0)]


def format_check_rows(by):
    """(type, KLD, reference, its KLD, bound, met) for each FORMAT_CHECKS entry measured."""
    out = []
    for ty, ref, factor in FORMAT_CHECKS:
        if (ty, False) in by and (ref, False) in by:
            k, kr = by[(ty, False)], by[(ref, False)]
            met = k < kr if factor == 1.0 else k <= factor * kr
            out.append((ty, k, ref, kr, factor, met))
    return out
# The types the quality issue requires the imatrix to improve.
IMATRIX_CHECKED = ["q2k", "q3k", "q4k", "iq3_s", "iq4_xs"]


def run(cmd, log):
    log.write("$ " + " ".join(cmd) + "\n")
    log.flush()
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=log, text=True)
    if r.returncode != 0:
        raise SystemExit(f"failed ({r.returncode}): {' '.join(cmd)}; see {log.name}")
    return r.stdout


def text_file(src, dst, limit):
    if not os.path.exists(dst):
        if not os.path.exists(src):
            raise SystemExit(f"{src} missing: apt-get install -y jargon-text gnu-standards")
        with gzip.open(src, "rb") as f:
            data = f.read(limit)
        data = data.decode("utf-8", errors="ignore")
        with open(dst + ".tmp", "w", encoding="utf-8") as f:
            f.write(data)
        os.replace(dst + ".tmp", dst)
    return dst


def cached_json(path, produce):
    if os.path.exists(path):
        with open(path) as f:
            return json.load(f)
    value = produce()
    with open(path + ".tmp", "w") as f:
        json.dump(value, f, indent=1)
    os.replace(path + ".tmp", path)
    return value


def measure_model(key, a, log):
    name, fname = MODELS[key]
    gguf = os.path.join(CACHE, fname)
    if not os.path.exists(gguf):
        raise SystemExit(f"{gguf} missing: run scripts/fetch-models.sh")
    work = os.path.join(a.work, key)
    os.makedirs(work, exist_ok=True)
    base = os.path.join(a.work, key + "-f32")
    t = ["-t", str(a.threads)]
    if not os.path.isdir(base):
        run([a.insitu, "convert", "--format", "gguf", "-f", gguf, "-o", base] + t, log)
    calib = text_file(CALIB_SOURCE, os.path.join(a.work, "calib.txt"), 600_000)
    evalt = text_file(EVAL_SOURCE, os.path.join(a.work, "eval.txt"), 600_000)
    imat = os.path.join(work, "imatrix.gguf")
    if not os.path.exists(imat):
        run([a.insitu, "imatrix", "-m", base, "--file", calib, "--ctx", str(a.ctx), "--chunks",
             str(a.calib_chunks), "-o", imat] + t, log)
    kld = os.path.join(work, "base.kld")
    common = ["--file", evalt, "--ctx", str(a.ctx), "--chunks", str(a.chunks), "--json"] + t
    base_res = cached_json(os.path.join(work, "base.json"), lambda: json.loads(
        run([a.insitu, "perplexity", "-m", base, "--kl-divergence-base", kld] + common, log)))
    rows = []
    missing = []
    for ty in a.types:
        for with_imat in (False, True):
            if with_imat and ty in NO_IMATRIX:
                continue
            if not with_imat and ty in NEEDS_IMATRIX:
                continue
            tag = f"{ty}{'-imat' if with_imat else ''}"
            if a.cached_only and not os.path.exists(os.path.join(work, tag + ".json")):
                missing.append(tag)
                continue
            cmd = [a.insitu, "perplexity", "-m", base, "--isq", ty, "--kl-divergence-base", kld,
                   "--kl-divergence"] + common
            if with_imat:
                cmd += ["--imatrix", imat]
            t0 = time.time()
            res = cached_json(os.path.join(work, tag + ".json"),
                              lambda: json.loads(run(cmd, log)))
            print(f"  {key} {tag}: KLD {res['kld']:.5f}  ({time.time() - t0:.0f} s)",
                  file=sys.stderr)
            rows.append({"type": ty, "imatrix": with_imat, "res": res})
    return {"key": key, "name": name, "gguf": fname, "base": base_res, "rows": rows,
            "missing": missing}


def bpw(res):
    w = res["weights"]
    return 8.0 * w["bytes"] / w["elements"]


def write_svg(models, path):
    W, H, L, R, T, B = 900, 560, 80, 200, 40, 60
    pts = [(bpw(r["res"]), r["res"]["kld"], m["key"], r["imatrix"], r["type"])
           for m in models for r in m["rows"] if r["res"]["kld"] > 0]
    xs = [p[0] for p in pts]
    ys = [math.log10(p[1]) for p in pts]
    x0, x1 = math.floor(min(xs)), math.ceil(max(xs))
    y0, y1 = math.floor(min(ys)), math.ceil(max(ys))

    def px(x):
        return L + (x - x0) / (x1 - x0) * (W - L - R)

    def py(y):
        return T + (y1 - y) / (y1 - y0) * (H - T - B)

    colors = {"smollm2": "#1f77b4", "gemma3": "#d62728"}
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" '
           f'font-family="sans-serif" font-size="12">',
           f'<rect width="{W}" height="{H}" fill="white"/>',
           f'<text x="{W / 2 - 120}" y="22" font-size="15">Mean KL divergence vs bits per weight</text>']
    for x in range(x0, x1 + 1):
        out.append(f'<line x1="{px(x):.1f}" y1="{T}" x2="{px(x):.1f}" y2="{H - B}" stroke="#ddd"/>')
        out.append(f'<text x="{px(x) - 4:.1f}" y="{H - B + 16}">{x}</text>')
    for y in range(y0, y1 + 1):
        out.append(f'<line x1="{L}" y1="{py(y):.1f}" x2="{W - R}" y2="{py(y):.1f}" stroke="#ddd"/>')
        out.append(f'<text x="{L - 50}" y="{py(y) + 4:.1f}">1e{y}</text>')
    out.append(f'<text x="{(W - R + L) / 2 - 60}" y="{H - 20}">bits per weight (whole model)</text>')
    out.append(f'<text x="20" y="{(H - B + T) / 2}" transform="rotate(-90 20 {(H - B + T) / 2})">'
               f'mean KLD vs f32 (log scale)</text>')
    for x, y, key, imat, ty in pts:
        cx, cy = px(x), py(math.log10(y))
        c = colors.get(key, "black")
        if imat:
            out.append(f'<circle cx="{cx:.1f}" cy="{cy:.1f}" r="4" fill="{c}"><title>{key} {ty} '
                       f'imatrix</title></circle>')
        else:
            out.append(f'<circle cx="{cx:.1f}" cy="{cy:.1f}" r="4" fill="none" stroke="{c}">'
                       f'<title>{key} {ty}</title></circle>')
        out.append(f'<text x="{cx + 5:.1f}" y="{cy - 4:.1f}" font-size="9" fill="{c}">{ty}</text>')
    ly = T + 10
    for m in models:
        c = colors.get(m["key"], "black")
        out.append(f'<circle cx="{W - R + 20}" cy="{ly}" r="4" fill="{c}"/>'
                   f'<text x="{W - R + 30}" y="{ly + 4}">{m["name"]}, imatrix</text>')
        out.append(f'<circle cx="{W - R + 20}" cy="{ly + 18}" r="4" fill="none" stroke="{c}"/>'
                   f'<text x="{W - R + 30}" y="{ly + 22}">{m["name"]}, none</text>')
        ly += 44
    out.append("</svg>")
    with open(path + ".tmp", "w") as f:
        f.write("\n".join(out) + "\n")
    os.replace(path + ".tmp", path)


def write_markdown(models, a, path):
    lines = ["# Accuracy of every quantization type", "",
             "Generated by `scripts/gen_accuracy.py` (do not edit by hand). Each shipped model's GGUF is "
             "converted to an f32 directory (its values exactly); that is the base. Every type is then "
             "loaded in situ from the base (`insitu perplexity -m BASE --isq TYPE [--imatrix F]`), as a "
             "user would load it: token embeddings and output head promoted as mistral.rs does, rows a "
             "type's blocks cannot hold falling back as llama.cpp does (both models have 576/640-wide "
             "rows, so K- and i-quants apply fully only to `ffn_down`). Measured like llama.cpp's "
             "`llama-perplexity --kl-divergence`:",
             f"context {a.ctx}, second half of each chunk scored, {a.chunks} chunks of held-out text "
             "(GNU maintainers' guide, Debian `gnu-standards`). The imatrix was collected by "
             f"`insitu imatrix` on {a.calib_chunks} chunks of different text (the Jargon File, Debian "
             "`jargon-text`).", "",
             "bpw counts every weight of the loaded model (bytes x 8 / elements). ΔPPL is relative to "
             "the base. ± is one standard error.", "",
             "Two things to keep in mind when reading the numbers. The only full-precision sources "
             "available offline are these dequantized GGUFs (SmolLM2 from Q4_1, Gemma from Q4_K_M), "
             "so a type that can represent the source's own grid exactly (q4_1 on SmolLM2; q5_1 and "
             "q5k once the imatrix-guided search finds that grid) shows only the noise floor of "
             "8-bit activation quantization, the same as q8_0. And tq1_0/tq2_0 are ternary formats "
             "for models trained ternary: on these models they destroy the output, as expected.",
             "", "fp8 and fp8_b128 store each weight as E4M3, 3 mantissa bits: about 1.8% RMS error "
             "relative to each weight, against about 0.5% of the weights' spread for q8_0's int8 "
             "steps of max/127 per 32 values. KLD grows with the square of the error, so roughly "
             "10-13x q8_0's KLD is what the format gives, whatever its scale (per tensor or per "
             "tile; the scale only moves where subnormals start). f8q8 (int8 values with an E4M3 "
             "block scale, rounded up before the integers are computed) is the 8-bit format with "
             "q8_0's quality.",
             "", "![KLD vs bpw](accuracy.svg)", ""]
    for m in models:
        b = m["base"]
        lines += [f"## {m['name']} (from `{m['gguf']}`)", "",
                  f"Base (f32): PPL {b['ppl']:.4f} ± {b['ppl_unc']:.4f} over {b['n_scored']} tokens.",
                  "", "| type | imatrix | bpw | size MiB | PPL | ΔPPL | mean KLD | top-1 agree |",
                  "|---|---|---:|---:|---:|---:|---:|---:|"]
        for r in sorted(m["rows"], key=lambda r: (bpw(r["res"]), r["imatrix"])):
            res = r["res"]
            ppl = res["ppl"]
            d = 100.0 * (ppl / b["ppl"] - 1.0)
            lines.append(
                f"| {r['type']} | {'yes' if r['imatrix'] else 'no'} | {bpw(res):.3f} | "
                f"{res['weights']['bytes'] / 2**20:.1f} | {ppl:.4f} | {d:+.2f}% | "
                f"{res['kld']:.5f} ± {res['kld_unc']:.5f} | {100 * res['same_top']:.2f}% |")
        lines += ["", "With and without the imatrix (mean KLD):", "",
                  "| type | none | imatrix | lower with imatrix |", "|---|---:|---:|---|"]
        by = {(r["type"], r["imatrix"]): r["res"]["kld"] for r in m["rows"]}
        for ty in IMATRIX_CHECKED:
            if (ty, False) in by and (ty, True) in by:
                lower = by[(ty, True)] < by[(ty, False)]
                lines.append(f"| {ty} | {by[(ty, False)]:.5f} | {by[(ty, True)]:.5f} | "
                             f"{'yes' if lower else '**no**'} |")
        checks = format_check_rows(by)
        if checks:
            lines += ["", "mistral.rs's formats against the GGUF types (mean KLD, no imatrix):", "",
                      "| type | KLD | reference | its KLD | required | met |",
                      "|---|---:|---|---:|---|---|"]
            for ty, k, ref, kr, factor, met in checks:
                need = f"< {ref}" if factor == 1.0 else f"<= {factor:g} x {ref}"
                lines.append(f"| {ty} | {k:.5f} | {ref} | {kr:.5f} | {need} | "
                             f"{'yes' if met else '**no**'} |")
        lines.append("")
        if m["missing"]:
            lines += ["Not measured yet (the run was cut short): " +
                      ", ".join(f"`{t}`" for t in m["missing"]) + ".", ""]
    with open(path + ".tmp", "w") as f:
        f.write("\n".join(lines))
    os.replace(path + ".tmp", path)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--insitu", default=os.path.join(ROOT, "build", "bin", "insitu"))
    p.add_argument("--models", default="smollm2,gemma3")
    p.add_argument("--types", default="all")
    p.add_argument("--ctx", type=int, default=512)
    p.add_argument("--chunks", type=int, default=16)
    p.add_argument("--calib-chunks", type=int, default=32)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--cached-only", action="store_true",
                   help="write the report from the results already under --work; run nothing new")
    p.add_argument("--work", default="/tmp/insitu-accuracy")
    p.add_argument("--out", default=os.path.join(ROOT, "docs", "accuracy.md"))
    p.add_argument("--svg", default=os.path.join(ROOT, "docs", "accuracy.svg"))
    a = p.parse_args()
    a.types = TYPES if a.types == "all" else a.types.split(",")
    os.makedirs(a.work, exist_ok=True)
    with open(os.path.join(a.work, "log.txt"), "a") as log:
        models = [measure_model(k, a, log) for k in a.models.split(",")]
    write_markdown(models, a, a.out)
    write_svg(models, a.svg)
    bad = []
    for m in models:
        by = {(r["type"], r["imatrix"]): r["res"]["kld"] for r in m["rows"]}
        for ty in IMATRIX_CHECKED:
            if (ty, False) in by and (ty, True) in by and by[(ty, True)] >= by[(ty, False)]:
                bad.append((m["key"], ty))
        for ty, k, ref, kr, factor, met in format_check_rows(by):
            if not met:
                bad.append((m["key"], f"{ty} vs {ref}"))
    print(f"wrote {a.out} and {a.svg}", file=sys.stderr)
    if bad:
        print(f"checks not met: {bad}", file=sys.stderr)


if __name__ == "__main__":
    main()
