#!/usr/bin/env python3
"""Writes tests/data/quant/iq1_m_split_rounding.bin: rows where IQ1_M's split search rounding matters.

ggml d99724f2 searched IQ1_M's three-level splits with direct sums; the llama.cpp vendored in
llama-cpp-python 0.3.36 uses per-half prefix sums. Both give ggml's golden bytes, but they round
differently on rare rows. insitu follows the installed llama.cpp; this fixture pins that with rows
on which the two disagree, quantized (no imatrix) by the installed libggml-base itself.

The rows are 59, 909 and 916 of a 4096 x 256 N(0, 0.02^2) matrix drawn with numpy's
default_rng(2026): found by comparing both algorithms over the whole matrix (6 of 4096 rows differ).

File layout (little-endian): u32 nrows, u32 n_per_row, nrows*n_per_row f32 inputs, then the
ggml IQ1_M bytes (nrows * n_per_row / 256 blocks of 56 bytes).

Usage: scripts/gen_iq1m_fixture.py   (needs numpy and the llama_cpp package)
"""
import ctypes
import os
import struct

import numpy as np

import llama_cpp

ROWS = [59, 909, 916]
GGML_TYPE_IQ1_M = 29


def main():
    libdir = os.path.join(os.path.dirname(llama_cpp.__file__), "lib")
    lib = ctypes.CDLL(os.path.join(libdir, "libggml-base.so"))
    lib.ggml_quantize_chunk.restype = ctypes.c_size_t
    lib.ggml_quantize_chunk.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p,
                                        ctypes.c_int64, ctypes.c_int64, ctypes.c_int64,
                                        ctypes.c_void_p]
    x = np.random.default_rng(2026).normal(0, 0.02, (4096, 256)).astype(np.float32)
    rows = np.ascontiguousarray(x[ROWS])
    out = np.zeros(len(ROWS) * 56, np.uint8)
    n = lib.ggml_quantize_chunk(GGML_TYPE_IQ1_M, rows.ctypes.data, out.ctypes.data, 0, len(ROWS),
                                256, None)
    assert n == out.size
    here = os.path.dirname(os.path.abspath(__file__))
    path = os.path.join(here, "..", "tests", "data", "quant", "iq1_m_split_rounding.bin")
    with open(path, "wb") as f:
        f.write(struct.pack("<II", len(ROWS), 256))
        f.write(rows.astype("<f4").tobytes())
        f.write(out.tobytes())


if __name__ == "__main__":
    main()
