#!/usr/bin/env python3
"""Generates the malformed-file corpus in this directory, deterministically.

Each file is broken in exactly one way. expected.tsv lists `file<TAB>substring`: reading the file
must throw one insitu::FormatError whose message names the file and contains the substring
(tests/io/malformed_test.cc). The fuzzers (scripts/fuzz.sh) also use these files as seeds.
Run from anywhere:  python3 tests/data/malformed/make_corpus.py
"""
import json
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))

# GGUF value types and ggml tensor types used below.
U8, U32, BOOL, STRING, ARRAY, U64 = 0, 4, 7, 8, 9, 10
F32, Q4_0, Q8_0 = 0, 2, 8


def u32(x):
    return struct.pack("<I", x)


def u64(x):
    return struct.pack("<Q", x)


def gstr(s):
    b = s.encode() if isinstance(s, str) else s
    return u64(len(b)) + b


def header(n_tensors, n_kv, version=3, magic=b"GGUF"):
    return magic + u32(version) + u64(n_tensors) + u64(n_kv)


def kv(key, vtype, payload):
    return gstr(key) + u32(vtype) + payload


def tinfo(name, ne, ttype, offset):
    return gstr(name) + u32(len(ne)) + b"".join(u64(d) for d in ne) + u32(ttype) + u64(offset)


def pad(b, alignment=32):
    return b + b"\0" * ((-len(b)) % alignment)


def gguf_with_tensors(infos, data_len, kvs=b"", n_kv=0):
    return pad(header(len(infos), n_kv) + kvs + b"".join(infos)) + b"\0" * data_len


def st(header_obj_or_text, data_len, header_len=None):
    text = header_obj_or_text if isinstance(header_obj_or_text, str) else json.dumps(
        header_obj_or_text, separators=(",", ":"))
    b = text.encode()
    return u64(len(b) if header_len is None else header_len) + b + b"\0" * data_len


def entry(dtype, shape, begin, end):
    return {"dtype": dtype, "shape": shape, "data_offsets": [begin, end]}


