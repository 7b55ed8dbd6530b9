#!/usr/bin/env python3
"""Hostile model inputs, and a check that the CLI refuses each one cleanly.

  gen_hostile_inputs.py OUT_DIR                 writes the corpus and OUT_DIR/manifest.json
  gen_hostile_inputs.py --check BIN [OUT_DIR]   writes it (to a temporary directory by default)
                                                and runs BIN (the built `insitu`) on every case

Each case is a file or a Hugging Face-style directory made to hurt a reader: huge counts and ids,
deep nesting, quadratic-sized headers, FIFOs and devices in place of files, wrong JSON types,
inconsistent checkpoints, terminal escapes in metadata. Under --check every case runs with a time
limit and an address-space limit (RLIMIT_AS) and must end with a non-zero exit (no signal, no
timeout) and exactly one error line, "insitu: error: ...", naming the file; an "internal error"
fails. Cases marked "ok" must instead succeed and print no control characters. Standard library
only; the seeds from tests/data/malformed are included.
"""
import concurrent.futures
import json
import os
import resource
import shutil
import struct
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TIME_LIMIT_S = 30
ADDRESS_SPACE = 4 << 30

# ---- writers -------------------------------------------------------------------------------


def u32(x):
    return struct.pack("<I", x)


def u64(x):
    return struct.pack("<Q", x)


def gstr(s):
    b = s.encode() if isinstance(s, str) else s
    return u64(len(b)) + b


def gguf(kvs, tensors=b"", n_tensors=0):
    """kvs: list of (key, type, payload bytes)."""
    out = b"GGUF" + u32(3) + u64(n_tensors) + u64(len(kvs))
    for key, vtype, payload in kvs:
        out += gstr(key) + u32(vtype) + payload
    return out + tensors


STRING, ARRAY, U32 = 8, 9, 4


def safetensors(entries, data=b"", pad=True):
    header = json.dumps(entries, separators=(",", ":")).encode()
    if pad:
        header += b" " * (-len(header) % 8)
    return u64(len(header)) + header + data


def write(path, data):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())


def fifo(path):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    os.mkfifo(path)


def devzero(path):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    os.symlink("/dev/zero", path)


# A tiny Llama: 2 layers, hidden 8, 2 heads, vocab 16 (all F32).
CONFIG = {
    "architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 8,
    "intermediate_size": 16, "num_attention_heads": 2, "num_key_value_heads": 2,
    "num_hidden_layers": 2, "vocab_size": 16, "rms_norm_eps": 1e-5, "max_position_embeddings": 64,
    "tie_word_embeddings": True, "bos_token_id": 0, "eos_token_id": 1,
}


