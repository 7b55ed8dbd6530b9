#!/usr/bin/env python3
"""Writes a synthetic Hugging Face checkpoint directory (random weights) for benchmarks and tests.

  make_synthetic_checkpoint.py --arch llama --size-gb 4.2 --tokenizer-from SMOLLM2_DIR -o DIR
  make_synthetic_checkpoint.py --arch mixtral --tokenizer-from SMOLLM2_DIR -o DIR

The directory holds config.json, BF16 safetensors (sharded, with model.safetensors.index.json, when
larger than --shard-gb), generation_config.json and the tokenizer files copied from
--tokenizer-from (a directory made by `insitu convert`, e.g. from SmolLM2: vocabulary 49152), so
`insitu run -m DIR` tokenizes real text. The text it produces is garbage; the point is the shape.

Tensors are generated and written one at a time, in slices, so the script needs little memory
whatever the size. Output is deterministic for a given --seed.

Values:
  llama   -- normal * 0.02 (embeddings and head: * 0.05), with a few outlier input columns (0.5%
             of columns scaled by 8) in every linear weight, as trained LLMs have; norms near 1.
  mixtral -- "exact" values that C++ tests regenerate bit for bit (tests/model/moe_test.cc): for
             tensor NAME, element i (row-major), z = splitmix64(fnv1a64(NAME) ^ seed*GOLDEN +
             i*GOLDEN) and value = (int(z >> 56) - 128) * 2^-s, s per tensor kind (see SCALES);
             norms = 1 + ((int(z >> 56) - 128) >> 2) / 128. Every value is exact in BF16.
Only numpy is needed.
"""
import argparse
import json
import os
import shutil
import struct
import sys

import numpy as np

GOLDEN = 0x9E3779B97F4A7C15
M64 = (1 << 64) - 1
TOKENIZER_FILES = ["tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
                   "chat_template.jinja", "vocab.json", "merges.txt"]
# mixtral "exact" values: scale exponent by HF name suffix (value = int8 * 2^-s).
SCALES = [("embed_tokens.weight", 7), ("lm_head.weight", 8), ("block_sparse_moe.gate.weight", 7),
          (".w2.weight", 10), (".w1.weight", 9), (".w3.weight", 9), ("_proj.weight", 9)]


def fnv1a64(text):
    h = 0xCBF29CE484222325
    for b in text.encode("utf-8"):
        h = ((h ^ b) * 0x100000001B3) & M64
    return h


def splitmix64(x):
    """x: uint64 array; wraps modulo 2^64."""
    with np.errstate(over="ignore"):
        z = x + np.uint64(GOLDEN)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))


def exact_values(name, seed, begin, end):
    """float32 values [begin, end) of tensor `name` in the exact scheme."""
    key = np.uint64(fnv1a64(name) ^ ((seed * GOLDEN) & M64))
    with np.errstate(over="ignore"):
        idx = np.arange(begin, end, dtype=np.uint64) * np.uint64(GOLDEN) + key
    q = (splitmix64(idx) >> np.uint64(56)).astype(np.int32) - 128
    if name.endswith("norm.weight"):
        return (1.0 + (q >> 2).astype(np.float32) / 128.0).astype(np.float32)
    for suffix, s in SCALES:
        if name.endswith(suffix):
            return (q.astype(np.float32) * np.float32(2.0 ** -s)).astype(np.float32)
    raise ValueError(f"no scale for {name}")


def to_bf16(x):
    """float32 -> bf16 bits (round to nearest even), as uint16."""
    b = np.ascontiguousarray(x, dtype=np.float32).view(np.uint32)
    with np.errstate(over="ignore"):
        r = (b + np.uint32(0x7FFF) + ((b >> np.uint32(16)) & np.uint32(1))) >> np.uint32(16)
    return r.astype(np.uint16)


