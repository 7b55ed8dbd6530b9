"""`insitu serve` under faults and load: every 4xx with its OpenAI error object, the API key,
concurrent streaming clients against their solo greedy text, disconnects, /re_isq during load,
503 when saturated, SIGTERM."""
import concurrent.futures
import http.client
import json
import os
import socket
import threading
import time

import openai
import pytest

from conftest import API_KEY, MAX_BODY, ServerProcess

MODEL = "smollm2"
N_CLIENTS = int(os.environ.get("INSITU_SERVE_TEST_CLIENTS", "8"))


def assert_error(status_body, status, param=None):
    got, body = status_body
    assert got == status, body
    assert set(body["error"]) >= {"message", "type", "param", "code"}, body
    assert body["error"]["message"]
    if param:
        assert body["error"]["param"] == param, body


def test_errors_have_their_status(server, client):
    chat = "/v1/chat/completions"
    msgs = [{"role": "user", "content": "hi"}]
    assert_error(server.request("POST", chat, b'{"model": "smollm2", "messages": [ '), 400)
    assert_error(server.request("POST", chat, b"not json at all"), 400)
    assert_error(server.request("POST", chat, [1, 2]), 400)
    assert_error(server.request("POST", chat, {"messages": "hi"}), 400, "messages")
    assert_error(server.request("POST", chat, {"messages": msgs, "temperature": "hot"}), 400,
                 "temperature")
    assert_error(server.request("POST", chat, {"messages": msgs, "temperature": 9}), 400,
                 "temperature")
    assert_error(server.request("POST", chat, {"messages": msgs, "max_tokens": -1}), 400,
                 "max_tokens")
    assert_error(server.request("POST", chat, {"messages": msgs, "max_tokens": 10**12}), 400,
                 "max_tokens")
    assert_error(server.request("POST", chat, {"messages": msgs, "n": 99}), 400)
    assert_error(server.request("POST", chat, {"messages": msgs, "stop": 5}), 400, "stop")
    assert_error(server.request("POST", "/v1/completions", {"prompt": 3}), 400, "prompt")
    assert_error(server.request("POST", chat, {"model": "gpt-4", "messages": msgs}), 404, "model")
    assert_error(server.request("GET", "/v1/nothing-here"), 404)
    assert_error(server.request("POST", chat, b"x" * (MAX_BODY + 10)), 413)
    # The openai client maps them to its exceptions.
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model=MODEL, messages=msgs, top_p=5)
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="nope", messages=msgs)
    # Nothing broke: a later request succeeds.
    r = client.chat.completions.create(model=MODEL, messages=msgs, max_tokens=2, temperature=0)
    assert r.usage.completion_tokens == 2


def test_truncated_body(server):
    # Content-Length promises more than is sent, then the client goes away.
    with socket.create_connection(("127.0.0.1", server.port)) as s:
        s.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n"
                  b"Authorization: Bearer " + API_KEY.encode() + b"\r\n\r\n{\"prompt\":")
    status, body = server.request("POST", "/v1/completions",
                                  {"prompt": "Hi", "max_tokens": 1, "temperature": 0})
    assert status == 200, body


def test_api_key_required_everywhere_but_health(server):
    routes = [("GET", "/"), ("GET", "/metrics"), ("GET", "/v1/models"),
              ("POST", "/v1/chat/completions"), ("POST", "/v1/completions"),
              ("POST", "/tokenize"), ("POST", "/detokenize"), ("GET", "/re_isq"),
              ("POST", "/re_isq"), ("POST", "/v1/models/tune"), ("GET", "/no-such-route")]
    for method, path in routes:
        assert_error(server.request(method, path, {} if method == "POST" else None, auth=False),
                     401)
        assert_error(server.request(method, path, {} if method == "POST" else None, auth=False,
                                    headers={"Authorization": "Bearer wrong"}), 401)
    assert server.request("GET", "/health", auth=False)[0] == 200
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=server.base_url + "/v1", api_key="wrong",
                      max_retries=0).models.list()


PROMPTS = [f"Write one sentence about the number {i}." for i in range(16)]


def stream_text(client, prompt, max_tokens):
    text = ""
    for chunk in client.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": prompt}], max_tokens=max_tokens,
            temperature=0, stream=True):
        for c in chunk.choices:
            text += c.delta.content or ""
    return text


def test_concurrent_streams_match_solo_greedy(server, client):
    prompts = PROMPTS[:N_CLIENTS]
    solo = [client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": p}], max_tokens=8,
        temperature=0).choices[0].message.content for p in prompts]
    with concurrent.futures.ThreadPoolExecutor(len(prompts)) as pool:
        together = list(pool.map(lambda p: stream_text(client, p, 8), prompts))
    assert together == solo


def open_stream(server, max_tokens=400):
    """A raw streaming request; returns the connection after the first content chunk."""
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=120)
    conn.request("POST", "/v1/completions", body=json.dumps(
        {"model": MODEL, "prompt": "1, 2, 3, 4, 5, 6,", "max_tokens": max_tokens,
         "temperature": 0, "stream": True}),
        headers={"Authorization": f"Bearer {API_KEY}", "Content-Type": "application/json"})
    r = conn.getresponse()
    assert r.status == 200
    while True:
        line = r.fp.readline()
        assert line, "stream ended early"
        if line.startswith(b"data: {"):
            return conn


