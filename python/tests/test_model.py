"""The Pythonic surface against the CLI and the C++ library on the shipped SmolLM2 model."""

import math
import os
import signal
import struct
import subprocess
import threading
import time

import numpy as np
import pytest

import insitu
from conftest import THREADS

PROMPT = "Name three colours of the rainbow."


def cli_run(cli, model_path, prompt, *extra):
    out = subprocess.run(
        [str(cli), "run", "--format", "gguf", "-f", str(model_path), "-p", prompt, "--temp", "0",
         "-n", "12", "-t", str(THREADS), *extra],
        check=True, capture_output=True)
    return out.stdout.decode()


def as_cli_prints(text):
    return text if text.endswith("\n") else text + "\n"


def test_greedy_chat_equals_cli(model, model_path, cli):
    text = model.chat(PROMPT, temperature=0, max_tokens=12)
    assert text
    assert as_cli_prints(text) == cli_run(cli, model_path, PROMPT)


def test_greedy_chat_equals_cli_with_isq(model_path, cli):
    m = insitu.Model.load(model_path, quant="Q8_0", threads=THREADS, progress=False)
    assert m.info["isq"] == "q8_0"
    text = m.chat(PROMPT, temperature=0, max_tokens=12)
    assert as_cli_prints(text) == cli_run(cli, model_path, PROMPT, "--isq", "q8_0")


def test_stream_concatenates_to_text(model):
    whole = model.chat(PROMPT, temperature=0, max_tokens=16)
    pieces = list(model.chat(PROMPT, temperature=0, max_tokens=16, stream=True))
    assert len(pieces) > 1
    assert "".join(pieces) == whole
    raw = model.generate("The capital of France is", temperature=0, max_tokens=16)
    assert "".join(model.generate("The capital of France is", temperature=0, max_tokens=16,
                                  stream=True)) == raw


def test_token_stream_events_and_result(model):
    s = model.stream("Once upon a time", temperature=0, max_tokens=8, logprobs=True)
    events = list(s)
    assert events[-1].is_last and events[-1].finish_reason == "length"
    assert s.result.n_generated == 8 and s.result.tokens == [e.token for e in events]
    assert all(e.logprob <= 0 for e in events)


def test_seeded_sampling_reproduces(model):
    a = model.generate("Once upon a time", temperature=0.9, seed=7, max_tokens=16)
    b = model.generate("Once upon a time", temperature=0.9, seed=7, max_tokens=16)
    assert a == b


def test_tokenize_round_trip(model):
    ids = model.tokenize("Hello, world!")
    assert all(isinstance(i, int) for i in ids)
    assert model.detokenize(ids) == "Hello, world!"