def corpus():
    c = []  # (file name, bytes, expected substring)
    # ---- GGUF
    c.append(("gguf_truncated_header.gguf", b"GGUF" + u32(3) + b"\1\0\0", "truncated"))
    c.append(("gguf_bad_magic.gguf", header(0, 0, magic=b"GGML"), "bad magic 'GGML'"))
    c.append(("gguf_version1.gguf", header(0, 0, version=1), "version 1 unsupported"))
    c.append(("gguf_version4.gguf", header(0, 0, version=4), "version 4 unsupported"))
    c.append(("gguf_huge_kv_count.gguf", header(0, 1 << 60), "metadata count 1152921504606846976"))
    c.append(("gguf_huge_tensor_count.gguf", header(1 << 62, 0), "tensor count 4611686018427387904"))
    c.append(("gguf_huge_array_count.gguf",
              header(0, 1) + kv("tokenizer.ggml.tokens", ARRAY, u32(STRING) + u64(1 << 60)),
              "array of 1152921504606846976 string elements cannot fit"))
    c.append(("gguf_string_past_eof.gguf",
              header(0, 1) + kv("general.name", STRING, u64(4096) + b"short"),
              "string length 4096 at offset"))
    c.append(("gguf_key_past_eof.gguf", header(0, 1) + u64(1 << 40) + b"k" * 40, "key length 1099511627776"))
    c.append(("gguf_bad_value_type.gguf", header(0, 1) + kv("general.name", 13, b"\0" * 8),
              "value type 13 is not a GGUF type"))
    c.append(("gguf_bad_array_elem_type.gguf", header(0, 1) + kv("a", ARRAY, u32(77) + u64(0)),
              "array element type 77"))
    c.append(("gguf_bad_bool.gguf", header(0, 1) + kv("b", BOOL, b"\x05"), "bool value 5"))
    c.append(("gguf_duplicate_key.gguf",
              header(0, 2) + kv("general.name", U8, b"\1") + kv("general.name", U8, b"\2"),
              "key 'general.name': duplicate key"))
    bomb = header(0, 1) + gstr("bomb") + u32(ARRAY) + (u32(ARRAY) + u64(1)) * 64 + u32(U8) + u64(0)
    c.append(("gguf_nested_array_bomb.gguf", bomb, "arrays nested deeper than"))
    c.append(("gguf_tensor_offset_out_of_range.gguf",
              gguf_with_tensors([tinfo("w", [8], F32, 1 << 20)], 32), "runs past the end of the 32-byte data section"))
    c.append(("gguf_tensor_offset_huge.gguf",
              gguf_with_tensors([tinfo("w", [8], F32, (1 << 64) - 32)], 32), "runs past the end"))
    c.append(("gguf_tensor_misaligned.gguf",
              gguf_with_tensors([tinfo("w", [4], F32, 8)], 64), "offset 8 is not a multiple of the alignment 32"))
    c.append(("gguf_tensor_overlap.gguf",
              gguf_with_tensors([tinfo("a", [16], F32, 0), tinfo("b", [8], F32, 32)], 96),
              "tensor 'b': data at offset 32 overlaps tensor 'a'"))
    c.append(("gguf_unknown_tensor_type.gguf",
              gguf_with_tensors([tinfo("w", [32], 4, 0)], 32), "tensor 'w': type 4 unsupported"))
    c.append(("gguf_tensor_type_large.gguf",
              gguf_with_tensors([tinfo("w", [32], 0xFFFFFFFF, 0)], 32), "type 4294967295 unsupported"))
    c.append(("gguf_ne0_not_block_multiple.gguf",
              gguf_with_tensors([tinfo("w", [33, 2], Q4_0, 0)], 64), "ne[0]=33 is not a multiple"))
    c.append(("gguf_element_count_overflow.gguf",
              gguf_with_tensors([tinfo("w", [1 << 32, 1 << 32], F32, 0)], 32), "element count overflows"))
    c.append(("gguf_byte_size_overflow.gguf",
              gguf_with_tensors([tinfo("w", [1 << 62], F32, 0)], 32), "overflows"))
    c.append(("gguf_negative_dim.gguf",
              gguf_with_tensors([tinfo("w", [4, (1 << 64) - 1], F32, 0)], 32), "is negative (-1)"))
    c.append(("gguf_too_many_dims.gguf",
              gguf_with_tensors([tinfo("w", [1, 1, 1, 1, 1], F32, 0)], 32), "n_dims 5 exceeds"))
    c.append(("gguf_long_tensor_name.gguf",
              gguf_with_tensors([tinfo("n" * 100, [4], F32, 0)], 32), "tensor name length 100 exceeds"))
    c.append(("gguf_bad_alignment.gguf",
              gguf_with_tensors([tinfo("w", [4], F32, 0)], 48, kv("general.alignment", U32, u32(48)), 1),
              "alignment 48 is not a power of two"))
    c.append(("gguf_alignment_zero.gguf", header(0, 1) + kv("general.alignment", U32, u32(0)),
              "alignment 0 is not a power of two"))
    c.append(("gguf_alignment_string.gguf", header(0, 1) + kv("general.alignment", STRING, gstr("32")),
              "general.alignment': expected an unsigned integer, got string"))
    c.append(("gguf_missing_data_section.gguf",
              header(1, 0) + tinfo("w", [4], F32, 0), "data section"))
    # ---- safetensors
    c.append(("st_truncated.safetensors", b"\x10\0\0", "truncated"))
    c.append(("st_header_len_past_eof.safetensors", st("{}", 0, header_len=4096),
              "length 4096 runs past the end"))
    c.append(("st_header_too_large.safetensors", st("{}", 0, header_len=1 << 62),
              "length 4611686018427387904 exceeds the limit"))
    c.append(("st_not_object.safetensors", st("[1]", 0), "does not start with a JSON object"))
    c.append(("st_invalid_json.safetensors", st('{"a":{"dtype":"F32",}}', 0), "invalid JSON"))
    c.append(("st_duplicate_tensor.safetensors",
              st('{"a":' + json.dumps(entry("U8", [1], 0, 1)) + ',"a":' + json.dumps(entry("U8", [1], 1, 2)) + "}", 2),
              "duplicate key 'a'"))
    c.append(("st_offsets_out_of_range.safetensors", st({"w": entry("F32", [4], 0, 16)}, 8),
              "tensor 'w': data_offsets [0, 16] run past the end of the 8-byte data section"))
    c.append(("st_offsets_reversed.safetensors", st({"w": entry("F32", [1], 4, 0)}, 8),
              "are out of order"))
    c.append(("st_offsets_huge.safetensors", st({"w": entry("F32", [1], (1 << 64) - 1, (1 << 64) - 1)}, 8),
              "run past the end"))
    c.append(("st_size_mismatch.safetensors", st({"w": entry("F16", [2, 3], 0, 8)}, 16),
              "span 8 bytes but shape [2, 3] of F16 needs 12"))
    c.append(("st_unknown_dtype.safetensors", st({"w": entry("Q4_K", [4], 0, 4)}, 4),
              "dtype 'Q4_K' unsupported"))
    c.append(("st_negative_dim.safetensors", st({"w": entry("F32", [-1], 0, 4)}, 4),
              "dimension -1 is not a non-negative integer"))
    c.append(("st_element_overflow.safetensors",
              st({"w": entry("F32", [1 << 32, 1 << 32], 0, 4)}, 4), "element count of the shape overflows"))
    c.append(("st_overlap.safetensors",
              st({"a": entry("F32", [2], 0, 8), "b": entry("F32", [2], 4, 12)}, 12),
              "tensor 'b': data_offsets [4, 12] overlap tensor 'a'"))
    c.append(("st_bad_metadata.safetensors", st({"__metadata__": {"format": 1}}, 0),
              "__metadata__ key 'format': expected a string, got integer"))
    c.append(("st_missing_dtype.safetensors", st({"w": {"shape": [1], "data_offsets": [0, 4]}}, 4),
              "missing field 'dtype'"))
    # ---- JSON configs
    c.append(("json_syntax_error.json", b'{\n  "hidden_size": 576,\n  "vocab_size" 49152\n}\n',
              "line 3, column 20: syntax error"))
    c.append(("json_truncated.json", b'{"hidden_size": [1, 2', "json: "))
    return c


def main():
    rows = []
    for name, data, expected in corpus():
        with open(os.path.join(HERE, name), "wb") as f:
            f.write(data)
        rows.append(f"{name}\t{expected}\n")
    with open(os.path.join(HERE, "expected.tsv"), "w") as f:
        f.write("# file<TAB>substring the single FormatError must contain (generated by make_corpus.py)\n")
        f.writelines(rows)


if __name__ == "__main__":
    main()