def tensor_list(a):
    """(HF name, shape) in the order transformers saves them."""
    H, F, V, L = a.hidden, a.ff, a.vocab, a.layers
    hd = a.head_dim
    out = [("model.embed_tokens.weight", (V, H))]
    for i in range(L):
        p = f"model.layers.{i}."
        out += [(p + "input_layernorm.weight", (H,)),
                (p + "self_attn.q_proj.weight", (a.heads * hd, H)),
                (p + "self_attn.k_proj.weight", (a.kv_heads * hd, H)),
                (p + "self_attn.v_proj.weight", (a.kv_heads * hd, H)),
                (p + "self_attn.o_proj.weight", (H, a.heads * hd)),
                (p + "post_attention_layernorm.weight", (H,))]
        if a.arch == "mixtral":
            out.append((p + "block_sparse_moe.gate.weight", (a.experts, H)))
            for e in range(a.experts):
                q = f"{p}block_sparse_moe.experts.{e}."
                out += [(q + "w1.weight", (F, H)), (q + "w2.weight", (H, F)),
                        (q + "w3.weight", (F, H))]
        else:
            out += [(p + "mlp.gate_proj.weight", (F, H)), (p + "mlp.up_proj.weight", (F, H)),
                    (p + "mlp.down_proj.weight", (H, F))]
    out += [("model.norm.weight", (H,)), ("lm_head.weight", (V, H))]
    return out


def numel(shape):
    n = 1
    for d in shape:
        n *= d
    return n


