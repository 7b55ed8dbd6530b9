"""The Pythonic surface: insitu.Model."""

from __future__ import annotations

import os
from typing import Any, Dict, Iterator, List, Mapping, Optional, Sequence, Union

import numpy as np

from insitu import _core

Messages = Union[str, Sequence[Mapping[str, str]]]
Prompt = Union[str, Sequence[int]]
QuantSpec = Union[str, int]


def quant_types() -> List[str]:
    """Every quantization type's frozen lower-case name ("q4k", "iq4_xs", "hqq4", ...), in the
    order of the library's type table. Any of mistral.rs's or ggml's spellings ("Q4K", "Q4_K") and
    the bit shorthands (2 3 4 5 6 8) are accepted wherever a type is."""
    return _core.quant_types()


def set_log_level(level: str) -> None:
    """Sets the library's log level: "trace", "debug", "info", "warning", "error", "critical" or
    "off" (raises insitu.InvalidArgument for anything else)."""
    _core.set_log_level(level)


def _option_table() -> str:
    lines = []
    for spec in _core.build_option_specs():
        default = f" (default {spec['default']})" if spec["default"] else ""
        lines.append(f"    {spec['name']}: {spec['help']}{default}")
    return "\n".join(lines)


def _messages(messages: Messages, system: Optional[str]) -> List[Dict[str, str]]:
    if isinstance(messages, str):
        out = [{"role": "user", "content": messages}]
    else:
        out = [{"role": str(m["role"]), "content": str(m["content"])} for m in messages]
    if system is not None:
        out.insert(0, {"role": "system", "content": system})
    return out


def _texts(stream: "_core.TokenStream") -> Iterator[str]:
    try:
        for event in stream:
            if event.text:
                yield event.text
    finally:
        stream.cancel()


