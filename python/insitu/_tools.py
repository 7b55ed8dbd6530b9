"""insitu.tune and insitu.quantize: the CLI's `tune --json` and `quantize` as functions."""

from __future__ import annotations

import os
from typing import Any, Dict, Optional, Union

from insitu import _core

PathLike = Union[str, "os.PathLike[str]"]


def tune(path: PathLike, **options: Any) -> Dict[str, Any]:
    """Which quantization of a model fits this machine, from its shapes alone (no weight is read):
    the same document ``insitu tune --json`` prints (docs/tune.schema.json), as a dict with
    "model", "memory", "candidates" (one per type: estimated_size_bytes, max_context_tokens,
    quality, fit_status, recommended, ...), "recommended_isq" and "recommended_command".

    Keywords are the build options of :meth:`insitu.Model.load` that the analysis uses: profile
    ("quality" | "balanced" | "fast"), isq (evaluate this type or mix instead of the profile's
    list), ctx, max_memory ("8G"), topology, isq_organization, pure, imatrix, threads.
    """
    return _core.tune(os.fspath(path), dict(options))


def quantize(path: PathLike, output: PathLike, isq: Union[str, int], *,
             format: Optional[str] = None, **options: Any) -> Dict[str, Any]:
    """Quantizes a model in situ (the decisions ``Model.load(isq=...)`` makes) and writes it, as
    ``insitu quantize`` does: UQFF 1.2 into a directory (shards named after the type) or a path
    ending in .uqff, or a complete GGUF file for a path ending in .gguf. ``format`` ("uqff" or
    "gguf") overrides the extension's choice. Other keywords are Model.load's build options
    (imatrix, calibration_file, topology, pure, isq_organization, threads, progress).

    Returns what was written: format, path, isq, shards (UQFF), n_tensors (GGUF) or n_layers
    (UQFF) and tensor_bytes. The GIL is released meanwhile; nothing partial is left on failure.
    """
    opts = dict(options)
    opts["isq"] = isq
    return _core.quantize(os.fspath(path), os.fspath(output), format or "", opts)
