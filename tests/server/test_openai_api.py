"""`insitu serve` through the official openai client: chat and completions, streamed and not,
usage, stop, logprobs, n, prefix reuse, tokenize/detokenize, metrics."""
import math

import openai
import pytest

MODEL = "smollm2"
QUESTION = [{"role": "user", "content": "What is the capital of France?"}]


def chat(client, messages=QUESTION, **kw):
    kw.setdefault("max_tokens", 8)
    kw.setdefault("temperature", 0)
    return client.chat.completions.create(model=MODEL, messages=messages, **kw)


def test_health_and_models(server, client):
    assert server.request("GET", "/health", auth=False) == (200, {"status": "ok"})
    models = client.models.list()
    assert [m.id for m in models.data] == [MODEL]


def test_chat_non_streamed(client):
    r = chat(client)
    assert r.object == "chat.completion"
    assert r.model == MODEL
    assert len(r.choices) == 1
    c = r.choices[0]
    assert c.message.role == "assistant"
    assert c.message.content
    # The answer may end before max_tokens (after /re_isq the weights differ).
    assert c.finish_reason in ("length", "stop")
    n = r.usage.completion_tokens
    assert n == 8 if c.finish_reason == "length" else 1 <= n <= 8
    assert r.usage.prompt_tokens > 5
    assert r.usage.total_tokens == r.usage.prompt_tokens + n


def test_chat_streamed_equals_non_streamed(client):
    r = chat(client)
    whole = r.choices[0].message.content
    stream = chat(client, stream=True, stream_options={"include_usage": True})
    text, reasons, usage = "", [], None
    for chunk in stream:
        if chunk.usage:
            usage = chunk.usage
        for c in chunk.choices:
            text += c.delta.content or ""
            if c.finish_reason:
                reasons.append(c.finish_reason)
    assert text == whole
    assert reasons == [r.choices[0].finish_reason]
    assert usage is not None and usage.completion_tokens == r.usage.completion_tokens


def test_completions_streamed_and_not(client):
    r = client.completions.create(model=MODEL, prompt="Once upon a time", max_tokens=8,
                                  temperature=0)
    assert r.object == "text_completion"
    assert r.choices[0].text
    assert r.usage.completion_tokens == 8
    text = "".join(c.choices[0].text for c in client.completions.create(
        model=MODEL, prompt="Once upon a time", max_tokens=8, temperature=0, stream=True)
        if c.choices)
    assert text == r.choices[0].text


def test_stop_string(client):
    full = client.completions.create(model=MODEL, prompt="1, 2, 3, 4,", max_tokens=12,
                                     temperature=0).choices[0].text
    # Stop at the second word of the greedy continuation: the text ends just before it.
    words = full.split()
    assert len(words) >= 3, full
    stop = " " + words[2]
    cut = full.index(stop)
    r = client.completions.create(model=MODEL, prompt="1, 2, 3, 4,", max_tokens=12,
                                  temperature=0, stop=[stop])
    assert r.choices[0].finish_reason == "stop"
    assert r.choices[0].text == full[:cut]


def test_eog_finish_reason(client):
    r = chat(client, [{"role": "user", "content": "Say hi."}], max_tokens=200)
    assert r.choices[0].finish_reason in ("stop", "length")


def test_chat_logprobs(client):
    r = chat(client, logprobs=True, top_logprobs=3, max_tokens=5)
    lp = r.choices[0].logprobs.content
    assert len(lp) == 5
    assert "".join(t.token for t in lp) == r.choices[0].message.content
    for t in lp:
        assert t.logprob <= 0
        assert len(t.top_logprobs) == 3
        # Greedy: the chosen token is the most likely one.
        assert math.isclose(t.logprob, t.top_logprobs[0].logprob, rel_tol=1e-4, abs_tol=1e-4)
        assert t.top_logprobs[0].logprob >= t.top_logprobs[1].logprob >= t.top_logprobs[2].logprob


def test_chat_logprobs_streamed(client):
    tokens = []
    for chunk in chat(client, logprobs=True, top_logprobs=2, max_tokens=4, stream=True):
        for c in chunk.choices:
            if c.logprobs and c.logprobs.content:
                tokens += c.logprobs.content
    assert len(tokens) == 4
    assert all(len(t.top_logprobs) == 2 for t in tokens)


def test_completions_logprobs(client):
    r = client.completions.create(model=MODEL, prompt="The sky is", max_tokens=4, temperature=0,
                                  logprobs=2)
    lp = r.choices[0].logprobs
    assert len(lp.tokens) == 4 and len(lp.token_logprobs) == 4 and len(lp.top_logprobs) == 4
    assert "".join(lp.tokens) == r.choices[0].text


def test_n_choices_and_seed(client):
    r = chat(client, n=2, max_tokens=6, temperature=0.9, seed=7)
    assert [c.index for c in r.choices] == [0, 1]
    again = chat(client, n=2, max_tokens=6, temperature=0.9, seed=7)
    assert [c.message.content for c in again.choices] == [c.message.content for c in r.choices]
    assert r.usage.completion_tokens <= 12


def test_sampling_fields_accepted(client):
    r = chat(client, max_completion_tokens=4, temperature=0.7, top_p=0.9, seed=1,
             frequency_penalty=0.5, presence_penalty=0.5,
             extra_body={"top_k": 20, "min_p": 0.1, "repetition_penalty": 1.1})
    assert r.usage.completion_tokens == 4


def test_prefix_reuse_across_turns(client):
    first = chat(client, [{"role": "user", "content": "Name a colour of the rainbow."}])
    messages = [{"role": "user", "content": "Name a colour of the rainbow."},
                {"role": "assistant", "content": first.choices[0].message.content},
                {"role": "user", "content": "Name another one."}]
    second = chat(client, messages)
    cached = second.usage.prompt_tokens_details.cached_tokens
    assert cached >= first.usage.prompt_tokens - 1, second.usage


def test_tokenize_detokenize(server):
    status, body = server.request("POST", "/tokenize", {"content": "Hello world"})
    assert status == 200 and body["tokens"]
    status, back = server.request("POST", "/detokenize", {"tokens": body["tokens"]})
    assert status == 200 and back["content"] == "Hello world"


def test_metrics(server, client):
    chat(client, max_tokens=2)
    for name in ("insitu_generated_tokens_total", "insitu_prompt_tokens_total",
                 "insitu_queue_depth", "insitu_slots_busy", "insitu_kv_cache_bytes",
                 "insitu_decode_tokens_per_second"):
        server.metric(name)
    assert server.metric("insitu_generated_tokens_total") >= 2


def test_chat_page(server):
    status, page = server.request("GET", "/")
    assert status == 200
    assert "<html" in page and "/v1/chat/completions" in page
    assert "http://" not in page.replace("http://127", "") and "https://" not in page  # no CDN
