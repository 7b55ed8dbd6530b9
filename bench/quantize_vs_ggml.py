#!/usr/bin/env python3
"""Quantization throughput of insitu's quantize_tensor vs ggml's ggml_quantize_chunk, side by side.

Both run on the same matrix (default 256 x 4096 drawn from N(0, 0.02^2), as in
../shared/reference/ggml-formats.md §2.6) and the same imatrix (random positive), in one run.
ggml is called through ctypes in libggml-base from the installed llama_cpp package; insitu through
`quantize_bench --raw` (build it with -DINSITU_BUILD_BENCH=ON), which times quantize_tensor
internally. Each figure is the median of --reps samples; a sample runs the quantization M times
back to back (M chosen so that one ggml sample takes about --sample-s seconds, the same M for
both), so fast types are timed over more than a scheduler tick. For 2 threads ggml gets two
Python threads, each quantizing half the rows with ggml_quantize_chunk (ctypes releases the GIL),
which is how llama-quantize splits work; insitu uses its ThreadPool.

The last column says whether both produced the same bytes (they should: insitu is byte-exact with
ggml's reference quantizers).

--clock cpu times single-thread runs by the thread's CPU time on both sides (ggml: time.thread_time
around the ctypes call; insitu: CLOCK_THREAD_CPUTIME_ID), which keeps ratios stable on a machine
shared with other jobs; multi-thread rows are always wall-clock. Samples alternate between the two
(one insitu sample, one ggml sample, and so on), so that a change in the machine's load during a
row slows both alike instead of only the one measured second.

Usage: python3 bench/quantize_vs_ggml.py [--bin build/bin/quantize_bench] [--types q4_K,q6_K]
       [--rows 256] [--cols 4096] [--reps 7] [--threads 1,2] [--clock wall|cpu]
"""
import argparse
import ctypes
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time

import numpy as np

# ggml type ids (include/ggml.h); insitu's QuantType uses the same numbers.
GGML_TYPES = {
    "q4_0": 2, "q4_1": 3, "q5_0": 6, "q5_1": 7, "q8_0": 8,
    "q2_K": 10, "q3_K": 11, "q4_K": 12, "q5_K": 13, "q6_K": 14,
    "iq2_xxs": 16, "iq2_xs": 17, "iq3_xxs": 18, "iq1_s": 19, "iq4_nl": 20, "iq3_s": 21,
    "iq2_s": 22, "iq4_xs": 23, "iq1_m": 29, "tq1_0": 34, "tq2_0": 35, "mxfp4": 39,
}
REQUIRES_IMATRIX = {"iq2_xxs", "iq2_xs", "iq1_s"}


def load_ggml():
    import llama_cpp  # noqa: F401  (locates the package's lib directory)
    libdir = os.path.join(os.path.dirname(llama_cpp.__file__), "lib")
    lib = ctypes.CDLL(os.path.join(libdir, "libggml-base.so"))
    lib.ggml_quantize_chunk.restype = ctypes.c_size_t
    lib.ggml_quantize_chunk.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p,
                                        ctypes.c_int64, ctypes.c_int64, ctypes.c_int64,
                                        ctypes.c_void_p]
    lib.ggml_row_size.restype = ctypes.c_size_t
    lib.ggml_row_size.argtypes = [ctypes.c_int, ctypes.c_int64]
    lib.ggml_quantize_init.argtypes = [ctypes.c_int]
    return lib


