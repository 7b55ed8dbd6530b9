#!/usr/bin/env python3
"""Writes llama.cpp's token ids for the tokenizer reference test (tests/tokenizer/).

Reference implementation: llama.cpp through llama-cpp-python (vocab_only models). Inputs:
  * real English text excerpted from Debian's jargon-text, gnu-standards and
    debian-reference-common packages (install them first: apt-get install jargon-text
    gnu-standards debian-reference-common); the excerpt is copied to tests/data/tokenizer/corpus.txt
    so the test needs nothing installed;
  * an adversarial set defined below (emoji, CJK, RTL, combining marks, whitespace runs, code,
    numbers, special-token strings, invalid UTF-8, ...).

Outputs in tests/data/tokenizer/ (formats documented in tests/tokenizer/tokenizer_reference_test.cc):
  corpus.txt, cases.json, and for each model MODEL.json + MODEL.ids (LEB128 varint token ids).

Usage: python3 scripts/gen_tokenizer_reference.py [--models-dir DIR]
"""
import argparse
import ctypes
import gzip
import json
import os
import sys
import tempfile

import gguf
import llama_cpp

OUT_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "data", "tokenizer")

MODELS = {
    "smollm2": "SmolLM2-135M-Instruct.Q4_1.gguf",
    "gemma3": "gemma-3-270m-q4_k_m.gguf",
}

# (path, start line, bytes wanted). Excerpts start at a line boundary and end at one.
SOURCES = [
    ("/usr/share/doc/jargon-text/jargon.txt.gz", 1900, 90_000),
    ("/usr/share/doc/gnu-standards/standards.text.gz", 200, 80_000),
    ("/usr/share/doc/gnu-standards/maintain.text.gz", 100, 25_000),
    ("/usr/share/doc/debian-reference-common/README.md.gz", 0, 19_000),
]

CHUNK_SIZES = [300, 1200, 4000, 9000, 700, 2500]

# Vocabularies of the other supported families, made from a shipped model's vocabulary with the
# metadata that selects their behaviour changed (llama.cpp decides pre-tokenization, BOS rules and
# space handling from these keys alone). name -> (base model, {key: value}); a dict value for
# tokenizer.ggml.tokens renames tokens by id. The test applies the same overrides via GgufWriter.
VARIANTS = {
    "llama3": ("smollm2", {"tokenizer.ggml.pre": "llama-bpe"}),
    "llama3_bos": ("smollm2", {"tokenizer.ggml.pre": "llama-bpe", "tokenizer.ggml.add_bos_token": True}),
    "qwen2": ("smollm2", {"tokenizer.ggml.pre": "qwen2"}),
    "qwen35": ("smollm2", {"tokenizer.ggml.pre": "qwen35"}),
    "gpt2": ("smollm2", {"tokenizer.ggml.pre": "gpt-2"}),
    "default": ("smollm2", {"tokenizer.ggml.pre": "default"}),
    "falcon": ("smollm2", {"tokenizer.ggml.pre": "falcon"}),
    "tekken": ("smollm2", {"tokenizer.ggml.pre": "tekken"}),
    "spm_space_prefix": ("gemma3", {"tokenizer.ggml.add_space_prefix": True}),
    "spm_prefix_eos": ("gemma3", {"tokenizer.ggml.add_space_prefix": True,
                                  "tokenizer.ggml.add_eos_token": True}),
    # Phi-3's rule (special tokens swallow the whitespace after them) keys on general.name and
    # needs <|endoftext|> in the vocabulary: one unused token is renamed to it.
    "phi3": ("gemma3", {"tokenizer.ggml.add_space_prefix": True, "general.name": "Phi-3 mini",
                        "tokenizer.ggml.tokens": {6: "<|endoftext|>"}}),
}
N_VARIANT_CORPUS_CASES = 4


def read_excerpt(path, start_line, want):
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        lines = f.read().split(b"\n")
    out = bytearray()
    for line in lines[start_line:]:
        if len(out) >= want:
            break
        out += line + b"\n"
    return bytes(out)


