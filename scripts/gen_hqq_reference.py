#!/usr/bin/env python3
"""Writes tests/data/reference/hqq_ref.bin: HQQ quantization (mistral.rs's HqqLayer::quantize with
its ISQ settings, axis 1, group 64, 10 proximal steps; mistralrs-quant/src/hqq/{quantize,
optimize}.rs) of a deterministic matrix, computed independently in numpy float32 with the early
stop evaluated per group as insitu does.

tests/quant/hqq_test.cc compares insitu's hqq2/3/4/8 blocks with it: scales exactly, zeros to
float rounding (numpy's float32 exp/log differ from libm in the last bit) and q except where w*s+z
sits on a rounding boundary.

Run from the repository root:  python3 scripts/gen_hqq_reference.py

File layout (little-endian):
  8 bytes magic "HQQREF1\\0"; u32 rows, u32 cols; f32 input[rows * cols]
  u32 n_cases; per case: u32 bits, then per group (row-major, 64 elements each):
    f32 scale, f32 zero, u8 q[64]
"""
import struct

import numpy as np

ROWS, COLS, GROUP = 8, 256, 64
OUT = "tests/data/reference/hqq_ref.bin"
F = np.float32


def matrix() -> np.ndarray:
    rng = np.random.default_rng(77)
    x = np.zeros((ROWS, COLS), dtype=F)
    x[0] = rng.normal(0.0, 0.02, COLS)
    x[1] = rng.normal(0.0, 0.02, COLS) * np.where(rng.random(COLS) < 0.03, 40.0, 1.0)
    x[2, :64] = 0.0          # all zero
    x[2, 64:128] = 0.75      # constant: max == min
    x[2, 128:] = rng.normal(0.0, 1.0, 128)
    x[3] = rng.uniform(0.1, 1.0, COLS)
    x[4] = rng.uniform(-1.0, -0.1, COLS)
    x[5] = rng.normal(0.0, 1e3, COLS)
    x[6] = rng.standard_t(2.0, COLS) * 0.05
    x[7] = rng.normal(0.5, 0.01, COLS)
    return x


def round_away(v: np.ndarray) -> np.ndarray:
    """Rust's f32::round (half away from zero), exactly: v - trunc(v) is exact in float32."""
    t = np.trunc(v)
    return np.where(np.abs(v - t) >= F(0.5), t + np.sign(v), t).astype(F)


def quantize_group(w: np.ndarray, bits: int):
    max_v = F(2**bits - 1)
    mn, mx = F(w.min()), F(w.max())
    with np.errstate(divide="ignore"):
        s = np.clip(F(max_v / F(mx - mn)), F(0), F(2e4)).astype(F)
    z = F(-mn * s)
    beta, best = 10.0, F(1e4)
    for _ in range(10):
        wq = np.clip(round_away((w * s).astype(F) + z), F(0), max_v).astype(F)
        wr = ((wq - z) / s).astype(F)
        e = (w - wr).astype(F)
        ae = np.abs(e)
        with np.errstate(divide="ignore"):
            powv = np.exp(np.log(ae) * F(-0.3)).astype(F)
        r = (ae - F(1.0 / beta) * powv).astype(F)
        we = np.where(r > 0, np.where(e > 0, r, -r), F(0)).astype(F)
        z = F(np.cumsum((wq - (w - we) * s).astype(F), dtype=F)[-1] / F(GROUP))
        beta *= 1.01
        err = F(np.cumsum(np.abs(w - wr).astype(F), dtype=F)[-1] / F(GROUP))
        if err < best:
            best = err
        else:
            break
    q = np.clip(round_away((w * s).astype(F) + z), F(0), max_v).astype(np.uint8)
    return F(F(1.0) / s), z, q


def main() -> None:
    x = matrix()
    groups = x.reshape(-1, GROUP)
    with open(OUT, "wb") as f:
        f.write(b"HQQREF1\0")
        f.write(struct.pack("<II", ROWS, COLS))
        f.write(x.astype("<f4").tobytes())
        f.write(struct.pack("<I", 4))
        for bits in (2, 3, 4, 8):
            f.write(struct.pack("<I", bits))
            for g in groups:
                scale, zero, q = quantize_group(g, bits)
                f.write(struct.pack("<ff", scale, zero))
                f.write(q.tobytes())
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