class Model:
    """A loaded model: configuration, tokenizer, chat template and weights, immutable after
    loading and safe to use from many threads at once (each call runs its own session).

    Build one with :meth:`Model.load`. :meth:`re_isq` returns a new Model; sessions already
    running on this one finish on the weights they started with.
    """

    def __init__(self, handle: "_core.Model") -> None:
        """Wraps a handle from the extension module; use :meth:`Model.load` instead."""
        self._handle = handle

    @classmethod
    def load(cls, path: Union[str, "os.PathLike[str]"], quant: Optional[QuantSpec] = None,
             **options: Any) -> "Model":
        """Loads a model the way ``insitu run`` does.

        ``path`` is a .gguf file, a Hugging Face-style directory (safetensors or UQFF), or an
        org/name id found in the local Hugging Face cache. ``quant`` is bits (4), a type ("q4k",
        "Q4K") or "auto": a prebuilt UQFF of that type beside the model when there is one, else
        in-situ quantization; "auto" picks what :func:`insitu.tune` recommends.

        The other keyword arguments are the library's build options (include/insitu/options.h),
        named as the CLI's flags with '_' for '-'; None keeps the default. ``progress=False``
        hides the progress bars (shown only on a terminal). The GIL is released while loading.
        Raises TypeError for an unknown keyword, insitu.InvalidArgument (a ValueError) for a bad
        value, insitu.NotFound (a FileNotFoundError) for a missing path.

        Options:
        """
        opts = dict(options)
        if quant is not None:
            opts["quant"] = quant
        return cls(_core.Model.load(os.fspath(path), opts))

    # Generated from the library's option table, so the list cannot drift from the CLI's flags.
    load.__func__.__doc__ += "\n" + _option_table() + "\n"  # type: ignore[attr-defined, operator]

    @property
    def info(self) -> Dict[str, Any]:
        """What the model is and holds: name, architecture, path, n_layer, n_embd, n_vocab,
        n_ctx_train, n_params, weight_bytes, weight_types (the types held, most bytes first),
        has_chat_template and isq (the in-situ quantization applied, or None)."""
        return self._handle.info()

    @property
    def ctx(self) -> int:
        """The context, in tokens, of the sessions generation runs on (load's ``ctx``)."""
        return self._handle.ctx

    def weight_types(self) -> Dict[str, str]:
        """Every weight's type by its GGUF name ({"blk.0.attn_q.weight": "q4k", ...})."""
        return self._handle.weight_types()

    def tokenize(self, text: str, add_special: bool = True,
                 parse_special: bool = False) -> List[int]:
        """Token ids of ``text``. ``add_special`` adds BOS (and EOS) as the model's metadata says;
        ``parse_special`` recognises control-token strings inside the text."""
        return self._handle.tokenize(text, add_special, parse_special)

    def detokenize(self, tokens: Sequence[int], render_special: bool = False) -> str:
        """The text of ``tokens`` (malformed UTF-8 replaced by U+FFFD). ``render_special`` keeps
        control tokens' text."""
        return self._handle.detokenize(list(tokens), render_special)

    def chat_prompt(self, messages: Messages, system: Optional[str] = None,
                    add_generation_prompt: bool = True) -> List[int]:
        """The token ids a conversation gives this model: its chat template rendered, control
        tokens parsed, BOS de-duplicated (raises insitu.InvalidArgument without a template)."""
        return self._handle.chat_tokens(_messages(messages, system), add_generation_prompt)

    def logits(self, tokens: Prompt) -> np.ndarray:
        """Logits after every token of ``tokens`` (text is tokenized with BOS): a float32 array
        of shape [len(tokens), n_vocab], owned by NumPy without a copy. Runs a fresh session with
        the GIL released."""
        ids = self.tokenize(tokens) if isinstance(tokens, str) else list(tokens)
        return self._handle.logits(ids)

    def _prompt(self, prompt: Prompt, add_special: bool) -> List[int]:
        if isinstance(prompt, str):
            return self.tokenize(prompt, add_special=add_special, parse_special=False)
        return list(prompt)

    def complete(self, prompt: Prompt, *, add_special: bool = True,
                 **sampling: Any) -> "_core.GenerateResult":
        """Generates a continuation of ``prompt`` (text, or token ids used as they are) and
        returns the whole result: text, tokens, finish_reason and timings.

        Sampling keywords: max_tokens (256), temperature (0.8; 0 is greedy), top_k (40), top_p
        (0.95), min_p (0.05), repeat_penalty (1), repeat_last_n (64), frequency_penalty (0),
        presence_penalty (0), seed (None: random), stop (a string or list), stop_at_eog (True),
        render_special (False), logprobs (False), top_logprobs (0). The GIL is released while
        generating; Ctrl-C stops the generation and raises KeyboardInterrupt."""
        return _core.generate(self._handle, self._prompt(prompt, add_special), sampling)

    def stream(self, prompt: Prompt, *, add_special: bool = True,
               **sampling: Any) -> "_core.TokenStream":
        """Like :meth:`complete`, as an iterator of TokenEvents (token, text, logprob,
        finish_reason); each step runs with the GIL released. ``.result`` holds the totals once
        the iterator is exhausted; ``.cancel()`` stops early."""
        return _core.stream(self._handle, self._prompt(prompt, add_special), sampling)

    def generate(self, prompt: Prompt, *, stream: bool = False, add_special: bool = True,
                 **sampling: Any) -> Union[str, Iterator[str]]:
        """Continues ``prompt`` as plain text (no chat template): the generated text, or with
        ``stream=True`` an iterator of text pieces whose concatenation is that text. Sampling
        keywords as in :meth:`complete`."""
        if stream:
            return _texts(self.stream(prompt, add_special=add_special, **sampling))
        return self.complete(prompt, add_special=add_special, **sampling).text

    def chat(self, messages: Messages, *, stream: bool = False, system: Optional[str] = None,
             **sampling: Any) -> Union[str, Iterator[str]]:
        """Answers a conversation (a list of {"role", "content"} dicts, or one user message as a
        string) through the model's chat template: the reply, or with ``stream=True`` an iterator
        of text pieces. ``system`` is put first as a system message. Sampling keywords as in
        :meth:`complete`. Each call is independent (nothing is kept between calls)."""
        ids = self.chat_prompt(messages, system)
        if stream:
            return _texts(self.stream(ids, **sampling))
        return self.complete(ids, **sampling).text

    def re_isq(self, quant: QuantSpec) -> "Model":
        """A new Model whose weights in-situ quantization considers are re-quantized to ``quant``
        (a type such as "q8_0"/"Q8_0", bits such as 8, or a mix such as "q4k_m"), from the
        original source weights when they are still available. This model is not changed (it is
        immutable); rebind your name: ``model = model.re_isq("q8_0")``. Releases the GIL."""
        return Model(self._handle.re_isq(quant))

    def __repr__(self) -> str:
        i = self.info
        return f"insitu.Model({i['name']!r}, {i['architecture']}, {i['weight_types']})"
