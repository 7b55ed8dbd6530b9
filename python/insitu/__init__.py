"""insitu: CPU inference for large language models with in-situ quantization.

Two surfaces on one library:

* the Pythonic one::

      import insitu
      model = insitu.Model.load("SmolLM2-135M-Instruct.Q4_1.gguf", quant="q4k")
      print(model.chat([{"role": "user", "content": "Hi!"}], max_tokens=32))

* mistral.rs's (``Runner``, ``Which``, ``ChatCompletionRequest``, ...), so that code written for
  ``import mistralrs`` runs with ``import insitu as mistralrs``.

Errors are :class:`insitu.Error` subclasses that are also the built-in exceptions callers expect
(``ValueError`` for bad arguments and files, ``OSError``/``FileNotFoundError`` for the file
system), carrying the library's message.
"""

from insitu import _core
from insitu._core import (
    Error,
    FormatError,
    GenerateResult,
    InvalidArgument,
    IoError,
    NotFound,
    TokenEvent,
    Unsupported,
)
from insitu._model import Model, quant_types, set_log_level
from insitu._tools import quantize, tune
from insitu._runner import (
    Architecture,
    CalibrationStatus,
    ChatCompletionChunkResponse,
    ChatCompletionRequest,
    ChatCompletionResponse,
    Choice,
    ChunkChoice,
    CompletionChoice,
    CompletionRequest,
    CompletionResponse,
    Delta,
    IsqOrganization,
    ModelDType,
    ResponseMessage,
    Runner,
    Usage,
    Which,
)

__version__: str = _core.__version__

__all__ = [
    "Architecture",
    "CalibrationStatus",
    "ChatCompletionChunkResponse",
    "ChatCompletionRequest",
    "ChatCompletionResponse",
    "Choice",
    "ChunkChoice",
    "CompletionChoice",
    "CompletionRequest",
    "CompletionResponse",
    "Delta",
    "Error",
    "FormatError",
    "GenerateResult",
    "InvalidArgument",
    "IoError",
    "IsqOrganization",
    "Model",
    "ModelDType",
    "NotFound",
    "ResponseMessage",
    "Runner",
    "TokenEvent",
    "Unsupported",
    "Usage",
    "Which",
    "quant_types",
    "quantize",
    "set_log_level",
    "tune",
    "__version__",
]
