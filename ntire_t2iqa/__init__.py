"""ntire-t2iqa: validate, score and rank NTIRE 2025 text-to-image quality assessment submissions.

The Python API: :func:`validate`, :func:`load_reference`, :func:`score` and :func:`pack`
(imported on first use); metric functions in :mod:`ntire_t2iqa.metrics`.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

from .errors import Problem, ReferenceDataError, SubmissionError  # noqa: E402
from .scoring import load_reference, score, validate  # noqa: E402
from .tracks.common import Report, Result  # noqa: E402

__all__ = ["Problem", "ReferenceDataError", "Report", "Result", "SubmissionError", "__version__",
           "load_reference", "pack", "score", "validate"]


def __getattr__(name: str) -> Any:
    """``pack`` is imported when first used (it reads tables and images, which scoring never needs)."""
    if name == "pack":
        from .packing import pack

        return pack
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
