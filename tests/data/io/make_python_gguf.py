#!/usr/bin/env python3
"""Writes tests/data/io/python_writer.gguf with the Python `gguf` package's GGUFWriter.

tests/io/gguf_writer_test.cc writes the same metadata and tensors with insitu's GgufWriter and
requires the two files to be byte-identical, which shows our layout (order, padding, offsets) is
the one the reference tooling produces and reads. Deterministic: re-running gives the same bytes.
  python3 tests/data/io/make_python_gguf.py tests/data/io/python_writer.gguf
"""
import sys

import numpy as np
import gguf


def main(out_path):
    w = gguf.GGUFWriter(out_path, arch="llama")  # writes general.architecture first
    w.add_uint8("t.u8", 200)
    w.add_int8("t.i8", -5)
    w.add_uint16("t.u16", 65000)
    w.add_int16("t.i16", -30000)
    w.add_uint32("t.u32", 4000000000)
    w.add_int32("t.i32", -2000000000)
    w.add_float32("t.f32", 1.5)
    w.add_bool("t.bool", True)
    w.add_string("t.string", "héllo")
    w.add_uint64("t.u64", 1 << 63)
    w.add_int64("t.i64", -(1 << 62))
    w.add_float64("t.f64", -0.25)
    w.add_array("t.strings", ["x", "", "yz"])
    w.add_key_value("t.i32s", [1, -2, 3], gguf.GGUFValueType.ARRAY, sub_type=gguf.GGUFValueType.INT32)

    w.add_tensor("v", np.array([1.0, 2.0, 3.0], dtype=np.float32))
    q8 = np.arange(68, dtype=np.uint8)  # two q8_0 blocks of 34 bytes: ne = [32, 2]
    w.add_tensor("w", q8, raw_shape=(2, 34), raw_dtype=gguf.GGMLQuantizationType.Q8_0)
    w.add_tensor("h", np.arange(15, dtype=np.float16).reshape(3, 5))

    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


if __name__ == "__main__":
    main(sys.argv[1])