class NormalSource:
    """llama values: one seeded generator per tensor, rows generated in slices."""

    def __init__(self, seed):
        self.seed = seed

    def slices(self, index, name, shape, step):
        rng = np.random.default_rng([self.seed, index])
        n = numel(shape)
        if len(shape) == 1:
            yield (1.0 + 0.02 * rng.standard_normal(n, dtype=np.float32)).astype(np.float32)
            return
        rows, cols = shape
        std = 0.05 if ("embed_tokens" in name or "lm_head" in name) else 0.02
        col_scale = np.ones(cols, dtype=np.float32)
        if "embed_tokens" not in name:
            outliers = rng.choice(cols, size=max(1, cols // 200), replace=False)
            col_scale[outliers] = 8.0
        step_rows = max(1, step // cols)
        for r in range(0, rows, step_rows):
            nr = min(step_rows, rows - r)
            x = rng.standard_normal((nr, cols), dtype=np.float32) * np.float32(std)
            yield (x * col_scale).reshape(-1)


class ExactSource:
    def __init__(self, seed):
        self.seed = seed

    def slices(self, index, name, shape, step):
        n = numel(shape)
        for b in range(0, n, step):
            yield exact_values(name, self.seed, b, min(n, b + step))


def write_shards(out_dir, tensors, source, shard_bytes):
    # Plan shards (a tensor never splits), then write each: header, then tensors slice by slice.
    shards, cur, cur_bytes = [], [], 0
    for name, shape in tensors:
        nb = numel(shape) * 2
        if cur and cur_bytes + nb > shard_bytes:
            shards.append(cur)
            cur, cur_bytes = [], 0
        cur.append((name, shape))
        cur_bytes += nb
    shards.append(cur)
    index = {n: i for i, (n, _) in enumerate(tensors)}
    weight_map, total = {}, 0
    names = (["model.safetensors"] if len(shards) == 1 else
             [f"model-{i + 1:05d}-of-{len(shards):05d}.safetensors" for i in range(len(shards))])
    for fname, shard in zip(names, shards):
        header, off = {"__metadata__": {"format": "pt"}}, 0
        for name, shape in shard:
            nb = numel(shape) * 2
            header[name] = {"dtype": "BF16", "shape": list(shape), "data_offsets": [off, off + nb]}
            off += nb
            weight_map[name] = fname
        hj = json.dumps(header, separators=(",", ":")).encode("utf-8")
        hj += b" " * ((8 - len(hj) % 8) % 8)
        path = os.path.join(out_dir, fname)
        with open(path + ".tmp", "wb") as f:
            f.write(struct.pack("<Q", len(hj)))
            f.write(hj)
            for name, shape in shard:
                for chunk in source.slices(index[name], name, shape, 1 << 24):
                    f.write(to_bf16(chunk).tobytes())
        os.replace(path + ".tmp", path)
        total += off
        print(f"{fname}: {len(shard)} tensors, {off / 1e9:.2f} GB", file=sys.stderr)
    if len(shards) > 1:
        with open(os.path.join(out_dir, "model.safetensors.index.json"), "w") as f:
            json.dump({"metadata": {"total_size": total}, "weight_map": weight_map}, f, indent=1)
    return total


def vocab_size(tok_dir):
    with open(os.path.join(tok_dir, "tokenizer.json"), encoding="utf-8") as f:
        tok = json.load(f)
    ids = list(tok["model"]["vocab"].values()) + [t["id"] for t in tok.get("added_tokens", [])]
    return max(ids) + 1


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--arch", choices=["llama", "mixtral"], required=True)
    ap.add_argument("-o", "--output", required=True)
    ap.add_argument("--tokenizer-from", required=True,
                    help="directory with tokenizer.json (e.g. `insitu convert` of SmolLM2)")
    ap.add_argument("--size-gb", type=float, default=0,
                    help="llama: choose the layer count to reach about this many GB")
    ap.add_argument("--hidden", type=int, default=0)
    ap.add_argument("--layers", type=int, default=0)
    ap.add_argument("--ff", type=int, default=0)
    ap.add_argument("--heads", type=int, default=0)
    ap.add_argument("--kv-heads", type=int, default=0)
    ap.add_argument("--experts", type=int, default=8)
    ap.add_argument("--experts-per-tok", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--shard-gb", type=float, default=2.0)
    a = ap.parse_args()

    a.vocab = vocab_size(a.tokenizer_from)
    mixtral = a.arch == "mixtral"
    a.hidden = a.hidden or (512 if mixtral else 2560)
    a.heads = a.heads or max(1, a.hidden // (64 if mixtral else 128))
    a.kv_heads = a.kv_heads or max(1, a.heads // 2 if mixtral else a.heads // 5 or 1)
    a.ff = a.ff or (2 * a.hidden if mixtral else (a.hidden * 27 // 10 + 255) // 256 * 256)
    if a.hidden % a.heads or a.heads % a.kv_heads:
        sys.exit("hidden must split into heads, heads into kv heads")
    a.head_dim = a.hidden // a.heads
    if not a.layers:
        if mixtral:
            a.layers = 4
        else:
            target = (a.size_gb or 4.2) * 1e9 / 2
            emb = 2 * a.vocab * a.hidden
            a.layers = 1
            a.layers = max(1, round((target - emb) / (numel_all(a) - emb)))
    os.makedirs(a.output, exist_ok=True)
    if os.listdir(a.output):
        sys.exit(f"{a.output}: not empty")

    config = {
        "architectures": ["MixtralForCausalLM" if mixtral else "LlamaForCausalLM"],
        "model_type": a.arch,
        "vocab_size": a.vocab,
        "hidden_size": a.hidden,
        "intermediate_size": a.ff,
        "num_hidden_layers": a.layers,
        "num_attention_heads": a.heads,
        "num_key_value_heads": a.kv_heads,
        "head_dim": a.head_dim,
        "max_position_embeddings": 4096,
        "rms_norm_eps": 1e-5,
        "rope_theta": 1000000.0 if mixtral else 10000.0,
        "tie_word_embeddings": False,
        "hidden_act": "silu",
        "torch_dtype": "bfloat16",
        "bos_token_id": 1,
        "eos_token_id": 2,
    }
    if mixtral:
        config.update({"num_local_experts": a.experts, "num_experts_per_tok": a.experts_per_tok,
                       "sliding_window": None, "router_aux_loss_coef": 0.02})
    with open(os.path.join(a.output, "config.json"), "w") as f:
        json.dump(config, f, indent=1)
    with open(os.path.join(a.output, "generation_config.json"), "w") as f:
        json.dump({"_from_model_config": True, "bos_token_id": 1, "eos_token_id": 2}, f, indent=1)
    for name in TOKENIZER_FILES:
        src = os.path.join(a.tokenizer_from, name)
        if os.path.exists(src):
            shutil.copyfile(src, os.path.join(a.output, name))

    tensors = tensor_list(a)
    source = ExactSource(a.seed) if mixtral else NormalSource(a.seed)
    total = write_shards(a.output, tensors, source, int(a.shard_gb * 1e9))
    print(f"{a.output}: {a.arch}, {a.layers} layers, hidden {a.hidden}, ff {a.ff}, "
          f"{sum(numel(s) for _, s in tensors) / 1e9:.3f} B parameters, {total / 1e9:.2f} GB",
          file=sys.stderr)


def numel_all(a):
    return sum(numel(s) for _, s in tensor_list(a))


if __name__ == "__main__":
    main()
