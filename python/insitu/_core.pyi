"""Type stubs for insitu._core, the C++ extension module (internal: use the insitu package)."""

from typing import Any, Dict, Iterator, List, Optional, Tuple

import numpy as np

__version__: str

class Error(Exception):
    """Every failure the insitu library reports."""

class InvalidArgument(Error, ValueError):
    """A bad argument or option (also a ValueError)."""

class FormatError(Error, ValueError):
    """A malformed, truncated or hostile file (also a ValueError)."""

class Unsupported(Error, ValueError):
    """A feature or combination this build does not support (also a ValueError)."""

class IoError(Error, OSError):
    """An operating-system call failed (also an OSError)."""

class NotFound(IoError, FileNotFoundError):
    """A model path that does not exist (also a FileNotFoundError)."""

def quant_types() -> List[str]:
    """Every type's frozen lower-case name, in table order."""

def parse_quant_type(name: str) -> Optional[str]:
    """The frozen name of any accepted spelling (Q4K, q4_k, ...), or None."""

def build_option_specs() -> List[Dict[str, str]]:
    """The declarations of Model.load's keyword arguments (include/insitu/options.h), in order."""

def set_log_level(level: str) -> None:
    """Sets the library's log level."""

class TokenEvent:
    """One sampled token, as it becomes final."""

    @property
    def token(self) -> int:
        """The sampled id (-1 for a closing event)."""
    @property
    def text(self) -> str:
        """Text final after this token (may be empty)."""
    @property
    def logprob(self) -> float:
        """Log-probability of the token (with logprobs=True)."""
    @property
    def top_logprobs(self) -> List[Tuple[int, float]]:
        """The top_logprobs most likely (id, logprob) pairs, most likely first."""
    @property
    def is_last(self) -> bool:
        """No event follows."""
    @property
    def finish_reason(self) -> Optional[str]:
        """On the last event: 'stop', 'length' or 'cancelled'."""

class GenerateResult:
    """A finished generation."""

    @property
    def text(self) -> str:
        """Every event's text, concatenated."""
    @property
    def tokens(self) -> List[int]:
        """The sampled ids, in order."""
    @property
    def finish_reason(self) -> str:
        """OpenAI's finish_reason: 'stop', 'length' or 'cancelled'."""
    @property
    def stop_reason(self) -> str:
        """'eog', 'stop', 'length', 'context' or 'cancelled'."""
    @property
    def stop_string(self) -> str:
        """The stop string that matched."""
    @property
    def n_prompt(self) -> int:
        """Tokens evaluated as the prompt."""
    @property
    def n_generated(self) -> int:
        """Tokens sampled (including a final end-of-generation token)."""
    @property
    def prefill_seconds(self) -> float:
        """Time spent evaluating the prompt."""
    @property
    def decode_seconds(self) -> float:
        """Time spent sampling and evaluating generated tokens."""

class TokenStream(Iterator[TokenEvent]):
    """An iterator of TokenEvents; each step runs with the GIL released."""

    def __iter__(self) -> "TokenStream": ...
    def __next__(self) -> TokenEvent: ...
    def cancel(self) -> None:
        """Stop generating (finish reason 'cancelled')."""
    @property
    def finished(self) -> bool:
        """Every event has been returned."""
    @property
    def result(self) -> GenerateResult:
        """The result so far (complete once finished)."""

class Model:
    """A loaded model (internal; see insitu.Model)."""

    @staticmethod
    def load(path: str, options: Dict[str, Any]) -> "Model": ...
    @property
    def ctx(self) -> int: ...
    @property
    def threads(self) -> int: ...
    def info(self) -> Dict[str, Any]: ...
    def weight_types(self) -> Dict[str, str]: ...
    def tokenize(self, text: str, add_special: bool, parse_special: bool) -> List[int]: ...
    def detokenize(self, tokens: List[int], render_special: bool) -> str: ...
    def is_eog(self, id: int) -> bool: ...
    def chat_tokens(self, messages: List[Dict[str, str]],
                    add_generation_prompt: bool) -> List[int]: ...
    def chat_text(self, messages: List[Dict[str, str]], add_generation_prompt: bool) -> str: ...
    def logits(self, tokens: List[int]) -> np.ndarray: ...
    def re_isq(self, spec: Any) -> "Model": ...

def generate(model: Model, prompt: List[int], options: Dict[str, Any]) -> GenerateResult:
    """A whole generation with the GIL released; Ctrl-C raises KeyboardInterrupt."""

def stream(model: Model, prompt: List[int], options: Dict[str, Any]) -> TokenStream:
    """A generation as an iterator of TokenEvents."""

def tune(path: str, options: Dict[str, Any]) -> Dict[str, Any]:
    """The analysis `insitu tune --json` prints."""

def quantize(path: str, output: str, format: str, options: Dict[str, Any]) -> Dict[str, Any]:
    """Quantizes in situ and writes UQFF or GGUF."""
