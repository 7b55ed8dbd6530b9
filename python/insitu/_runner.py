"""mistral.rs's Python surface on insitu: Runner, Which, the request and response classes.

Code written against ``import mistralrs`` runs with ``import insitu as mistralrs`` for what a CPU
engine does: plain (safetensors), GGUF and UQFF models, in-situ quantization and re-quantization,
chat and text completions with or without streaming, tokenization. Names, fields and defaults
follow mistralrs 0.9.5's ``__init__.pyi``; features insitu does not have (grammars, tools, web
search, adapters, vision) raise insitu.Unsupported when asked for.
"""

from __future__ import annotations

import os
import time
import uuid
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Dict, Iterator, List, Optional, Sequence, Union

from insitu import _core
from insitu._model import Model


class Architecture(Enum):
    """mistral.rs's architecture names; insitu reads the architecture from the model's config, so
    this is accepted and ignored."""

    Mistral = "mistral"
    Gemma = "gemma"
    Mixtral = "mixtral"
    Llama = "llama"
    Phi2 = "phi2"
    Phi3 = "phi3"
    Qwen2 = "qwen2"
    Gemma2 = "gemma2"
    Gemma3 = "gemma3"
    Starcoder2 = "starcoder2"
    Phi3_5MoE = "phi3.5moe"
    Qwen3 = "qwen3"


class IsqOrganization(Enum):
    """Which weights in-situ quantization converts: every linear weight (Default) or only the
    routed experts of a mixture-of-experts model (MoQE)."""

    Default = "default"
    MoQE = "moqe"


class ModelDType(Enum):
    """The dtype unquantized weights compute in; insitu computes in f32 on the CPU, so this is
    accepted and ignored."""

    Auto = "auto"
    BF16 = "bf16"
    F16 = "f16"
    F32 = "f32"


class Which:
    """Which model to load: ``Which.Plain(model_id=...)`` for a Hugging Face-style directory (or
    an org/name id in the local Hugging Face cache), ``Which.GGUF(quantized_model_id,
    quantized_filename)`` for a GGUF file. ``from_uqff`` on Plain loads prebuilt UQFF weights."""

    @dataclass
    class Plain:
        """A Hugging Face-style model directory (safetensors, or UQFF with ``from_uqff``)."""

        model_id: str
        arch: Optional[Architecture] = None
        tokenizer_json: Optional[str] = None
        topology: Optional[str] = None
        organization: Optional[IsqOrganization] = None
        write_uqff: Optional[str] = None
        from_uqff: Optional[Union[str, List[str]]] = None
        dtype: ModelDType = ModelDType.Auto
        imatrix: Optional[str] = None
        calibration_file: Optional[str] = None
        hf_cache_path: Optional[str] = None
        matformer_config_path: Optional[str] = None
        matformer_slice_name: Optional[str] = None

    @dataclass
    class GGUF:
        """A GGUF file: ``quantized_filename`` inside the directory ``quantized_model_id``.
        ``in_situ_quant`` on the Runner re-quantizes its weights while loading."""

        quantized_model_id: str
        quantized_filename: Union[str, List[str]]
        tok_model_id: Optional[str] = None
        topology: Optional[str] = None
        dtype: ModelDType = ModelDType.Auto
        tokenizer_json: Optional[str] = field(default=None, kw_only=True)
        organization: Optional[IsqOrganization] = field(default=None, kw_only=True)
        write_uqff: Optional[str] = field(default=None, kw_only=True)
        imatrix: Optional[str] = field(default=None, kw_only=True)
        calibration_file: Optional[str] = field(default=None, kw_only=True)
        hf_cache_path: Optional[str] = field(default=None, kw_only=True)


