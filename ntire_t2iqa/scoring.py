"""The library entry points: :func:`validate`, :func:`load_reference` and :func:`score`.

``validate``, ``score``, ``rank`` and the scoring program all go through these, so a
submission gets the same messages and the same numbers wherever it is checked.

Example:
    >>> from ntire_t2iqa import score                                    # doctest: +SKIP
    >>> result = score("submission.zip", "eval.json", track="align")     # doctest: +SKIP
    >>> result.main_score, result.acc                                    # doctest: +SKIP
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Union

from . import metrics, tracks
from .archive import Limits, open_submission
from .errors import Problem, SubmissionError, bounded, error
from .tracks.common import README, Report, Result, check_readme

#: A path given as text or a path object (``Union``: the scoring program also runs on Python 3.9).
PathLike = Union[str, os.PathLike[str]]  # noqa: UP007


def _check(submission: PathLike, track: str, expected: Any, against: str,
           limits: Limits | None) -> tuple[Any, dict[str, str], list[Problem]]:
    """Read and check a submission; return (records or None, readme values, problems)."""
    mod = tracks.get(track)
    source, problems = open_submission(submission, mod.REQUIRED, limits or Limits())
    if source is None:
        return None, {}, problems
    records = None
    readme: dict[str, str] = {}
    with source:
        if README in source.names:
            try:
                readme, found = check_readme(source.read(README))
                problems.extend(found)
            except SubmissionError as exc:
                problems.extend(exc.problems)
        if mod.OUTPUT in source.names:
            try:
                records, found = mod.read_predictions(source)
                problems.extend(found)
            except SubmissionError as exc:
                problems.extend(exc.problems)
            except MemoryError:
                problems.append(error(mod.OUTPUT, "needs more memory to load than this machine has.",
                                      "Submit smaller arrays (e.g. 448 x 448 uint8 masks)."))
    if records is not None and expected is not None:
        problems.extend(mod.check_coverage(records, expected, against))
    return records, readme, bounded(problems)


def validate(submission: PathLike, track: str, inputs: PathLike | None = None,
             limits: Limits | None = None) -> Report:
    """Check a submission zip or folder and report every problem at once.

    With ``inputs`` (Track 1: the public test-input JSON; Track 2: a JSON list of image
    names or a folder of images) coverage is checked too: missing and extra images and
    missing element keys. Raises :class:`~ntire_t2iqa.errors.ReferenceDataError` when
    the inputs themselves cannot be read.
    """
    mod = tracks.get(track)
    expected = mod.load_expected(inputs) if inputs is not None else None
    records, _, problems = _check(submission, track, expected, "test inputs", limits)
    return Report(track, problems, len(records) if records else 0)


def load_reference(reference: PathLike, track: str) -> Any:
    """Load a hidden reference once (Track 1 ``eval.json`` averaged or raw; Track 2 ``gt.pkl``)."""
    return tracks.get(track).load_reference(reference)


def score(submission: PathLike, reference: Any, track: str, plcc_fit: str = "official",
          limits: Limits | None = None) -> Result:
    """Score a submission against a reference exactly as the official program does.

    ``reference`` is a path or an object from :func:`load_reference` (load it once to
    score many submissions). Raises :class:`~ntire_t2iqa.errors.SubmissionError` with
    every problem when the submission is invalid, and
    :class:`~ntire_t2iqa.errors.ReferenceDataError` when the reference is unreadable.
    """
    return evaluate(submission, reference, track, plcc_fit, limits).result


@dataclass
class Evaluation:
    """A score together with what it was computed from: the checked records and the loaded reference."""

    result: Result
    records: Any
    reference: Any


def evaluate(submission: PathLike, reference: Any, track: str, plcc_fit: str = "official",
             limits: Limits | None = None) -> Evaluation:
    """:func:`score`, also returning the submission's records and the reference (for diagnostics)."""
    if plcc_fit not in metrics.PLCC_FITS:
        raise ValueError(f"unknown plcc_fit {plcc_fit!r}; choose one of: {', '.join(metrics.PLCC_FITS)}")
    mod = tracks.get(track)
    if isinstance(reference, (str, os.PathLike, Path)):
        reference = mod.load_reference(reference)
    records, readme, problems = _check(submission, track, mod.expected_of(reference), "reference", limits)
    if records is None or any(p.severity == "error" for p in problems):
        raise SubmissionError(problems)
    result = mod.compute(records, reference, plcc_fit, check=False)  # coverage was checked above
    result.warnings = [str(p) for p in problems] + result.warnings
    result.readme = readme
    return Evaluation(result, records, reference)