def adversarial():
    cases = []

    def add(name, data):
        cases.append((name, data if isinstance(data, bytes) else data.encode("utf-8")))

    add("empty", "")
    add("one_space", " ")
    add("leading_spaces", "   leading spaces and trailing   ")
    add("leading_space_word", " Hello")
    add("hello", "Hello world")
    add("emoji", "I love 🦙 and 🤗! 👍🏽👍🏿 🇩🇪🇯🇵 ☕️")
    add("emoji_zwj", "family: 👨‍👩‍👧‍👦 couple: 👩‍❤️‍💋‍👨 rainbow flag: 🏳️‍🌈 🧑🏾‍💻")
    add("cjk", "日本語のテキストと中文文本，还有한국어 텍스트。全角ＡＢＣ１２３")
    add("arabic_hebrew", "مرحبا بالعالم! هذا نص عربي. שלום עולם, זה טקסט בעברית.")
    add("combining", "e\u0301 a\u0308 n\u0303 Z\u0351\u0352\u0353\u0354alg\u0336o\u0337 "
        "\u0915\u094d\u0937 \u0e01\u0e34\u0e19 cafe\u0301 na\u00efve")
    add("devanagari_thai", "नमस्ते दुनिया। สวัสดีชาวโลก ภาษาไทย")
    add("cyrillic_greek", "Привет, мир! Ελληνικά γράμματα: αβγδε ΑΒΓΔΕ ǅ ǈ ß ẞ İı")
    add("whitespace_runs", "a  b   c    d     e" + " " * 40 + "f\t\tg\t \t h")
    add("newlines", "line1\nline2\n\nline3\n\n\n\nline4\r\nline5\r\n\r\n \n \n  \n\t\n")
    add("tabs_newlines_mix", "\t\n \t\n\n\t\t  \n\r\r\n\u00a0\u2003\u3000x\u2028y\u2029z\u0085w")
    add("only_newlines", "\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n")
    add("code_python", "def fib(n: int) -> int:\n    if n < 2:\n        return n\n"
        "    return fib(n - 1) + fib(n - 2)  # recursion\n\nprint([fib(i) for i in range(10)])\n")
    add("code_cpp", "#include <vector>\nint main(){std::vector<int> v{1,2,3};for(auto&x:v)x*=2;"
        "return v[0]==2?0:1;}\n// comment /* block */ a->b; a<<=3; x != y && z || !w;\n")
    add("code_json", '{"key": [1, 2.5, -3e10, true, null], "nested": {"a": "b\\n\\"c\\""}}')
    add("numbers", "0 1 12 123 1234 12345 123456 1234567 12345678 123456789 1234567890 "
        "3.14159 -42 +7 1,000,000 1_000 0x1F 1e-9 007 ٣٤٥ ½ ² Ⅻ ①")
    add("long_number", "31415926535897932384626433832795028841971693993751058209749445923078164")
    add("contractions", "I'm you're we've they'll she'd it's don't CAN'T I'M YOU'RE 'tis ''quoted''")
    add("punctuation", "Hello, world! How are you? I'm fine... (really) [yes] {no} <maybe> \"quote\" "
        "'single' «guillemets» „low“ — – … ¡Hola! ¿Qué?")
    add("urls_paths", "https://example.com/path?q=1&r=2#frag /usr/local/bin C:\\Windows\\System32 "
        "user@example.org")
    add("symbols_math", "∀x∈ℝ: x² ≥ 0; ∑ᵢ aᵢ ≈ ∫ f(x) dx ± ε → ∞ ≠ ≤ ≥ ⊕ ⊗ ∂ ∇ © ® ™ € £ ¥ ₿ $ % ^ & *")
    add("box_drawing", "┌──┬──┐\n│ab│cd│\n├──┼──┤\n└──┴──┘")
    add("repeated_chars", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
        "!!!!!!!!!!!!!!!!!!!!------------------------========....")
    add("mixed_scripts", "English日本語English한국어Englishالعربيةabcабв123αβγ")
    add("special_chatml", "<|im_start|>user\nHello<|im_end|>\n<|im_start|>assistant\nHi!<|im_end|>")
    add("special_gemma", "<start_of_turn>user\nHello<end_of_turn>\n<start_of_turn>model\nHi<end_of_turn>")
    add("special_bos_eos", "<bos>text<eos> <s>text</s> <|endoftext|>tail<pad><unk><mask>")
    add("special_partial", "<|im_start <start_of_turn <|endoftext| <bo s> <|im_end|><|im_end|>")
    add("special_spaces", "  <|im_start|>  spaced  <|im_end|>  \n <start_of_turn> x <end_of_turn> ")
    add("invalid_utf8_lone", b"abc\xff def \xfe\xc0 ghi")
    add("invalid_utf8_truncated", b"caf\xc3 tr\xe2\x82 x\xf0\x9f\x98 end\xe2")
    add("invalid_utf8_continuation", b"\x80\x81\x82 mid \xbf text \xc3\x28 \xe2\x28\xa1")
    add("invalid_utf8_overlong", b"over\xc0\xafflow \xe0\x80\xaf x \xed\xa0\x80 sur")
    add("nul_and_controls", b"a\x00b\x01c\x07d\x1be[0m\x7f end")
    add("bom_and_format", "\ufeffBOM start \u200b zero\u200cwidth\u200djoiner \u2060 \u00ad soft")
    add("private_use_and_unassigned", "\ue000\uf8ff \U000f0000 \u0378 \U0001fbff \U0010fffd")
    add("single_chars", "a")
    add("single_cjk", "語")
    add("single_emoji", "🦙")
    add("trailing_space", "ends with space ")
    add("many_spaces_then_word", " " * 17 + "word" + " " * 5)
    add("apostrophe_variants", "it’s isn’t ‘quoted’ l'été aujourd'hui rock'n'roll")
    add("html", "<div class=\"a\"><p>Hello&nbsp;<b>world</b></p><br/></div>")
    add("markdown", "# Title\n\n- item *one*\n- item **two**\n\n```bash\nls -la\n```\n> quote")
    add("long_word", "Pneumonoultramicroscopicsilicovolcanoconiosis antidisestablishmentarianism "
        "supercalifragilisticexpialidocious")
    add("accents_fr_de", "Où est la bibliothèque? Äpfel, Öl, Übermut, Straße. Ça va très bien.")
    return cases