@dataclass
class ChatCompletionRequest:
    """An OpenAI-style chat request. ``messages`` is a list of {"role", "content"} dicts, or a
    string taken as an already templated prompt. Unset sampling fields mean greedy decoding with
    no filters (mistral.rs's default); ``max_tokens=None`` generates until the end of the turn
    or the context is full."""

    messages: Union[List[Dict[str, str]], str]
    model: str = "default"
    logprobs: bool = False
    n_choices: int = 1
    logit_bias: Optional[Dict[int, float]] = None
    top_logprobs: Optional[int] = None
    max_tokens: Optional[int] = None
    presence_penalty: Optional[float] = None
    frequency_penalty: Optional[float] = None
    repetition_penalty: Optional[float] = None
    stop_seqs: Optional[List[str]] = None
    temperature: Optional[float] = None
    top_p: Optional[float] = None
    top_k: Optional[int] = None
    stream: bool = False
    grammar: Optional[str] = None
    grammar_type: Optional[str] = None
    min_p: Optional[float] = None
    tool_schemas: Optional[List[str]] = None
    tool_choice: Optional[Any] = None
    dry_multiplier: Optional[float] = None
    dry_base: Optional[float] = None
    dry_allowed_length: Optional[int] = None
    dry_sequence_breakers: Optional[List[str]] = None
    web_search_options: Optional[Any] = None
    enable_thinking: Optional[bool] = None
    truncate_sequence: bool = False
    reasoning_effort: Optional[str] = None
    ignore_eos: bool = False
    seed: Optional[int] = field(default=None, kw_only=True)


@dataclass
class CompletionRequest:
    """An OpenAI-style text completion request: ``prompt`` is continued as plain text."""

    prompt: str
    model: str = "default"
    best_of: int = 1
    echo_prompt: bool = False
    presence_penalty: Optional[float] = None
    frequency_penalty: Optional[float] = None
    repetition_penalty: Optional[float] = None
    logit_bias: Optional[Dict[int, float]] = None
    max_tokens: Optional[int] = None
    n_choices: int = 1
    stop_seqs: Optional[List[str]] = None
    temperature: Optional[float] = None
    top_p: Optional[float] = None
    suffix: Optional[str] = None
    top_k: Optional[int] = None
    grammar: Optional[str] = None
    grammar_type: Optional[str] = None
    min_p: Optional[float] = None
    tool_schemas: Optional[List[str]] = None
    tool_choice: Optional[Any] = None
    dry_multiplier: Optional[float] = None
    dry_base: Optional[float] = None
    dry_allowed_length: Optional[int] = None
    dry_sequence_breakers: Optional[List[str]] = None
    truncate_sequence: bool = False
    ignore_eos: bool = False
    seed: Optional[int] = field(default=None, kw_only=True)


@dataclass
class Usage:
    """Token counts and timings of one response."""

    completion_tokens: int
    prompt_tokens: int
    total_tokens: int
    avg_tok_per_sec: float
    avg_prompt_tok_per_sec: float
    avg_compl_tok_per_sec: float
    total_time_sec: float
    total_prompt_time_sec: float
    total_completion_time_sec: float


@dataclass
class ResponseMessage:
    """The assistant's message in a chat response."""

    content: Optional[str]
    role: str
    tool_calls: Optional[List[Any]] = None
    reasoning_content: Optional[str] = None


@dataclass
class TopLogprob:
    """One of the most likely tokens at a position."""

    token: int
    logprob: float
    bytes: Optional[str]


@dataclass
class ResponseLogprob:
    """A sampled token's log-probability and the most likely alternatives."""

    token: str
    logprob: float
    bytes: Optional[List[int]]
    top_logprobs: List[TopLogprob]


@dataclass
class Logprobs:
    """Per-token log-probabilities of a choice."""

    content: Optional[List[ResponseLogprob]]


@dataclass
class Choice:
    """One answer of a chat response."""

    finish_reason: str
    index: int
    message: ResponseMessage
    logprobs: Optional[Logprobs] = None


@dataclass
class ChatCompletionResponse:
    """An OpenAI-shaped chat completion (object "chat.completion")."""

    id: str
    choices: List[Choice]
    created: int
    model: str
    system_fingerprint: str
    object: str
    usage: Usage


@dataclass
class Delta:
    """The text a streamed chunk adds."""

    content: Optional[str]
    role: str
    tool_calls: Optional[List[Any]] = None
    reasoning_content: Optional[str] = None


@dataclass
class ChunkChoice:
    """One choice of a streamed chunk; finish_reason is set on the last."""

    finish_reason: Optional[str]
    index: int
    delta: Delta
    logprobs: Optional[ResponseLogprob] = None


@dataclass
class ChatCompletionChunkResponse:
    """One streamed piece of a chat completion (object "chat.completion.chunk"); the last carries
    the usage."""

    id: str
    choices: List[ChunkChoice]
    created: int
    model: str
    system_fingerprint: str
    object: str
    usage: Optional[Usage] = None


@dataclass
class CompletionChoice:
    """One answer of a text completion."""

    finish_reason: str
    index: int
    text: str
    logprobs: Optional[Logprobs] = None


