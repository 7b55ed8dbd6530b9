#!/usr/bin/env python3
"""Writes tests/data/io/reference.safetensors with the reference `safetensors` package (numpy API).

tests/io/safetensors_test.cc reads it (dtypes, shapes, values, metadata) and requires insitu's
writer to reproduce it byte for byte when given the same tensors in the same order.
Deterministic. Needs `pip install safetensors numpy`.
  python3 tests/data/io/make_safetensors_reference.py tests/data/io/reference.safetensors
"""
import sys

import numpy as np
from safetensors.numpy import save_file


def main(out_path):
    tensors = {
        "b.bool": np.array([True, False, True]),
        "u8": np.arange(5, dtype=np.uint8),
        "i8": np.array([-1, 2], dtype=np.int8),
        "i16": np.array([-300, 300], dtype=np.int16),
        "u16": np.array([1, 65535], dtype=np.uint16),
        "f16": np.array([[0.5, 1.5], [2, 3]], dtype=np.float16),
        "i32": np.array([-7], dtype=np.int32),
        "u32": np.array([7], dtype=np.uint32),
        "f32": np.arange(6, dtype=np.float32).reshape(2, 3),
        "f64": np.array([0.25], dtype=np.float64),
        "i64": np.array([-(1 << 40)], dtype=np.int64),
        "u64": np.array([1 << 63], dtype=np.uint64),
        "empty": np.zeros((0, 4), dtype=np.float32),
        "scalar": np.array(3.5, dtype=np.float32),
    }
    save_file(tensors, out_path, metadata={"format": "pt", "note": "x"})


if __name__ == "__main__":
    main(sys.argv[1])