def read_kld_base(path):
    """llama.cpp's --kl-divergence-base file (src/quality/kld_base_file.h)."""
    data = open(path, "rb").read()
    assert data[:8] == b"_logits_"
    n_ctx, n_vocab, n_chunk = struct.unpack_from("<iii", data, 8)
    off = 20
    tokens = list(struct.unpack_from(f"<{n_chunk * n_ctx}i", data, off))
    off += 4 * n_chunk * n_ctx
    nv = 2 * ((n_vocab + 1) // 2) + 4
    records = []
    for _ in range(n_ctx - 1 - n_ctx // 2):
        scale, min_lp = struct.unpack_from("<ff", data, off)
        q = np.frombuffer(data, dtype=np.uint16, count=n_vocab, offset=off + 8)
        records.append((scale, min_lp, q))
        off += 2 * nv
    return n_ctx, tokens[:n_ctx], records


def test_logits_equal_cpp_library(model, model_path, cli, tmp_path):
    text = tmp_path / "text.txt"
    text.write_text("The quick brown fox jumps over the lazy dog. " * 20)
    base = tmp_path / "base.kld"
    subprocess.run([str(cli), "perplexity", "--format", "gguf", "-f", str(model_path), "--file",
                    str(text), "-c", "64", "--chunks", "1", "-t", str(THREADS),
                    "--kl-divergence-base", str(base)], check=True, capture_output=True)
    n_ctx, tokens, records = read_kld_base(base)
    logits = model.logits(tokens)
    assert logits.shape == (n_ctx, model.info["n_vocab"]) and logits.dtype == np.float32
    for j, (scale, min_lp, q) in zip(range(n_ctx // 2, n_ctx - 1), records):
        row = logits[j].astype(np.float64)
        log_p = row - row.max() - math.log(np.exp(row - row.max()).sum())
        above = q > 0
        stored = scale * q[above] + min_lp
        np.testing.assert_allclose(log_p[above], stored, atol=2 * scale + 1e-4)


def test_re_isq_changes_weight_types(model):
    before = model.weight_types()
    assert before["blk.0.attn_q.weight"] == "q4_1"
    m8 = model.re_isq("Q8_0")
    assert m8.weight_types()["blk.0.attn_q.weight"] == "q8_0"
    assert model.weight_types() == before  # the old model is unchanged
    m4 = model.re_isq(4)  # bits: insitu's default 4-bit type (rows of 576 fall back to q5_0)
    assert m4.weight_types()["blk.0.ffn_down.weight"] == "q4k"
    assert m4.chat(PROMPT, temperature=0, max_tokens=4)


def test_errors_map_to_python_exceptions(model, model_path):
    with pytest.raises(FileNotFoundError) as e:
        insitu.Model.load("/nonexistent/model.gguf")
    assert isinstance(e.value, insitu.Error) and "no such file" in str(e.value)
    with pytest.raises(ValueError) as e:
        insitu.Model.load(model_path, isq="q9x", progress=False)
    assert isinstance(e.value, insitu.InvalidArgument) and "q4k" in str(e.value)
    with pytest.raises(ValueError):
        insitu.Model.load(model_path, profile="cheapest")
    with pytest.raises(TypeError, match="unexpected keyword argument 'bogus'"):
        insitu.Model.load(model_path, bogus=1)
    with pytest.raises(ValueError, match="top_p"):
        model.generate("Hi", top_p=2.0)
    with pytest.raises(TypeError):
        model.generate("Hi", temprature=0)
    with pytest.raises(ValueError):
        model.detokenize([10**8])
    with pytest.raises(insitu.InvalidArgument):
        model.re_isq("nonsense")
    with pytest.raises(OSError):
        insitu.Model.load(os.path.dirname(model_path) + "/missing-dir/model.gguf")


def test_load_options_come_from_the_table():
    names = [s["name"] for s in insitu._core.build_option_specs()]
    assert {"isq", "quant", "imatrix", "topology", "from_uqff", "threads", "ctx"} <= set(names)
    for name in names:
        assert f"    {name}: " in insitu.Model.load.__doc__


def test_other_threads_run_during_generation(model):
    count = 0
    stop = False

    def spin():
        nonlocal count
        while not stop:
            count += 1

    t = threading.Thread(target=spin)
    t.start()
    try:
        time.sleep(0.05)
        c0 = count
        t0 = time.perf_counter()
        model.generate("Once upon a time", temperature=0, max_tokens=24, stop_at_eog=False)
        elapsed = time.perf_counter() - t0
        spun = count - c0
    finally:
        stop = True
        t.join()
    # A thread held off by the GIL would only count in 5 ms slices between tokens.
    assert elapsed > 0.05 and spun > 10000, (spun, elapsed)


def test_ctrl_c_interrupts_generation(model):
    timer = threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGINT))
    t0 = time.perf_counter()
    timer.start()
    with pytest.raises(KeyboardInterrupt):
        model.generate("Once upon a time", temperature=0, max_tokens=3000, stop_at_eog=False)
    assert time.perf_counter() - t0 < 20
    timer.join()
    assert model.generate("Hello", temperature=0, max_tokens=2)  # still usable


def test_tune_equals_cli_json(model_path, cli):
    import json
    cli_json = json.loads(subprocess.run(
        [str(cli), "tune", "--format", "gguf", "-f", str(model_path), "--max-memory", "8G",
         "--json"], check=True, capture_output=True).stdout)
    py = insitu.tune(str(model_path), max_memory="8G")
    for doc in (cli_json, py):
        doc["memory"]["system_available_bytes"] = None
    assert py == cli_json


def test_quantize_writes_gguf_and_uqff(model_path, tmp_path):
    out = tmp_path / "q8.gguf"
    r = insitu.quantize(model_path, out, "q8_0", threads=THREADS, progress=False)
    assert r["format"] == "gguf" and out.exists()
    m = insitu.Model.load(out, threads=THREADS, progress=False)
    assert m.weight_types()["blk.0.attn_q.weight"] == "q8_0"
    r = insitu.quantize(model_path, tmp_path / "uqff", "Q4K", threads=THREADS, progress=False)
    assert r["format"] == "uqff" and r["shards"]
    u = insitu.Model.load(tmp_path / "uqff", from_uqff="q4k", threads=THREADS, progress=False)
    assert u.weight_types()["blk.0.ffn_down.weight"] == "q4k"
