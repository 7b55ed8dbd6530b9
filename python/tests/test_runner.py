"""mistral.rs's surface (Runner, Which, requests, OpenAI-shaped responses) on insitu."""

import dataclasses

import pytest

import insitu
from insitu import ChatCompletionRequest, CompletionRequest, Runner, Which
from conftest import THREADS

MESSAGES = [{"role": "user", "content": "Name three colours of the rainbow."}]


@pytest.fixture(scope="module")
def runner(model_path):
    return Runner(which=Which.GGUF(quantized_model_id=str(model_path.parent),
                                   quantized_filename=model_path.name),
                  threads=THREADS, progress=False)


def test_chat_completion_is_openai_shaped(runner, model):
    r = runner.send_chat_completion_request(ChatCompletionRequest(
        messages=MESSAGES, model="default", max_tokens=12, temperature=0.0))
    assert r.object == "chat.completion" and r.id.startswith("chatcmpl-")
    choice = r.choices[0]
    assert choice.index == 0 and choice.finish_reason in ("stop", "length")
    assert choice.message.role == "assistant"
    assert choice.message.content == model.chat(MESSAGES, temperature=0, max_tokens=12)
    u = r.usage
    assert u.completion_tokens > 0 and u.prompt_tokens > 0
    assert u.total_tokens == u.prompt_tokens + u.completion_tokens
    assert {f.name for f in dataclasses.fields(u)} >= {"avg_tok_per_sec", "total_time_sec"}


def test_streamed_chunks_concatenate(runner):
    req = ChatCompletionRequest(messages=MESSAGES, model="default", max_tokens=24,
                                temperature=0.0)
    whole = runner.send_chat_completion_request(req).choices[0].message.content
    chunks = list(runner.send_chat_completion_request(dataclasses.replace(req, stream=True)))
    assert all(c.object == "chat.completion.chunk" for c in chunks)
    assert "".join(c.choices[0].delta.content for c in chunks) == whole
    assert chunks[-1].choices[0].finish_reason in ("stop", "length")
    assert chunks[-1].usage is not None and chunks[0].usage is None


def test_completion_request(runner, model):
    r = runner.send_completion_request(CompletionRequest(
        prompt="The capital of France is", model="default", max_tokens=8, temperature=0.0,
        echo_prompt=True))
    assert r.object == "text_completion"
    text = model.generate("The capital of France is", temperature=0, max_tokens=8)
    assert r.choices[0].text == "The capital of France is" + text
    assert r.choices[0].finish_reason == "length" and r.usage.completion_tokens == 8


def test_logprobs(runner):
    r = runner.send_chat_completion_request(ChatCompletionRequest(
        messages=MESSAGES, model="default", max_tokens=4, temperature=0.0, logprobs=True,
        top_logprobs=3))
    content = r.choices[0].logprobs.content
    assert len(content) == 4 and len(content[0].top_logprobs) == 3
    assert content[0].top_logprobs[0].logprob >= content[0].top_logprobs[1].logprob


def test_tokenize_detokenize(runner):
    ids = runner.tokenize_text("Hello, world!", add_special_tokens=False)
    assert runner.detokenize_text(ids, skip_special_tokens=True) == "Hello, world!"


@pytest.mark.parametrize("spec, expect", [("Q4K", "q4k"), ("q8_0", "q8_0"), (4, "q4k")])
def test_in_situ_quant_and_re_isq(model_path, spec, expect):
    r = Runner(which=Which.GGUF(str(model_path.parent), model_path.name), in_situ_quant=spec,
               threads=THREADS, progress=False)
    # ffn_down's rows (1536) take every type's blocks; attn_q's (576) not the k-quants'.
    assert r.model.weight_types()["blk.0.ffn_down.weight"] == expect
    r.send_re_isq("Q5K")
    assert r.model.weight_types()["blk.0.ffn_down.weight"] == "q5k"
    out = r.send_chat_completion_request(ChatCompletionRequest(
        messages=MESSAGES, model="default", max_tokens=4, temperature=0.0))
    assert out.choices[0].message.content


def test_auto_quant(model_path):
    r = Runner(which=Which.GGUF(str(model_path.parent), model_path.name), in_situ_quant="auto",
               threads=THREADS, progress=False)
    assert r.model.info["weight_types"]  # a 135M model fits: the weights as stored


def test_unsupported_and_bad_arguments(runner, model_path):
    with pytest.raises(ValueError):
        runner.send_chat_completion_request(ChatCompletionRequest(
            messages=MESSAGES, model="default", grammar="root ::= 'a'"))
    with pytest.raises(ValueError):
        Runner(which=Which.GGUF(str(model_path.parent), model_path.name), in_situ_quant="Q9K")
    with pytest.raises(FileNotFoundError):
        Runner(which=Which.GGUF("/nonexistent", "model.gguf"))
    with pytest.raises(insitu.InvalidArgument):
        runner.send_re_isq("nonsense")