def tiny_tensors(n_layer, hidden=8, inter=16, vocab=16):
    shapes = {"model.embed_tokens.weight": [vocab, hidden], "model.norm.weight": [hidden]}
    for i in range(n_layer):
        p = f"model.layers.{i}."
        shapes.update({
            p + "input_layernorm.weight": [hidden], p + "post_attention_layernorm.weight": [hidden],
            p + "self_attn.q_proj.weight": [hidden, hidden],
            p + "self_attn.k_proj.weight": [hidden, hidden],
            p + "self_attn.v_proj.weight": [hidden, hidden],
            p + "self_attn.o_proj.weight": [hidden, hidden],
            p + "mlp.gate_proj.weight": [inter, hidden], p + "mlp.up_proj.weight": [inter, hidden],
            p + "mlp.down_proj.weight": [hidden, inter],
        })
    entries, at = {}, 0
    for name, shape in shapes.items():
        n = 4
        for d in shape:
            n *= d
        entries[name] = {"dtype": "F32", "shape": shape, "data_offsets": [at, at + n]}
        at += n
    return safetensors(entries, struct.pack("<f", 0.01) * (at // 4))


def tokenizer_json(**over):
    vocab = {chr(ord("a") + i): i for i in range(15)}
    vocab["ab"] = 15
    tj = {
        "version": "1.0", "added_tokens": [],
        "normalizer": None,
        "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": False, "use_regex": True},
        "post_processor": None, "decoder": {"type": "ByteLevel"},
        "model": {"type": "BPE", "vocab": vocab, "merges": ["a b"]},
    }
    tj.update(over)
    return json.dumps(tj)


def hf_dir(path, config=None, tokenizer=None, weights=None):
    write(os.path.join(path, "config.json"), json.dumps(CONFIG if config is None else config)
          if not isinstance(config, (str, bytes)) else config)
    write(os.path.join(path, "tokenizer.json"), tokenizer_json() if tokenizer is None else tokenizer)
    write(os.path.join(path, "model.safetensors"), tiny_tensors(2) if weights is None else weights)


def nested(open_s, close_s, depth, inner="1"):
    return open_s * depth + inner + close_s * depth


# ---- the corpus ----------------------------------------------------------------------------


def build(out):
    """Writes the cases; returns [{name, args, names, expect}] (args: CLI arguments)."""
    cases = []

    def case(name, args, target, expect="error"):
        cases.append({"name": name, "args": args, "names": target, "expect": expect})

    # Seeds: the malformed-file corpus, through inspect.
    seed_dir = os.path.join(ROOT, "tests", "data", "malformed")
    for f in sorted(os.listdir(seed_dir)):
        if f.endswith((".gguf", ".safetensors")):
            dst = os.path.join(out, "seed", f)
            os.makedirs(os.path.dirname(dst), exist_ok=True)
            shutil.copy(os.path.join(seed_dir, f), dst)
            case("seed-inspect-" + f, ["inspect", dst], dst)
            if f.endswith(".gguf"):
                case("seed-run-" + f, ["run", "--format", "gguf", "-f", dst, "-p", "hi", "-n", "1"],
                     dst)

    # Files that are not files.
    for kind, make in (("fifo", fifo), ("devzero", devzero)):
        for ext in ("gguf", "safetensors"):
            p = os.path.join(out, "special", f"{kind}.{ext}")
            make(p)
            case(f"{kind}-inspect-{ext}", ["inspect", p], p)
        p = os.path.join(out, "special", f"{kind}-gguf-run.gguf")
        make(p)
        case(f"{kind}-run-gguf", ["run", "--format", "gguf", "-f", p, "-p", "hi", "-n", "1"], p)
        for fname in ("config.json", "tokenizer.json", "model.safetensors"):
            d = os.path.join(out, "special", f"{kind}-hf-{fname}")
            hf_dir(d)
            os.remove(os.path.join(d, fname))
            make(os.path.join(d, fname))
            case(f"{kind}-hf-{fname}", ["run", "-m", d, "-p", "hi", "-n", "1"],
                 os.path.join(d, fname))
        d = os.path.join(out, "special", f"{kind}-tokenize")
        hf_dir(d)
        os.remove(os.path.join(d, "tokenizer.json"))
        make(os.path.join(d, "tokenizer.json"))
        case(f"{kind}-tokenize", ["tokenize", "-m", d, "--text", "hi"],
             os.path.join(d, "tokenizer.json"))
        p = os.path.join(out, "special", f"{kind}-topology.yml")
        make(p)
        case(f"{kind}-topology", ["run", "-m", os.path.join(out, "special", f"{kind}-tokenize"),
                                  "--topology", p, "-p", "hi", "-n", "1"], p)
        p = os.path.join(out, "special", f"{kind}-run.toml")
        make(p)
        case(f"{kind}-toml", ["from-config", "-f", p, "--dry-run"], p)

    # GGUF metadata that must be shown escaped (inspect succeeds).
    esc = gguf([("general.name", STRING, gstr("\x1b]0;pwned\x07\x1b[2J\x9b31m")),
                ("evil\x1b[31m.key", STRING, gstr("x")),
                ("general.c1", STRING, gstr("a\u009b2Jb"))])
    p = os.path.join(out, "gguf", "escapes.gguf")
    write(p, esc)
    case("gguf-inspect-escapes", ["inspect", p], p, expect="ok")
    case("gguf-inspect-escapes-full", ["inspect", "--full", p], p, expect="ok")
    p = os.path.join(out, "gguf", "no-tensors.gguf")
    write(p, gguf([("general.architecture", STRING, gstr("llama"))]))
    case("gguf-run-no-tensors", ["run", "--format", "gguf", "-f", p, "-p", "hi", "-n", "1"], p)
    p = os.path.join(out, "gguf", "unknown-arch.gguf")
    write(p, gguf([("general.architecture", STRING, gstr("\x1b[31mnope"))]))
    case("gguf-run-unknown-arch", ["run", "--format", "gguf", "-f", p, "-p", "hi", "-n", "1"], p)
    p = os.path.join(out, "gguf", "huge-block-count.gguf")
    write(p, gguf([("general.architecture", STRING, gstr("llama")),
                   ("llama.block_count", U32, u32(0xFFFFFFFF)),
                   ("llama.embedding_length", U32, u32(0xFFFFFFFF)),
                   ("llama.attention.head_count", U32, u32(0))]))
    case("gguf-run-huge-block-count", ["run", "--format", "gguf", "-f", p, "-p", "hi", "-n", "1"],
         p)

    # Safetensors headers: many tensors (quadratic parsing), many dimensions.
    for n in (40000, 200000):
        entries = {f"t{i}": {"dtype": "F32", "shape": [0], "data_offsets": [0, 0]}
                   for i in range(n)}
        entries["bad"] = {"dtype": "F32", "shape": [1], "data_offsets": [0, 8]}
        p = os.path.join(out, "st", f"many-{n}.safetensors")
        write(p, safetensors(entries))
        case(f"st-many-tensors-{n}", ["inspect", p], p)
    p = os.path.join(out, "st", "many-dims.safetensors")
    write(p, safetensors({"x": {"dtype": "F32", "shape": [1] * 200000 + [2],
                                "data_offsets": [0, 4]}}, b"\0" * 4))
    case("st-many-dims", ["inspect", p], p)
    p = os.path.join(out, "st", "deep-metadata.safetensors")
    hdr = b'{"__metadata__":' + b"[" * 100000 + b"1" + b"]" * 100000 + b"}"
    write(p, u64(len(hdr)) + hdr)
    case("st-deep-metadata", ["inspect", p], p)

    # HF directories: config.json.
    bad_configs = {
        "layers-string": {"num_hidden_layers": "two"},
        "layers-negative": {"num_hidden_layers": -1},
        "layers-huge": {"num_hidden_layers": 1 << 40},
        "heads-zero": {"num_attention_heads": 0},
        "hidden-huge": {"hidden_size": 1 << 31},
        "hidden-odd": {"hidden_size": 7},
        "vocab-zero": {"vocab_size": 0},
        "vocab-huge": {"vocab_size": 1 << 40},
        "eps-string": {"rms_norm_eps": "tiny"},
        "arch-number": {"architectures": [7]},
        "arch-unknown": {"architectures": ["\x1b[2JEvilForCausalLM"]},
        "rope-scaling-string": {"rope_scaling": "yes"},
        "eos-object": {"eos_token_id": {"a": 1}},
        "quant-config-string": {"quantization_config": "gptq"},
    }
    for name, over in bad_configs.items():
        d = os.path.join(out, "hf", "config-" + name)
        cfg = dict(CONFIG)
        cfg.update(over)
        hf_dir(d, config=cfg)
        # Fields the loader may ignore or default need only be survived, not refused.
        tolerated = name in ("arch-number", "eos-object", "quant-config-string")
        case("hf-config-" + name, ["run", "-m", d, "-p", "hi", "-n", "1"],
             os.path.join(d, "config.json"), expect="any" if tolerated else "error")
    for name, text in (("array", "[1,2,3]"), ("truncated", '{"hidden_size": '),
                       ("deep", nested("[", "]", 200000)), ("empty", ""),
                       ("binary", b"\xff\xfe\0\0garbage")):
        d = os.path.join(out, "hf", "config-text-" + name)
        hf_dir(d, config=text)
        case("hf-config-text-" + name, ["run", "-m", d, "-p", "hi", "-n", "1"],
             os.path.join(d, "config.json"))
    # More layers in the checkpoint than config.json says.
    d = os.path.join(out, "hf", "layers-30-config-2")
    hf_dir(d, weights=tiny_tensors(30))
    case("hf-more-layers-than-config", ["run", "-m", d, "-p", "hi", "-n", "1"],
         os.path.join(d, "model.safetensors"))
    d = os.path.join(out, "hf", "st-garbage")
    hf_dir(d, weights=b"\x10\0\0\0\0\0\0\0{not json at all")
    case("hf-st-garbage", ["run", "-m", d, "-p", "hi", "-n", "1"],
         os.path.join(d, "model.safetensors"))
    d = os.path.join(out, "hf", "index-escape")
    hf_dir(d)
    write(os.path.join(d, "model.safetensors.index.json"),
          json.dumps({"weight_map": {"model.norm.weight": "../../../etc/passwd"}}))
    case("hf-index-escape", ["run", "-m", d, "-p", "hi", "-n", "1"],
         os.path.join(d, "model.safetensors.index.json"))

    # tokenizer.json.
    vocab = {chr(ord("a") + i): i for i in range(15)}
    vocab["ab"] = 15
    bad_tokenizers = {
        "added-id-huge": {"added_tokens": [{"id": 400000000, "content": "<x>", "special": True}]},
        "added-id-negative": {"added_tokens": [{"id": -1, "content": "<x>"}]},
        "added-id-string": {"added_tokens": [{"id": "7", "content": "<x>"}]},
        "added-not-object": {"added_tokens": [7]},
        "added-not-array": {"added_tokens": "many"},
        "vocab-id-huge": {"model": {"type": "BPE", "vocab": {"a": 1 << 40}, "merges": []}},
        "vocab-gap": {"model": {"type": "BPE", "vocab": {"a": 0, "b": 15}, "merges": []}},
        "model-string": {"model": "BPE"},
        "model-unigram": {"model": {"type": "Unigram", "vocab": []}},
        "merges-number": {"model": {"type": "BPE", "vocab": vocab, "merges": [7]}},
        "merges-no-space": {"model": {"type": "BPE", "vocab": vocab, "merges": ["ab"]}},
        "use-regex-string": {"pre_tokenizer": {"type": "ByteLevel", "use_regex": "yes"}},
        "split-regex-number": {"pre_tokenizer": {"type": "Split", "pattern": {"Regex": 5},
                                                 "behavior": "Isolated"}},
        "split-regex-bad": {"pre_tokenizer": {"type": "Split", "pattern": {"Regex": "(((("},
                                              "behavior": "Isolated"}},
        "split-regex-catastrophic": {"pre_tokenizer": {"type": "Split",
                                                       "pattern": {"Regex": "(a*)*b"},
                                                       "behavior": "Isolated"}},
        "pre-unknown": {"pre_tokenizer": {"type": "\x1b[31mWhitespace"}},
        "pre-string": {"pre_tokenizer": "ByteLevel"},
        "sequence-not-array": {"pre_tokenizer": {"type": "Sequence", "pretokenizers": 5}},
        "post-processor-odd": {"post_processor": {"type": "TemplateProcessing", "single": "x"}},
        "normalizer-number": {"normalizer": 5, "pre_tokenizer": {"type": "Metaspace"}},
    }
    for name, over in bad_tokenizers.items():
        d = os.path.join(out, "tok", name)
        hf_dir(d, tokenizer=tokenizer_json(**over))
        case("tok-" + name, ["tokenize", "-m", d, "--text", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaac"],
             os.path.join(d, "tokenizer.json"), expect="any" if name == "added-not-array" else
             "error")
    for name, key, inner in (("pre", "pretokenizers", "pre_tokenizer"),
                             ("normalizer", "normalizers", "normalizer"),
                             ("post", "processors", "post_processor")):
        leaf = '{"type":"ByteLevel"}' if inner == "pre_tokenizer" else ""
        deep = nested('{"type":"Sequence","%s":[' % key, "]}", 5000, leaf)
        d = os.path.join(out, "tok", "deep-" + name)
        hf_dir(d, tokenizer=tokenizer_json(**{inner: "@DEEP@"}).replace('"@DEEP@"', deep))
        case("tok-deep-" + name, ["tokenize", "-m", d, "--text", "abc"], d)
    d = os.path.join(out, "tok", "config-array")
    hf_dir(d)
    write(os.path.join(d, "tokenizer_config.json"), "[1, 2]")
    case("tok-config-array", ["tokenize", "-m", d, "--text", "abc"], d)
    d = os.path.join(out, "tok", "config-types")
    hf_dir(d)
    write(os.path.join(d, "tokenizer_config.json"),
          json.dumps({"clean_up_tokenization_spaces": "yes", "bos_token": 5,
                      "add_bos_token": "no", "chat_template": 7}))
    case("tok-config-types", ["tokenize", "-m", d, "--text", "abc"], d, expect="any")

    # Topology YAML (parsed before the model loads).
    model = os.path.join(out, "hf", "valid")
    hf_dir(model)
    topologies = {
        "not-map": "- 1\n- 2\n",
        "bad-regex": "'/((/': {isq: q4k}\n",
        "bad-type": "0-8: {isq: q99}\n",
        "unknown-key": "0-8: {isq: q4k, colour: red}\n",
        "deep-flow": nested("[", "]", 20000) + "\n",
        "deep-map": nested("{a: ", "}", 20000) + "\n",
        "anchors": "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
            f"b{i}: &b{i} [*{'a' if i == 0 else 'b' + str(i - 1)}, "
            f"*{'a' if i == 0 else 'b' + str(i - 1)}]\n" for i in range(40)),
        "binary": "\0\xff\xfe{[\0",
        "huge-range": "0-99999999999999999999: {isq: q4k}\n",
        "dup": "0-8: {isq: q4k}\n0-8: {isq: q8_0}\n",
    }
    for name, text in topologies.items():
        p = os.path.join(out, "topology", name + ".yml")
        write(p, text.encode("utf-8", "surrogatepass") if isinstance(text, str) else text)
        case("topology-" + name, ["run", "-m", model, "--topology", p, "-p", "hi", "-n", "1"], p)

    # TOML run configurations.
    tomls = {
        "garbage": "\0\xff = = [[",
        "deep-array": "a = " + nested("[", "]", 100000) + "\n",
        "deep-table": "a = " + nested("{b = ", "}", 100000) + "\n",
        "model-number": "model = 5\n",
        "unknown-key": "frobnicate = true\n",
        "huge-threads": "[run]\nthreads = 99999999999999999999\n",
        "long-key": "k" * 1000000 + " = 1\n",
    }
    for name, text in tomls.items():
        p = os.path.join(out, "toml", name + ".toml")
        write(p, text.encode("utf-8", "surrogatepass"))
        case("toml-" + name, ["from-config", "-f", p, "--dry-run"], p)

    # UQFF: artifacts beside a valid model.
    for name, files in {
        "garbage": {"q4k-0.uqff": b"\0" * 64},
        "huge-count": {"q4k-0.uqff": u64(1) + u64(1 << 62) + b"\0" * 64},
        "report-types": {"uqff_report.json": json.dumps({"outputs": [{"quant": 4, "shards": 5}]}),
                         "q4k-0.uqff": b"\0" * 16},
        "report-escape": {"uqff_report.json": json.dumps(
            {"outputs": [{"quant": "q4k", "shards": ["../../../etc/passwd"]}]})},
    }.items():
        d = os.path.join(out, "uqff", name)
        hf_dir(d)
        for f, data in files.items():
            write(os.path.join(d, f), data)
        case("uqff-" + name, ["run", "-m", d, "--quant", "q4k", "-p", "hi", "-n", "1"], d)
        p = os.path.join(d, "q4k-0.uqff")
        if os.path.exists(p):
            case("uqff-from-" + name, ["run", "-m", d, "--from-uqff", p, "-p", "hi", "-n", "1"], d)

    # Text inputs that are not files.
    for kind, make in (("fifo", fifo), ("devzero", devzero)):
        p = os.path.join(out, "text", kind + ".txt")
        make(p)
        case("text-perplexity-" + kind, ["perplexity", "-m", model, "--file", p], p)

    with open(os.path.join(out, "manifest.json"), "w") as f:
        json.dump(cases, f, indent=1)
    return cases


# ---- the check -----------------------------------------------------------------------------


def limit_child():
    resource.setrlimit(resource.RLIMIT_AS, (ADDRESS_SPACE, ADDRESS_SPACE))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def run_case(binary, c):
    start = time.monotonic()
    try:
        p = subprocess.run([binary] + c["args"], stdin=subprocess.DEVNULL, capture_output=True,
                           timeout=TIME_LIMIT_S, preexec_fn=limit_child)
    except subprocess.TimeoutExpired:
        return "hang", f"no exit within {TIME_LIMIT_S} s", time.monotonic() - start
    took = time.monotonic() - start
    err = p.stderr.decode("utf-8", "replace")
    out = p.stdout.decode("utf-8", "replace")
    if p.returncode < 0:
        return "crash", f"signal {-p.returncode}: {err[-400:]}", took
    if "internal error" in err or "std::bad_alloc" in err or "AddressSanitizer" in err:
        kind = "alloc" if "bad_alloc" in err else "internal"
        return kind, err.strip()[-400:], took
    if c["expect"] == "ok":
        if p.returncode != 0:
            return "fail", f"exit {p.returncode}: {err.strip()[-300:]}", took
        bad = [ch for ch in out if (ord(ch) < 0x20 and ch not in "\n") or 0x7F <= ord(ch) < 0xA0]
        if bad:
            return "fail", f"control characters in the output: {bad[:5]!r}", took
        return "clean", "", took
    if c["expect"] == "any" and p.returncode == 0:
        return "clean", "", took
    if p.returncode == 0:
        return "fail", "exit 0 on a hostile input", took
    errors = [line for line in err.splitlines() if line.startswith("insitu: error:")]
    if p.returncode == 109 or err.startswith(("The following argument", "Run with --help")):
        return "fail", f"command line refused, case is wrong: {err.strip()[:300]}", took
    if len(errors) != 1:
        return "fail", f"exit {p.returncode}, want one 'insitu: error:' line: {err.strip()[-300:]}", took
    line = errors[0]
    if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in line):
        return "fail", f"control characters in the error: {line!r}", took
    target = c["names"]
    names = {target, os.path.basename(target), os.path.basename(os.path.dirname(target))}
    if not any(n and n in line for n in names):
        return "unnamed", f"error does not name {target}: {line}", took
    return "clean", "", took


