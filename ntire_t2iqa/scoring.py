"""The library entry points: :func:`validate`, :func:`load_reference` and :func:`score`.

``validate``, ``score``, ``rank`` and the scoring program all go through these, so a
submission gets the same messages and the same numbers wherever it is checked.
Predictions may also be given in memory: Track 1 as a list of records (the content of
output.json), Track 2 as a dict ``{image_name: {"score", "pred_area"}}`` (the content of
output.pkl), or either as a pandas DataFrame (the layouts :mod:`ntire_t2iqa.packing` reads).

Example:
    >>> from ntire_t2iqa import score                                    # doctest: +SKIP
    >>> result = score("submission.zip", "eval.json", track="align")     # doctest: +SKIP
    >>> result.main_score, result.acc                                    # doctest: +SKIP
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from typing import Any, Union

from . import metrics, tracks
from .archive import Limits, open_submission
from .errors import Problem, SubmissionError, bounded, error
from .tracks.common import README, Report, Result, check_readme

#: A path given as text or a path object (``Union``: the scoring program also runs on Python 3.9).
PathLike = Union[str, os.PathLike[str]]  # noqa: UP007
#: A submission: a zip or folder path; or predictions in memory: a list of records (Track 1), a dict
#: ``{image_name: {"score", "pred_area"}}`` (Track 2), or a pandas DataFrame.
Predictions = Any
_TRACK_TITLES = {"align": "Track 1 (align)", "structure": "Track 2 (structure)"}
_IN_MEMORY = {"align": ("a list of records", list), "structure": ("a dict {image_name: {'score', 'pred_area'}}", dict)}


def is_path(value: Any) -> bool:
    """True for a path given as text or a path object (a submission or reference on disk)."""
    return isinstance(value, (str, os.PathLike))


def is_dataframe(value: Any) -> bool:
    """True for a pandas DataFrame (recognised without importing pandas, which the scoring path does not need)."""
    return type(value).__name__ == "DataFrame" and type(value).__module__.split(".")[0] == "pandas"


def _from_memory(track: str, predictions: Predictions) -> tuple[Any, list[Problem]]:
    """Check predictions given in memory; return (records or None, problems)."""
    if is_dataframe(predictions):
        from .packing.convert import predictions_from_dataframe  # a DataFrame was passed: pandas is there

        predictions = predictions_from_dataframe(predictions, track)
    what, kind = _IN_MEMORY[track]
    if not isinstance(predictions, kind):
        raise TypeError(f"{_TRACK_TITLES[track]} predictions are a path (zip or folder), {what} or a pandas "
                        f"DataFrame, not {type(predictions).__name__}.")
    return tracks.get(track).parse_predictions(predictions)


def _check(submission: Predictions, track: str, expected: Any, against: str,
           limits: Limits | None) -> tuple[Any, dict[str, str], list[Problem]]:
    """Read and check a submission (a path, or predictions in memory); return (records or None, readme, problems)."""
    mod = tracks.get(track)
    if not is_path(submission):
        records, problems = _from_memory(track, submission)
        return records, {}, _with_coverage(mod, records, problems, expected, against)
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
    return records, readme, _with_coverage(mod, records, problems, expected, against)


def _with_coverage(mod: Any, records: Any, problems: list[Problem], expected: Any, against: str) -> list[Problem]:
    if records is not None:
        if expected is not None:
            problems.extend(mod.check_coverage(records, expected, against))
        else:
            problems.extend(mod.unchecked_coverage(records))
    return bounded(problems)


def validate(submission: Predictions, track: str, inputs: PathLike | None = None,
             limits: Limits | None = None) -> Report:
    """Check a submission and report every problem at once.

    ``submission``: a zip or unpacked folder, or predictions in memory (a list of records
    for Track 1, a dict ``{image_name: {"score", "pred_area"}}`` for Track 2, or a pandas
    DataFrame; these have no readme.txt to check). With ``inputs`` (Track 1: the public
    test-input JSON or its folder; Track 2: a JSON list of image names, the split's
    ``*_info.json`` or a folder of images) coverage is checked too: missing and extra
    images and missing element keys; without, ``Report.coverage_checked`` is False.
    Raises :class:`~ntire_t2iqa.errors.ReferenceDataError` when the inputs themselves
    cannot be read.
    """
    mod = tracks.get(track)
    expected = mod.load_expected(inputs) if inputs is not None else None
    records, _, problems = _check(submission, track, expected, "test inputs", limits)
    return Report(track, problems, len(records) if records else 0, coverage_checked=expected is not None)


def load_reference(reference: PathLike, track: str) -> Any:
    """Load a hidden reference once (Track 1 ``eval.json`` averaged or raw; Track 2 ``gt.pkl``).

    The object returned serves :func:`score` for the same ``track`` only.
    """
    return tracks.get(track).load_reference(reference)


def score(submission: Predictions, reference: Any, track: str, plcc_fit: str = "official",
          limits: Limits | None = None) -> Result:
    """Score a submission against a reference exactly as the official program does.

    ``submission``: a zip or unpacked folder, or predictions in memory (a list of records
    for Track 1, a dict ``{image_name: {"score", "pred_area"}}`` for Track 2, or a pandas
    DataFrame). ``reference`` is a path or an object from :func:`load_reference` for the
    same track (load it once to score many submissions). Raises
    :class:`~ntire_t2iqa.errors.SubmissionError` with every problem when the submission is
    invalid, :class:`~ntire_t2iqa.errors.ReferenceDataError` when the reference is
    unreadable, and ``TypeError`` for a reference loaded for the other track.
    """
    return evaluate(submission, reference, track, plcc_fit, limits).result


def _reference_for(mod: Any, track: str, reference: Any) -> Any:
    """A loaded reference of ``track``: ``reference`` itself, or loaded from its path; otherwise a clear TypeError."""
    if is_path(reference):
        return mod.load_reference(reference)
    if mod.is_reference(reference):
        return reference
    for other in tracks.NAMES:  # a reference of the other track was loaded, so its module is imported
        module = sys.modules.get(f"{tracks.__name__}.{other}")
        if other != track and module is not None and module.is_reference(reference):
            raise TypeError(f"the reference was loaded for {_TRACK_TITLES[other]} (load_reference(path, "
                            f"{other!r})), but it is scored here as {_TRACK_TITLES[track]}: pass track={other!r}, "
                            f"or load the {track} reference with load_reference(path, {track!r}).")
    raise TypeError(f"reference must be a path or what load_reference(path, {track!r}) returns, "
                    f"not {type(reference).__name__}.")


@dataclass
class Evaluation:
    """A score together with what it was computed from: the checked records and the loaded reference."""

    result: Result
    records: Any
    reference: Any


def evaluate(submission: Predictions, reference: Any, track: str, plcc_fit: str = "official",
             limits: Limits | None = None) -> Evaluation:
    """:func:`score`, also returning the submission's records and the reference (for diagnostics)."""
    if plcc_fit not in metrics.PLCC_FITS:
        raise ValueError(f"unknown plcc_fit {plcc_fit!r}; choose one of: {', '.join(metrics.PLCC_FITS)}")
    mod = tracks.get(track)
    reference = _reference_for(mod, track, reference)
    records, readme, problems = _check(submission, track, mod.expected_of(reference), "reference", limits)
    if records is None or any(p.severity == "error" for p in problems):
        raise SubmissionError(problems)
    result = mod.compute(records, reference, plcc_fit, check=False)  # coverage was checked above
    result.warnings = [str(p) for p in problems] + result.warnings
    result.readme = readme
    return Evaluation(result, records, reference)