@dataclass
class CompletionResponse:
    """An OpenAI-shaped text completion (object "text_completion")."""

    id: str
    choices: List[CompletionChoice]
    created: int
    model: str
    system_fingerprint: str
    object: str
    usage: Usage


@dataclass
class CalibrationStatus:
    """Progress of online calibration (see Runner.begin_calibration)."""

    collecting: bool
    layers: int
    layers_tracking: int
    total_rows: int
    min_rows: int
    max_rows: int


_FINGERPRINT = "insitu-" + _core.__version__


def _unsupported(request: Any, names: Sequence[str]) -> None:
    for name in names:
        if getattr(request, name, None) not in (None, False):
            raise _core.Unsupported(f"{type(request).__name__}.{name}: not supported by insitu")


def _sampling(request: Any) -> Dict[str, Any]:
    # mistral.rs: an unset temperature samples greedily, unset filters are off.
    out: Dict[str, Any] = {
        "temperature": 0.0 if request.temperature is None else request.temperature,
        "top_k": 0 if request.top_k is None else request.top_k,
        "top_p": 1.0 if request.top_p is None else request.top_p,
        "min_p": 0.0 if request.min_p is None else request.min_p,
        "max_tokens": 0 if request.max_tokens is None else request.max_tokens,
        "seed": request.seed,
        "stop": list(request.stop_seqs or []),
        "stop_at_eog": not request.ignore_eos,
    }
    if request.repetition_penalty is not None:
        out["repeat_penalty"] = request.repetition_penalty
    if request.frequency_penalty is not None:
        out["frequency_penalty"] = request.frequency_penalty
    if request.presence_penalty is not None:
        out["presence_penalty"] = request.presence_penalty
    if getattr(request, "logprobs", False):
        out["logprobs"] = True
        out["top_logprobs"] = request.top_logprobs or 0
    return out


def _usage(results: Sequence["_core.GenerateResult"], wall: float) -> Usage:
    prompt = sum(r.n_prompt for r in results)
    completion = sum(r.n_generated for r in results)
    t_prompt = sum(r.prefill_seconds for r in results)
    t_completion = sum(r.decode_seconds for r in results)

    def rate(n: int, t: float) -> float:
        return n / t if t > 0 else 0.0

    return Usage(completion_tokens=completion, prompt_tokens=prompt,
                 total_tokens=prompt + completion,
                 avg_tok_per_sec=rate(prompt + completion, wall),
                 avg_prompt_tok_per_sec=rate(prompt, t_prompt),
                 avg_compl_tok_per_sec=rate(completion, t_completion), total_time_sec=wall,
                 total_prompt_time_sec=t_prompt, total_completion_time_sec=t_completion)


