"""ntire-t2iqa: validate, score and rank NTIRE 2025 text-to-image quality assessment submissions."""

from __future__ import annotations

__version__ = "0.1.0"

from .errors import Problem, ReferenceDataError, SubmissionError  # noqa: E402
from .scoring import load_reference, score, validate  # noqa: E402
from .tracks.common import Report, Result  # noqa: E402

__all__ = ["Problem", "ReferenceDataError", "Report", "Result", "SubmissionError", "__version__",
           "load_reference", "score", "validate"]
