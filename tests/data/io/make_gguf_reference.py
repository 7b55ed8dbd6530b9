#!/usr/bin/env python3
"""Dumps what the Python `gguf` package (an independent reader) sees in a GGUF file, as JSON lines.

tests/io/gguf_test.cc compares insitu's reader against these dumps for the two shipped models.
Regenerate with:
  python3 tests/data/io/make_gguf_reference.py ~/.cache/insitu/models/SmolLM2-135M-Instruct.Q4_1.gguf \
      > tests/data/io/smollm2.gguf-ref.jsonl
"""
import json
import sys

import gguf


def scalar(field, part_index):
    v = field.parts[part_index]
    if field.types[-1] == gguf.GGUFValueType.STRING:
        return bytes(v).decode("utf-8", errors="surrogateescape")
    x = v.tolist()[0]
    return bool(x) if field.types[-1] == gguf.GGUFValueType.BOOL else x


def main(path):
    r = gguf.GGUFReader(path)
    out = sys.stdout
    out.write(json.dumps({"header": True, "version": int(r.fields["GGUF.version"].parts[-1][0]),
                          "alignment": r.alignment, "data_offset": r.data_offset,
                          "n_tensors": len(r.tensors)}) + "\n")
    for key, f in r.fields.items():
        if key.startswith("GGUF."):
            continue
        rec = {"key": key, "type": int(f.types[0])}
        if f.types[0] == gguf.GGUFValueType.ARRAY:
            rec["elem"] = int(f.types[1])
            rec["count"] = len(f.data)
            if f.data:
                rec["first"] = scalar(f, f.data[0])
                rec["last"] = scalar(f, f.data[-1])
        else:
            rec["value"] = scalar(f, f.data[0])
        out.write(json.dumps(rec) + "\n")
    for t in r.tensors:
        out.write(json.dumps({"tensor": t.name, "type": int(t.tensor_type),
                              "ne": [int(x) for x in t.shape],
                              "offset": int(t.data_offset - r.data_offset),
                              "nbytes": int(t.n_bytes)}) + "\n")


if __name__ == "__main__":
    main(sys.argv[1])