class Runner:
    """A loaded model answering mistral.rs-style requests. Thread-safe: requests from several
    threads run concurrently (each on its own session, sharing the model and worker threads).

    ``which`` selects the model; ``in_situ_quant`` quantizes it while loading: a type ("Q4K",
    "q4k", "Q8_0"), bits (4) or "auto" (what insitu.tune recommends). The other mistral.rs
    arguments are accepted; those about GPUs, paged attention or prefix caches have no effect on
    this CPU engine. insitu's own: ``threads`` (0: every CPU), ``ctx`` (each session's context,
    default 4096) and ``progress`` (progress bars on a terminal). The GIL is released while the
    model loads and while requests generate.
    """

    def __init__(self, which: Union[Which.Plain, Which.GGUF], max_seqs: int = 32,
                 no_kv_cache: bool = False, prefix_cache_n: int = 16,
                 token_source: str = "cache", chat_template: Optional[str] = None,
                 jinja_explicit: Optional[str] = None,
                 num_device_layers: Optional[List[str]] = None,
                 in_situ_quant: Optional[Union[str, int]] = None,
                 anymoe_config: Optional[Any] = None, memory_goal: Optional[Any] = None,
                 pa_blk_size: Optional[int] = None, pa_cache_type: Optional[Any] = None,
                 no_paged_attn: bool = False, paged_attn: bool = False,
                 seed: Optional[int] = None, *, threads: int = 0, ctx: Optional[int] = None,
                 progress: bool = True, **unsupported: Any) -> None:
        for name, value in unsupported.items():
            if value not in (None, False):
                raise _core.Unsupported(f"Runner({name}=...): not supported by insitu")
        if anymoe_config is not None:
            raise _core.Unsupported("Runner(anymoe_config=...): not supported by insitu")
        if chat_template is not None or jinja_explicit is not None:
            raise _core.Unsupported("Runner(chat_template/jinja_explicit): insitu uses the "
                                    "model's own template")
        options: Dict[str, Any] = {"threads": threads, "ctx": ctx, "progress": progress}
        if isinstance(which, Which.GGUF):
            files = which.quantized_filename
            if not isinstance(files, str):
                if len(files) != 1:
                    raise _core.Unsupported("Which.GGUF: split GGUF files are not supported")
                files = files[0]
            path = os.path.join(which.quantized_model_id, files)
            if not os.path.exists(path) and os.path.exists(files):
                path = files
        elif isinstance(which, Which.Plain):
            path = which.model_id
            if which.from_uqff is not None:
                uqff = which.from_uqff
                options["from_uqff"] = uqff if isinstance(uqff, str) else ";".join(map(str, uqff))
        else:
            raise _core.Unsupported(f"Runner: {type(which).__name__} models are not supported; "
                                    "use Which.Plain or Which.GGUF")
        options["topology"] = which.topology
        options["imatrix"] = which.imatrix
        options["calibration_file"] = which.calibration_file
        if which.organization is not None:
            options["isq_organization"] = IsqOrganization(which.organization).value
        if in_situ_quant is not None:
            key = "quant" if str(in_situ_quant).lower() == "auto" else "isq"
            options[key] = in_situ_quant
        if which.write_uqff is not None:
            if in_situ_quant is None:
                raise _core.InvalidArgument("write_uqff needs in_situ_quant (the type to write)")
            from insitu._tools import quantize
            quantize(path, which.write_uqff, in_situ_quant,
                     **{k: v for k, v in options.items() if k not in ("isq", "quant", "ctx")})
        self._model_id = os.path.basename(os.path.normpath(path))
        self._seed = seed
        self._model = Model.load(path, **options)

    @property
    def model(self) -> Model:
        """The insitu.Model requests run on now (send_re_isq replaces it)."""
        return self._model

    def _check_model(self, model_id: Optional[str]) -> Model:
        if model_id is not None and model_id not in (self._model_id, "default"):
            raise _core.InvalidArgument(f"model '{model_id}' not loaded; loaded: {self._model_id}")
        return self._model

    def _logprobs(self, model: Model, events: Sequence[Any]) -> Logprobs:
        content = []
        for e in events:
            if e.token < 0:
                continue
            piece = model.detokenize([e.token], render_special=True)
            tops = [TopLogprob(token=t, logprob=lp,
                               bytes=model.detokenize([t], render_special=True))
                    for t, lp in e.top_logprobs]
            content.append(ResponseLogprob(token=piece, logprob=e.logprob,
                                           bytes=list(piece.encode()), top_logprobs=tops))
        return Logprobs(content=content)

    def _run(self, model: Model, prompt: List[int], sampling: Dict[str, Any], index: int,
             ) -> "tuple[Any, Optional[Logprobs]]":
        s = dict(sampling)
        if s.get("seed") is None and self._seed is not None:
            s["seed"] = self._seed + index
        if s.get("logprobs"):
            stream = model.stream(prompt, **s)
            events = list(stream)
            return stream.result, self._logprobs(model, events)
        return model.complete(prompt, **s), None

    def send_chat_completion_request(
        self, request: ChatCompletionRequest, model_id: Optional[str] = None
    ) -> Union[ChatCompletionResponse, Iterator[ChatCompletionChunkResponse]]:
        """Answers a chat request: a ChatCompletionResponse, or with ``request.stream`` an
        iterator of ChatCompletionChunkResponse whose deltas concatenate to the answer (the last
        chunk carries finish_reason and usage)."""
        _unsupported(request, ["logit_bias", "grammar", "tool_schemas", "tool_choice",
                               "dry_multiplier", "web_search_options"])
        model = self._check_model(model_id)
        if isinstance(request.messages, str):
            prompt = model.tokenize(request.messages, add_special=True, parse_special=True)
        else:
            prompt = model.chat_prompt(request.messages)
        sampling = _sampling(request)
        rid = "chatcmpl-" + uuid.uuid4().hex
        created = int(time.time())
        if request.stream:
            return self._chat_chunks(model, prompt, sampling, rid, created)
        t0 = time.perf_counter()
        results, choices = [], []
        for i in range(max(1, request.n_choices)):
            r, lp = self._run(model, prompt, sampling, i)
            results.append(r)
            choices.append(Choice(finish_reason=r.finish_reason, index=i,
                                  message=ResponseMessage(content=r.text, role="assistant"),
                                  logprobs=lp))
        return ChatCompletionResponse(id=rid, choices=choices, created=created,
                                      model=self._model_id, system_fingerprint=_FINGERPRINT,
                                      object="chat.completion",
                                      usage=_usage(results, time.perf_counter() - t0))

    def _chat_chunks(self, model: Model, prompt: List[int], sampling: Dict[str, Any], rid: str,
                     created: int) -> Iterator[ChatCompletionChunkResponse]:
        t0 = time.perf_counter()
        stream = model.stream(prompt, **sampling)
        try:
            for e in stream:
                if not e.text and not e.is_last:
                    continue
                lp = None
                if sampling.get("logprobs") and e.token >= 0:
                    lp = self._logprobs(model, [e]).content[0]  # type: ignore[index]
                yield ChatCompletionChunkResponse(
                    id=rid, created=created, model=self._model_id,
                    system_fingerprint=_FINGERPRINT, object="chat.completion.chunk",
                    choices=[ChunkChoice(finish_reason=e.finish_reason, index=0,
                                         delta=Delta(content=e.text, role="assistant"),
                                         logprobs=lp)],
                    usage=_usage([stream.result], time.perf_counter() - t0) if e.is_last
                    else None)
        finally:
            stream.cancel()

    def send_completion_request(self, request: CompletionRequest,
                                model_id: Optional[str] = None) -> CompletionResponse:
        """Continues ``request.prompt`` as plain text: a CompletionResponse (the prompt echoed
        first with ``echo_prompt``, ``suffix`` appended)."""
        _unsupported(request, ["logit_bias", "grammar", "tool_schemas", "tool_choice",
                               "dry_multiplier"])
        model = self._check_model(model_id)
        prompt = model.tokenize(request.prompt, add_special=True)
        sampling = _sampling(request)
        t0 = time.perf_counter()
        results, choices = [], []
        for i in range(max(1, request.n_choices)):
            r, _ = self._run(model, prompt, sampling, i)
            results.append(r)
            text = (request.prompt if request.echo_prompt else "") + r.text + (request.suffix or "")
            choices.append(CompletionChoice(finish_reason=r.finish_reason, index=i, text=text))
        return CompletionResponse(id="cmpl-" + uuid.uuid4().hex, choices=choices,
                                  created=int(time.time()), model=self._model_id,
                                  system_fingerprint=_FINGERPRINT, object="text_completion",
                                  usage=_usage(results, time.perf_counter() - t0))

    def send_re_isq(self, dtype: Union[str, int], model_id: Optional[str] = None) -> None:
        """Re-quantizes the model's weights to ``dtype`` ("Q4K", "q8_0", 8, a mix) from their
        original source; requests already running finish on the old weights, later ones use the
        new."""
        self._model = self._check_model(model_id).re_isq(dtype)

    def tokenize_text(self, text: str, add_special_tokens: bool,
                      enable_thinking: Optional[bool] = None,
                      model_id: Optional[str] = None) -> List[int]:
        """Token ids of raw ``text`` (no chat template); ``add_special_tokens`` adds BOS as the
        model does. ``enable_thinking`` is accepted for compatibility."""
        return self._check_model(model_id).tokenize(text, add_special=add_special_tokens,
                                                    parse_special=True)

    def detokenize_text(self, tokens: List[int], skip_special_tokens: bool,
                        model_id: Optional[str] = None) -> str:
        """The text of ``tokens``; control tokens' text is left out with
        ``skip_special_tokens``."""
        return self._check_model(model_id).detokenize(tokens,
                                                      render_special=not skip_special_tokens)

    def max_sequence_length(self, model_id: Optional[str] = None) -> Optional[int]:
        """The context a session gets, in tokens."""
        return self._check_model(model_id).ctx

    def list_models(self) -> List[str]:
        """The loaded model's id (one model per Runner)."""
        return [self._model_id]

    def get_default_model_id(self) -> Optional[str]:
        """The loaded model's id."""
        return self._model_id

    def is_model_loaded(self, model_id: str) -> bool:
        """Whether ``model_id`` is the loaded model."""
        return model_id == self._model_id
