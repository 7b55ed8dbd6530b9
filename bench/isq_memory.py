#!/usr/bin/env python3
"""Peak memory and throughput of in-situ quantization at load.

  isq_memory.py -m CHECKPOINT_DIR [--isq q4k] [--threads 1,2] [--runs 1] [--insitu build/bin/insitu]

Runs `insitu run -m DIR --isq TYPE --prompt ... --max-tokens 1 -t N` under `/usr/bin/time -v` for
each thread count and reports, per run: peak RSS, the bytes the quantized weights occupy (from the
ISQ summary line insitu logs), the budget 1.15 x quantized + 256 MiB and whether the peak stays
inside it, and the ISQ throughput in GB/s of source weights, and the share of CPU the process got (on a shared
machine the throughput is only meaningful next to it). Make a large checkpoint with
bench/make_synthetic_checkpoint.py --arch llama --size-gb 4.2 first. Timings on a shared machine
are noisy: use --runs to take medians.
"""
import argparse
import re
import statistics
import subprocess
import sys

UNITS = {"B": 1, "KiB": 1024, "MiB": 1024 ** 2, "GiB": 1024 ** 3, "TiB": 1024 ** 4}
SUMMARY = re.compile(r"isq (\S+): (\d+) tensors, ([\d.]+) (\w+) -> ([\d.]+) (\w+) in ([\d.]+) s "
                     r"\(([\d.]+) GB/s of source, (\d+) threads\)")


def run_once(insitu, model, isq, threads):
    cmd = ["/usr/bin/time", "-v", insitu, "run", "-m", model, "--isq", isq, "--prompt", "Hello",
           "--max-tokens", "1", "-t", str(threads), "--log-level", "info"]
    p = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True)
    if p.returncode != 0:
        sys.exit(f"failed ({p.returncode}): {' '.join(cmd)}\n{p.stderr[-3000:]}")
    rss = re.search(r"Maximum resident set size \(kbytes\): (\d+)", p.stderr)
    cpu = re.search(r"Percent of CPU this job got: (\d+)%", p.stderr)
    summary = SUMMARY.search(p.stderr)
    if not rss or not summary:
        sys.exit(f"could not parse the output of {' '.join(cmd)}\n{p.stderr[-3000:]}")
    return {
        "peak_rss": int(rss.group(1)) * 1024,
        "source": float(summary.group(3)) * UNITS[summary.group(4)],
        "quantized": float(summary.group(5)) * UNITS[summary.group(6)],
        "seconds": float(summary.group(7)),
        "gbps": float(summary.group(8)),
        "cpu": int(cpu.group(1)) if cpu else 0,
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("-m", "--model", required=True)
    ap.add_argument("--isq", default="q4k")
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--insitu", default="build/bin/insitu")
    a = ap.parse_args()
    gib = 1024 ** 3
    print(f"{'threads':>7} {'peak RSS':>10} {'quantized':>10} {'budget':>10} {'within':>6} "
          f"{'ISQ s':>7} {'GB/s':>6} {'CPU %':>6}")
    for t in [int(x) for x in a.threads.split(",")]:
        runs = [run_once(a.insitu, a.model, a.isq, t) for _ in range(a.runs)]
        peak = statistics.median(r["peak_rss"] for r in runs)
        quant = runs[0]["quantized"]
        budget = 1.15 * quant + 256 * 1024 ** 2
        print(f"{t:>7} {peak / gib:>8.3f} G {quant / gib:>8.3f} G {budget / gib:>8.3f} G "
              f"{'yes' if peak <= budget else 'NO':>6} "
              f"{statistics.median(r['seconds'] for r in runs):>7.2f} "
              f"{statistics.median(r['gbps'] for r in runs):>6.3f} "
              f"{statistics.median(r['cpu'] for r in runs):>6}")
    print(f"source: {runs[0]['source'] / gib:.3f} GiB ({a.model}), type {a.isq}, "
          f"{a.runs} run(s) per thread count, medians")


if __name__ == "__main__":
    main()
