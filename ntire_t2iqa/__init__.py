"""ntire-t2iqa: validate, score and rank NTIRE 2025 text-to-image quality assessment submissions.

The Python API: :func:`validate`, :func:`load_reference`, :func:`score` and :func:`pack`
(imported on first use, so the command line starts without loading numpy and the readers);
metric functions in :mod:`ntire_t2iqa.metrics`.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

from .errors import Problem, ReferenceDataError, SubmissionError  # noqa: E402

__all__ = ["Problem", "ReferenceDataError", "Report", "Result", "SubmissionError", "__version__",
           "load_reference", "pack", "score", "validate"]

#: Public names imported when first used: name -> module that defines it.
_LAZY = {"load_reference": ".scoring", "score": ".scoring", "validate": ".scoring",
         "Report": ".tracks.common", "Result": ".tracks.common", "pack": ".packing"}


def __getattr__(name: str) -> Any:
    """The API functions and result types, imported on first use (``pack`` also reads tables and images)."""
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name], __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})