def wait_metric(server, name, value, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if server.metric(name) == value:
            return
        time.sleep(0.2)
    raise AssertionError(f"{name} != {value} after {timeout} s: {server.metric(name)}")


def test_disconnect_frees_slot(server, client):
    wait_metric(server, "insitu_slots_busy", 0)
    conns = [open_stream(server) for _ in range(2)]
    assert server.metric("insitu_slots_busy") == 2
    for c in conns:
        c.sock.shutdown(socket.SHUT_RDWR)
        c.close()
    wait_metric(server, "insitu_slots_busy", 0, timeout=30)
    r = client.completions.create(model=MODEL, prompt="Hi", max_tokens=2, temperature=0)
    assert r.usage.completion_tokens == 2


def test_re_isq_during_load(server, client):
    # A bad type changes nothing.
    before = server.request("GET", "/re_isq")[1]
    assert_error(server.request("POST", "/re_isq", {"ggml_type": "q9_9"}), 400, "ggml_type")
    assert_error(server.request("POST", "/re_isq", {"ggml_type": 4}), 400, "ggml_type")
    assert server.request("GET", "/re_isq")[1] == before
    types_before = client.models.list().data[0].model_extra["meta"]["weight_types"]

    with concurrent.futures.ThreadPoolExecutor(3) as pool:
        running = [pool.submit(stream_text, client, p, 12) for p in PROMPTS[:3]]
        time.sleep(0.5)
        status, body = server.request("POST", "/re_isq", {"ggml_type": "Q8_0"})
        assert status == 202, body
        deadline = time.time() + 120
        while True:
            status, body = server.request("GET", "/re_isq")
            if body["status"] != "running":
                break
            assert time.time() < deadline, body
            time.sleep(0.3)
        assert body["status"] == "done", body
        texts = [f.result() for f in running]
    assert all(texts)
    types_after = client.models.list().data[0].model_extra["meta"]["weight_types"]
    assert types_after != types_before and "q8_0" in types_after
    # New requests run on the new weights.
    r = client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "Hi"}],
                                       max_tokens=3, temperature=0)
    assert r.usage.completion_tokens == 3


def test_tune_route(server):
    status, body = server.request("POST", "/v1/models/tune", {"ctx": 1024})
    assert status == 200, body
    assert body["candidates"] and "recommended_isq" in body
    assert_error(server.request("POST", "/v1/models/tune", {"profile": "fastest"}), 400)


def test_saturated_is_503_and_sigterm_exits_0():
    s = ServerProcess("--parallel", "1", "--max-queue", "1", "--ctx-size", "512",
                      "--served-model-name", MODEL)
    try:
        busy = open_stream(s, max_tokens=300)  # holds the one slot
        results = {}

        def queued():
            results["queued"] = s.request("POST", "/v1/completions",
                                          {"prompt": "Hi", "max_tokens": 1, "temperature": 0})

        t = threading.Thread(target=queued)
        t.start()
        deadline = time.time() + 30
        while s.metric("insitu_queue_depth") < 1:
            assert time.time() < deadline
            time.sleep(0.1)
        assert_error(s.request("POST", "/v1/completions", {"prompt": "Hi", "max_tokens": 1}), 503)
        busy.close()
        t.join(120)
        assert results["queued"][0] == 200, results
        # SIGTERM while a stream runs: it finishes (or is cancelled after the grace), exit 0.
        busy = open_stream(s, max_tokens=5)
    finally:
        code = s.stop()
    assert code == 0, s.output()[-3000:]
    assert "SIGTERM received" in s.output()


def wait_re_isq(server, timeout=120):
    deadline = time.time() + timeout
    while True:
        status, body = server.request("GET", "/re_isq")
        if body["status"] != "running":
            return body
        assert time.time() < deadline, body
        time.sleep(0.3)


def test_online_calibration(server, client, tmp_path):
    wait_re_isq(server)
    assert server.request("POST", "/calibration/start", {})[0] == 200
    client.completions.create(model=MODEL, prompt="The quick brown fox jumps over the lazy dog.",
                              max_tokens=2, temperature=0)
    status, body = server.request("GET", "/calibration/status")
    assert body["status"] == "collecting" and body["tokens"] > 0 and body["weights"] > 0, body
    assert_error(server.request("POST", "/calibration/apply", {"ggml_type": "q7x"}), 400)
    path = tmp_path / "live.imatrix.gguf"
    status, body = server.request("POST", "/calibration/apply",
                                  {"save_imatrix": str(path), "ggml_type": "q4k"})
    assert status == 202, body
    assert wait_re_isq(server)["status"] == "done"
    assert path.read_bytes()[:4] == b"GGUF"
    r = client.completions.create(model=MODEL, prompt="Hi", max_tokens=2, temperature=0)
    assert r.usage.completion_tokens == 2
