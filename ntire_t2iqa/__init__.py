"""ntire-t2iqa: validate, score and rank NTIRE 2025 text-to-image quality assessment submissions.

The Python API: :func:`validate`, :func:`load_reference`, :func:`score` and :func:`pack`
(imported on first use, so the command line starts without loading numpy and the readers);
metric functions in :mod:`ntire_t2iqa.metrics`.
"""

from __future__ import annotations

__version__ = "0.1.0"

from .errors import Problem, ReferenceDataError, SubmissionError  # noqa: E402
from .lazy import lazy_names  # noqa: E402

__all__ = ["Problem", "ReferenceDataError", "Report", "Result", "SubmissionError", "__version__",
           "load_reference", "pack", "score", "validate"]

#: Public names imported when first used: name -> module that defines it.
_LAZY = {"load_reference": ".scoring", "score": ".scoring", "validate": ".scoring",
         "Report": ".tracks.common", "Result": ".tracks.common", "pack": ".packing"}

__getattr__, __dir__ = lazy_names(__name__, _LAZY, globals())