def varint(n, out):
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return


def detokenize(llm, ids, unparse_special):
    vocab = llm._model.vocab
    arr = (llama_cpp.llama_token * max(1, len(ids)))(*ids)
    size = 64 + 64 * len(ids)
    buf = ctypes.create_string_buffer(size)
    n = llama_cpp.llama_detokenize(vocab, arr, len(ids), buf, size, False, unparse_special)
    if n < 0:
        size = -n + 16
        buf = ctypes.create_string_buffer(size)
        n = llama_cpp.llama_detokenize(vocab, arr, len(ids), buf, size, False, unparse_special)
    return buf.raw[:n]


def make_variant(base, out, overrides):
    """Copies `base`'s metadata (no tensors) to `out` with `overrides` applied."""
    r = gguf.GGUFReader(base)
    w = gguf.GGUFWriter(out, r.fields["general.architecture"].contents())
    for k, f in r.fields.items():
        if k.startswith("GGUF.") or k == "general.architecture":
            continue
        if k in overrides and not isinstance(overrides[k], dict):
            continue
        if isinstance(overrides.get(k), dict):
            items = list(f.contents())
            for i, t in overrides[k].items():
                items[i] = t
            w.add_key_value(k, items, f.types[0], sub_type=f.types[-1])
        elif f.types[0] == gguf.GGUFValueType.ARRAY:
            w.add_key_value(k, f.contents(), f.types[0], sub_type=f.types[-1])
        else:
            w.add_key_value(k, f.contents(), f.types[0])
    for k, v in overrides.items():
        if isinstance(v, dict):
            continue
        t = gguf.GGUFValueType.BOOL if isinstance(v, bool) else gguf.GGUFValueType.STRING
        w.add_key_value(k, v, t)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def write_reference(llm, key, fname, cases, case_bytes, selected, extra):
    runs, ids_blob, total_bytes, total_ids = [], bytearray(), 0, 0
    for ci, flags in selected:
        text = case_bytes(cases[ci])
        for add_bos, special in flags:
            ids = llm.tokenize(text, add_bos=add_bos, special=special)
            for t in ids:
                varint(t, ids_blob)
            plain = detokenize(llm, ids, False)
            rendered = detokenize(llm, ids, True)
            # detok / detok_special: llama_detokenize(remove_special=false) with
            # unparse_special false / true; null when it equals the text, "space+text",
            # "bos+text" or "bos+space+text" when it is the text after a space and/or the BOS
            # token's text, else hex bytes.
            bos_text = llm._model.token_get_text(llm.token_bos()).encode() if add_bos else b""

            def encode_detok(d):
                if d == text:
                    return None
                if d == b" " + text:
                    return "space+text"
                if add_bos and d == bos_text + text:
                    return "bos+text"
                if add_bos and d == bos_text + b" " + text:
                    return "bos+space+text"
                return d.hex()

            # detok_special may instead name detok: "detok" or "bos+detok".
            if rendered != text and rendered == plain:
                special_detok = "detok"
            elif rendered != text and add_bos and rendered == bos_text + plain:
                special_detok = "bos+detok"
            else:
                special_detok = encode_detok(rendered)
            runs.append({"case": ci, "add_bos": add_bos, "parse_special": special, "n": len(ids),
                         "detok": encode_detok(plain), "detok_special": special_detok})
            total_bytes += len(text)
            total_ids += len(ids)
    with open(os.path.join(OUT_DIR, key + ".ids"), "wb") as f:
        f.write(ids_blob)
    with open(os.path.join(OUT_DIR, key + ".json"), "w") as f:
        json.dump({"model": fname, "n_vocab": llm.n_vocab(), **extra, "runs": runs}, f,
                  separators=(",", ":"))
    print(f"{key}: {len(runs)} runs, {total_bytes} bytes of text, {total_ids} ids, "
          f"{len(ids_blob)} bytes of ids")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--variants", nargs="*", default=None,
                    help="only (re)write these variants, not the base models' data")
    ap.add_argument("--models-dir", default=os.environ.get(
        "INSITU_MODEL_CACHE", os.path.expanduser("~/.cache/insitu/models")))
    args = ap.parse_args()
    os.makedirs(OUT_DIR, exist_ok=True)

    corpus = bytearray()
    sources = []
    for path, start, want in SOURCES:
        if not os.path.exists(path):
            sys.exit(f"missing {path}: apt-get install jargon-text gnu-standards debian-reference-common")
        ex = read_excerpt(path, start, want)
        sources.append({"file": path, "first_line": start, "offset": len(corpus), "length": len(ex)})
        corpus += ex
    with open(os.path.join(OUT_DIR, "corpus.txt"), "wb") as f:
        f.write(corpus)

    cases = []
    # Corpus chunks, cut at line ends.
    off, k = 0, 0
    while off < len(corpus):
        end = min(len(corpus), off + CHUNK_SIZES[k % len(CHUNK_SIZES)])
        nl = corpus.find(b"\n", end)
        end = len(corpus) if nl < 0 else nl + 1
        cases.append({"name": f"corpus_{k}", "corpus": [off, end - off],
                      "flags": [[k % 2 == 0, k % 3 == 0]]})
        off, k = end, k + 1
    all_flags = [[False, False], [True, False], [False, True], [True, True]]
    for name, data in adversarial():
        cases.append({"name": name, "hex": data.hex(), "flags": all_flags})

    def case_bytes(c):
        if "corpus" in c:
            o, n = c["corpus"]
            return bytes(corpus[o:o + n])
        return bytes.fromhex(c["hex"])

    with open(os.path.join(OUT_DIR, "cases.json"), "w") as f:
        json.dump({"generator": "scripts/gen_tokenizer_reference.py",
                   "reference": f"llama.cpp via llama-cpp-python {llama_cpp.__version__}",
                   "corpus": "corpus.txt", "sources": sources, "cases": cases}, f, indent=0)

    all_cases = [(ci, c["flags"]) for ci, c in enumerate(cases)]
    for key, fname in (MODELS.items() if args.variants is None else []):
        llm = llama_cpp.Llama(model_path=os.path.join(args.models_dir, fname), vocab_only=True,
                              verbose=False)
        write_reference(llm, key, fname, cases, case_bytes, all_cases, {})

    few = [(ci, c["flags"]) for ci, c in enumerate(cases) if "corpus" in c][:N_VARIANT_CORPUS_CASES]
    few += [(ci, [[False, False], [True, True]]) for ci, c in enumerate(cases) if "hex" in c]
    with tempfile.TemporaryDirectory() as tmp:
        for name, (base, overrides) in VARIANTS.items():
            if args.variants is not None and name not in args.variants:
                continue
            path = os.path.join(tmp, name + ".gguf")
            make_variant(os.path.join(args.models_dir, MODELS[base]), path, overrides)
            llm = llama_cpp.Llama(model_path=path, vocab_only=True, verbose=False)
            write_reference(llm, "variant_" + name, MODELS[base], cases, case_bytes, few,
                            {"base": base, "overrides": {
                                k: ({str(i): t for i, t in v.items()} if isinstance(v, dict) else v)
                                for k, v in overrides.items()}})
            del llm


if __name__ == "__main__":
    main()