def check(binary, out):
    cases = build(out)
    counts = {}
    failures = []
    slowest = (0.0, "")
    jobs = max(1, min(4, os.cpu_count() or 1))
    with concurrent.futures.ThreadPoolExecutor(jobs) as pool:
        results = list(pool.map(lambda c: (c, run_case(binary, c)), cases))
    for c, (kind, why, took) in results:
        counts[kind] = counts.get(kind, 0) + 1
        slowest = max(slowest, (took, c["name"]))
        if kind != "clean":
            failures.append(f"  {c['name']}: {kind}: {why}")
    print(f"hostile inputs: {len(cases)} cases; " +
          ", ".join(f"{k} {v}" for k, v in sorted(counts.items())) +
          f"; slowest {slowest[1]} {slowest[0]:.1f} s")
    for f in failures:
        print(f)
    return 0 if not failures else 1


def main():
    args = sys.argv[1:]
    if args and args[0] == "--check":
        binary = os.path.abspath(args[1])
        if len(args) > 2:
            shutil.rmtree(args[2], ignore_errors=True)
            os.makedirs(args[2])
            return check(binary, args[2])
        with tempfile.TemporaryDirectory(prefix="insitu-hostile-") as out:
            return check(binary, out)
    if len(args) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    shutil.rmtree(args[0], ignore_errors=True)
    os.makedirs(args[0])
    print(f"{len(build(args[0]))} cases in {args[0]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
