#!/usr/bin/env python3
"""insitu matmul vs ggml's, side by side on this machine, same shapes and thread count.

ggml is the libggml bundled with llama-cpp-python (llama.cpp as vendored in llama-cpp-python
0.3.36), driven through ctypes:
  * ggml-default: ggml_graph_compute_with_ctx on a plain CPU tensor (vec_dot per output, plus
    llamafile's tinyBLAS for q4_0/q8_0 prompts, as llama-cpp-python builds it);
  * ggml-repack: the weight placed in the CPU_REPACK buffer type, which is what llama.cpp does at
    load for the types it can repack on x86 (q4_0, q4_K, iq4_nl, mxfp4; q2_K with AVX-512).
insitu is timed by running build-*/bin/matmul_bench for the same case. Rounds alternate between
the two so machine load affects both alike; each figure is a median. On a shared, loaded machine
wall time mostly measures the scheduler: --cpu-time (valid with --threads 1 only) compares
process CPU time instead, which time slicing does not inflate.

  python3 bench/matmul_vs_ggml.py --bench build-kern/bin/matmul_bench [--threads 2] [--reps 5]
"""
import argparse
import ctypes
import json
import os
import statistics
import subprocess
import sys
import time

import numpy as np

LIB = os.path.join(os.path.dirname(__import__("llama_cpp").__file__), "lib")
M, K = 4096, 14336  # output rows (ne1), input length (ne0), as in ggml's perf case
GGML_TYPE = {"q4_0": 2, "q8_0": 8, "q4k": 12, "q6k": 14, "iq4_xs": 23, "q4_1": 3, "q5_0": 6,
             "q5k": 13, "f16": 1}
REPACKABLE = {"q4_0", "q4k"}  # x86 repack types among those benchmarked (ggml-cpu/repack.cpp)


class InitParams(ctypes.Structure):
    _fields_ = [("mem_size", ctypes.c_size_t), ("mem_buffer", ctypes.c_void_p),
                ("no_alloc", ctypes.c_bool)]


def load_ggml():
    base = ctypes.CDLL(os.path.join(LIB, "libggml-base.so"), mode=ctypes.RTLD_GLOBAL)
    ggml = ctypes.CDLL(os.path.join(LIB, "libggml.so"), mode=ctypes.RTLD_GLOBAL)
    cpu = ctypes.CDLL(os.path.join(LIB, "libggml-cpu.so"), mode=ctypes.RTLD_GLOBAL)
    vp, i64, sz = ctypes.c_void_p, ctypes.c_int64, ctypes.c_size_t
    sigs = [
        (base.ggml_init, vp, [InitParams]), (base.ggml_free, None, [vp]),
        (base.ggml_new_tensor_2d, vp, [vp, ctypes.c_int, i64, i64]),
        (base.ggml_mul_mat, vp, [vp, vp, vp]), (base.ggml_new_graph, vp, [vp]),
        (base.ggml_build_forward_expand, None, [vp, vp]), (base.ggml_get_data, vp, [vp]),
        (base.ggml_nbytes, sz, [vp]), (base.ggml_tensor_overhead, sz, []),
        (base.ggml_graph_overhead, sz, []), (base.ggml_row_size, sz, [ctypes.c_int, i64]),
        (base.ggml_quantize_chunk, sz, [ctypes.c_int, vp, vp, i64, i64, i64, vp]),
        (base.ggml_backend_alloc_ctx_tensors_from_buft, vp, [vp, vp]),
        (base.ggml_backend_tensor_set, None, [vp, vp, sz, sz]),
        (base.ggml_backend_graph_compute, ctypes.c_int, [vp, vp]),
        (base.ggml_backend_buffer_free, None, [vp]),
        (cpu.ggml_graph_compute_with_ctx, ctypes.c_int, [vp, vp, ctypes.c_int]),
        (cpu.ggml_backend_cpu_init, vp, []),
        (cpu.ggml_backend_cpu_set_n_threads, None, [vp, ctypes.c_int]),
        (cpu.ggml_backend_cpu_buffer_type if hasattr(cpu, "ggml_backend_cpu_buffer_type")
         else base.ggml_backend_cpu_buffer_type, vp, []),
        (cpu._Z35ggml_backend_cpu_repack_buffer_typev, vp, []),
        (base.ggml_backend_free, None, [vp]),
    ]
    for fn, res, args in sigs:
        fn.restype, fn.argtypes = res, args
    return base, cpu