def time_ggml(lib, tid, x, imatrix, threads, reps, inner, clock="wall"):
    rows, cols = x.shape
    row_size = lib.ggml_row_size(tid, cols)
    dst = np.zeros(rows * row_size, dtype=np.uint8)
    im = imatrix.ctypes.data if imatrix is not None else None
    lib.ggml_quantize_init(tid)  # grids for i-quants: one-time setup, not timed

    def work(r0, r1):
        for _ in range(inner):
            lib.ggml_quantize_chunk(tid, x.ctypes.data, dst.ctypes.data, r0 * cols, r1 - r0, cols,
                                    im)

    times = []
    for _ in range(reps):
        bounds = [rows * i // threads for i in range(threads + 1)]
        timer = time.thread_time if (clock == "cpu" and threads == 1) else time.perf_counter
        t0 = timer()
        if threads == 1:
            work(0, rows)
        else:
            ts = [threading.Thread(target=work, args=(bounds[i], bounds[i + 1]))
                  for i in range(threads)]
            for t in ts:
                t.start()
            for t in ts:
                t.join()
        times.append((timer() - t0) / inner)
    return statistics.median(times), dst.tobytes()


def pick_inner(lib, tid, x, imatrix, sample_s):
    once, _ = time_ggml(lib, tid, x, imatrix, 1, 1, 1)
    return max(1, int(sample_s / max(once, 1e-6)))


def time_insitu(binary, name, src_path, im_path, rows, cols, threads, reps, inner, out_path,
                clock="wall"):
    cmd = [binary, "--raw", src_path, "--rows", str(rows), "--cols", str(cols), "--type", name,
           "--threads", str(threads), "--reps", str(reps), "--inner", str(inner), "--out", out_path,
           "--clock", clock if threads == 1 else "wall"]
    if im_path:
        cmd += ["--imatrix", im_path]
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0:
        return None, p.stderr.strip()
    fields = dict(kv.split("=") for kv in p.stdout.split())
    with open(out_path, "rb") as f:
        return float(fields["median_s"]), f.read()


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--bin", default=os.path.join(here, "..", "build", "bin", "quantize_bench"))
    ap.add_argument("--types", default=",".join(GGML_TYPES))
    ap.add_argument("--rows", type=int, default=256)
    ap.add_argument("--cols", type=int, default=4096)
    ap.add_argument("--reps", type=int, default=7)
    ap.add_argument("--sample-s", type=float, default=0.05)
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--clock", choices=["wall", "cpu"], default="wall")
    args = ap.parse_args()

    rng = np.random.default_rng(args.seed)
    x = (rng.standard_normal((args.rows, args.cols)) * 0.02).astype(np.float32)
    imatrix = rng.uniform(0.05, 5.0, args.cols).astype(np.float32)
    lib = load_ggml()
    n = args.rows * args.cols

    with tempfile.TemporaryDirectory() as tmp:
        src_path = os.path.join(tmp, "src.f32")
        im_path = os.path.join(tmp, "imatrix.f32")
        out_path = os.path.join(tmp, "out.bin")
        x.tofile(src_path)
        imatrix.tofile(im_path)
        print(f"{args.rows} x {args.cols} weights, median of {args.reps}, {args.clock} clock for "
              f"1 thread; Mw/s = million weights/s")
        print(f"{'type':<8} {'imat':<4} {'thr':>3} {'ggml Mw/s':>10} {'insitu Mw/s':>12} "
              f"{'ratio':>6}  same bytes")
        for name in args.types.split(","):
            tid = GGML_TYPES[name]
            for use_im in (False, True):
                if name in REQUIRES_IMATRIX and not use_im:
                    continue
                im = imatrix if use_im else None
                inner = pick_inner(lib, tid, x, im, args.sample_s)
                for threads in (int(t) for t in args.threads.split(",")):
                    our_times, their_times = [], []
                    for _ in range(args.reps):
                        ours, our_bytes = time_insitu(args.bin, name, src_path,
                                                      im_path if use_im else None, args.rows,
                                                      args.cols, threads, 1, inner, out_path,
                                                      args.clock)
                        if ours is None:
                            break
                        theirs, their_bytes = time_ggml(lib, tid, x, im, threads, 1, inner,
                                                        args.clock)
                        our_times.append(ours)
                        their_times.append(theirs)
                    if ours is None:
                        print(f"{name:<8} {'yes' if use_im else 'no':<4} {threads:>3}   "
                              f"insitu cannot quantize: {our_bytes}")
                        break
                    ours = statistics.median(our_times)
                    theirs = statistics.median(their_times)
                    print(f"{name:<8} {'yes' if use_im else 'no':<4} {threads:>3} "
                          f"{n / theirs / 1e6:>10.1f} {n / ours / 1e6:>12.1f} "
                          f"{theirs / ours:>6.2f}  {'yes' if our_bytes == their_bytes else 'NO'}",
                          flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
