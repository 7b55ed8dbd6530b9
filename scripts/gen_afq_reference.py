#!/usr/bin/env python3
"""Writes tests/data/reference/afq_mlx.bin: MLX's own mx.quantize output (affine mode) for a
deterministic bf16 matrix, every AFQ bit width (2 3 4 6 8) and group size (32 64 128).

tests/quant/afq_test.cc quantizes the same bf16 input with insitu's AFQ types, converts the
blocks to MLX's layout (afq_to_mlx) and requires identical bytes.

Needs `pip install mlx[cpu]` (Linux CPU wheel; MLX 0.32 was used for the committed file). Run from
the repository root:  python3 scripts/gen_afq_reference.py

File layout (little-endian):
  8 bytes  magic "AFQREF1\\0"
  u32 rows, u32 cols
  u16 input[rows * cols]            bf16 bits
  u32 n_cases, then per case:
    u32 bits, u32 group
    u8  w_q[rows * cols * bits / 8]   the bytes of MLX's uint32 w_q [rows, cols * bits / 32]
    u16 scales[rows * cols / group]   bf16 bits
    u16 biases[rows * cols / group]   bf16 bits
"""
import struct
import sys

import numpy as np

try:
    import mlx.core as mx
except ImportError:
    sys.exit("gen_afq_reference.py: needs MLX (pip install 'mlx[cpu]')")

ROWS, COLS = 12, 384  # 384 is a multiple of every group size
OUT = "tests/data/reference/afq_mlx.bin"


def matrix() -> np.ndarray:
    rng = np.random.default_rng(20240611)
    x = np.zeros((ROWS, COLS), dtype=np.float32)
    x[0] = rng.normal(0.0, 0.02, COLS)
    x[1] = rng.normal(0.0, 0.02, COLS) * np.where(rng.random(COLS) < 0.03, 40.0, 1.0)
    # all-zero groups, a positive and a negative constant group
    x[2, :128] = 0.0
    x[2, 128:256] = 0.5
    x[2, 256:] = -0.25
    x[3] = rng.uniform(0.1, 1.0, COLS)            # all positive
    x[4] = rng.uniform(-1.0, -0.1, COLS)          # all negative
    x[5] = np.tile(np.linspace(-1.0, 1.0, 32), COLS // 32)  # |min| == |max|, halfway cases
    x[6] = rng.normal(0.0, 1e-8, COLS)            # range below the 1e-7 scale floor
    x[7] = rng.normal(0.0, 1e3, COLS)             # large magnitudes
    x[8] = 0.125                                  # constant with one outlier per 32
    x[8, ::32] = -3.0
    x[9] = np.tile(np.arange(16, dtype=np.float32), COLS // 16)  # exactly representable grid
    x[10] = rng.normal(0.0, 1.0, COLS)
    x[11] = rng.standard_t(2.0, COLS) * 0.05      # heavy tails
    return x


def bf16_bits(a) -> np.ndarray:
    return np.array(a.view(mx.uint16)).astype("<u2")


def main() -> None:
    w = mx.array(matrix()).astype(mx.bfloat16)
    cases = []
    for group in (32, 64, 128):
        for bits in (2, 3, 4, 6, 8):
            w_q, scales, biases = mx.quantize(w, group_size=group, bits=bits, mode="affine")
            mx.eval(w_q, scales, biases)
            wq = np.array(w_q).astype("<u4").tobytes()
            assert len(wq) == ROWS * COLS * bits // 8, (bits, group, len(wq))
            sc, bi = bf16_bits(scales).tobytes(), bf16_bits(biases).tobytes()
            cases.append((bits, group, wq, sc, bi))
    with open(OUT, "wb") as f:
        f.write(b"AFQREF1\0")
        f.write(struct.pack("<II", ROWS, COLS))
        f.write(bf16_bits(w).tobytes())
        f.write(struct.pack("<I", len(cases)))
        for bits, group, wq, sc, bi in cases:
            f.write(struct.pack("<II", bits, group))
            f.write(wq)
            f.write(sc)
            f.write(bi)
    print(f"wrote {OUT}: {len(cases)} cases, mlx {mx.__version__}")


if __name__ == "__main__":
    main()