def ggml_weights(base, tname):
    """4096 x 14336 weights in ggml's format: 64 quantized rows of Gaussian data, repeated."""
    t = GGML_TYPE[tname]
    rng = np.random.default_rng(1)
    src = rng.standard_normal((64, K), dtype=np.float32)
    row = base.ggml_row_size(t, K)
    block = np.zeros(64 * row, dtype=np.uint8)
    imat = np.ones(K, dtype=np.float32)
    base.ggml_quantize_chunk(t, src.ctypes.data, block.ctypes.data, 0, 64, K, imat.ctypes.data)
    return np.tile(block, M // 64), row


def time_ggml(base, cpu, tname, n, threads, reps, repack, clock=time.perf_counter):
    t = GGML_TYPE[tname]
    w, _ = ggml_weights(base, tname)
    x = np.random.default_rng(2).standard_normal((n, K), dtype=np.float32)
    times = []
    if not repack:
        mem = w.nbytes + x.nbytes + 4 * M * n + 2 * K * n + (64 << 20)
        ctx = base.ggml_init(InitParams(mem, None, False))
        W = base.ggml_new_tensor_2d(ctx, t, K, M)
        X = base.ggml_new_tensor_2d(ctx, 0, K, n)
        ctypes.memmove(base.ggml_get_data(W), w.ctypes.data, w.nbytes)
        ctypes.memmove(base.ggml_get_data(X), x.ctypes.data, x.nbytes)
        gf = base.ggml_new_graph(ctx)
        base.ggml_build_forward_expand(gf, base.ggml_mul_mat(ctx, W, X))
        cpu.ggml_graph_compute_with_ctx(ctx, gf, threads)  # warm-up
        for _ in range(reps):
            t0 = clock()
            base_status = cpu.ggml_graph_compute_with_ctx(ctx, gf, threads)
            times.append(clock() - t0)
            assert base_status == 0
        base.ggml_free(ctx)
        return statistics.median(times)
    backend = cpu.ggml_backend_cpu_init()
    cpu.ggml_backend_cpu_set_n_threads(backend, threads)
    meta = base.ggml_tensor_overhead() * 8 + base.ggml_graph_overhead()
    wctx = base.ggml_init(InitParams(meta, None, True))
    W = base.ggml_new_tensor_2d(wctx, t, K, M)
    wbuf = base.ggml_backend_alloc_ctx_tensors_from_buft(wctx, cpu._Z35ggml_backend_cpu_repack_buffer_typev())
    base.ggml_backend_tensor_set(W, w.ctypes.data, 0, w.nbytes)
    ctx = base.ggml_init(InitParams(meta, None, True))
    X = base.ggml_new_tensor_2d(ctx, 0, K, n)
    out = base.ggml_mul_mat(ctx, W, X)
    gf = base.ggml_new_graph(ctx)
    base.ggml_build_forward_expand(gf, out)
    cbuf = base.ggml_backend_alloc_ctx_tensors_from_buft(ctx, cpu.ggml_backend_cpu_buffer_type())
    base.ggml_backend_tensor_set(X, x.ctypes.data, 0, x.nbytes)
    base.ggml_backend_graph_compute(backend, gf)  # warm-up
    for _ in range(reps):
        t0 = clock()
        assert base.ggml_backend_graph_compute(backend, gf) == 0
        times.append(clock() - t0)
    for b in (cbuf, wbuf):
        base.ggml_backend_buffer_free(b)
    base.ggml_free(ctx)
    base.ggml_free(wctx)
    base.ggml_backend_free(backend)
    return statistics.median(times)


def time_insitu(bench, tname, n, threads, reps, isa, field="real_time"):
    env = dict(os.environ, INSITU_BENCH_THREADS=str(threads))
    flt = f"^matmul/{isa}/{tname}/n={n}/"
    out = subprocess.run([bench, f"--benchmark_filter={flt}", f"--benchmark_repetitions={reps}",
                          "--benchmark_format=json"], env=env, check=True,
                         capture_output=True, text=True).stdout
    runs = [b for b in json.loads(out)["benchmarks"] if b.get("run_type") == "iteration"]
    if not runs:
        sys.exit(f"matmul_bench has no case matching {flt}")
    scale = {"ms": 1e-3, "us": 1e-6, "ns": 1e-9, "s": 1.0}[runs[0]["time_unit"]]
    return statistics.median(r[field] * scale for r in runs)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bench", default="build/bin/matmul_bench")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--reps", type=int, default=5, help="timed runs per side per round")
    ap.add_argument("--rounds", type=int, default=2, help="alternating rounds per case")
    ap.add_argument("--isa", default="avx512")
    ap.add_argument("--types", default="q4_0,q8_0,q4k,q6k,iq4_xs")
    ap.add_argument("--n", default="1,512")
    ap.add_argument("--cpu-time", action="store_true", help="compare CPU time (needs --threads 1)")
    args = ap.parse_args()
    if args.cpu_time and args.threads != 1:
        sys.exit("--cpu-time needs --threads 1 (insitu's benchmark reports the main thread's CPU time)")
    clock = time.process_time if args.cpu_time else time.perf_counter
    field = "cpu_time" if args.cpu_time else "real_time"
    base, cpu = load_ggml()
    print(f"shape m={M} k={K}, threads={args.threads}, {field} medians; ratio = ggml time / insitu "
          "time (>1: insitu faster)")
    print(f"{'type':8} {'n':>4} {'insitu ms':>10} {'ggml ms':>9} {'ratio':>6} {'repack ms':>10} {'ratio':>6}  GFLOPS insitu")
    for tname in args.types.split(","):
        for n in (int(v) for v in args.n.split(",")):
            reps = args.reps if n == 1 else max(2, args.reps // 2)
            ins, gg, rp = [], [], []
            for _ in range(args.rounds):
                greps = reps * (10 if n == 1 else 1)
                gg.append(time_ggml(base, cpu, tname, n, args.threads, greps, False, clock))
                if tname in REPACKABLE:
                    rp.append(time_ggml(base, cpu, tname, n, args.threads, greps, True, clock))
                ins.append(time_insitu(args.bench, tname, n, args.threads, reps, args.isa, field))
            i, g = statistics.median(ins), statistics.median(gg)
            r = statistics.median(rp) if rp else None
            gflops = 2.0 * M * K * n / i * 1e-9
            rtxt = f"{r * 1e3:10.2f} {r / i:6.2f}" if r else f"{'-':>10} {'-':>6}"
            print(f"{tname:8} {n:4d} {i * 1e3:10.2f} {g * 1e3:9.2f} {g / i:6.2f} {rtxt}  {gflops:8.1f}",
                  flush=True)


if __name__ == "__main__":
    main()
