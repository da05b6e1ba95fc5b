"""``pack``: from predictions to a submission zip, validated before it is written.

The zip holds exactly the track's output file and readme.txt at its root. It is first
written to a temporary file beside ``out`` and checked with the same validator as
``ntire-t2iqa validate`` (coverage too, with ``inputs``); only a valid zip is moved into
place, so an invalid one leaves nothing behind (and an existing ``out`` untouched).

Example:
    >>> from ntire_t2iqa import pack                                            # doctest: +SKIP
    >>> pack("pred.csv", "submission.zip", "align", runtime=0.5, gpu=True, extra_data=False,
    ...      llm=False, description="CLIP features + MLP", inputs="test_inputs.json")  # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import os
import pickle
import tempfile
import zipfile
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from .. import tracks
from ..archive import Limits
from ..errors import Problem, SubmissionError
from ..scoring import PathLike, Predictions, validate
from ..tracks.common import README, README_KEYS, Report, check_readme
from .align_inputs import records_json
from .convert import to_output

__all__ = ["pack", "readme_text"]


def readme_text(runtime: float | str, gpu: bool, extra_data: bool, llm: bool, description: str) -> str:
    """readme.txt in the challenge's template: five ``key : value`` lines.

    ``runtime``: seconds per image (written as a plain decimal, e.g. ``0.5``); ``gpu``: True for
    GPU (the template's ``CPU[1] / GPU[0]`` line gets 0); ``extra_data``, ``llm``: 1 or 0;
    ``description``: one line of free text (line breaks become spaces).

    Example:
        >>> print(readme_text(0.5, gpu=True, extra_data=False, llm=True, description="A ViT"), end="")
        runtime per image [s] : 0.5
        CPU[1] / GPU[0] : 0
        Extra Data [1] / No Extra Data [0] : 0
        LLM[1] / Non-LLM[0] : 1
        Other description : A ViT
    """
    values = (_decimal(runtime), "0" if gpu else "1", "1" if extra_data else "0", "1" if llm else "0",
              " ".join(str(description).split()))
    return "".join(f"{key} : {value}\n" for key, value in zip(README_KEYS, values))


def _decimal(value: float | str) -> str:
    """A runtime as a plain decimal (``1e-05`` -> ``0.00001``); text is kept as written (the validator judges it)."""
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"runtime is seconds per image as a number, not {type(value).__name__}")
    try:
        text = format(Decimal(repr(float(value))), "f")
    except (InvalidOperation, OverflowError, ValueError):
        return repr(value)
    return text[:-2] if text.endswith(".0") else text


def _readme_bytes(readme: PathLike | None, flags: dict[str, Any]) -> bytes:
    given = {k: v for k, v in flags.items() if v is not None}
    if readme is not None:
        if given:
            raise ValueError(f"pass either readme or the readme values ({', '.join(given)}), not both")
        return Path(readme).read_bytes()
    missing = [k for k, v in flags.items() if v is None]
    if missing:
        raise ValueError(f"readme.txt needs {', '.join(missing)} (or readme=PATH of a readme.txt)")
    return readme_text(**flags).encode("utf-8")


def pack(predictions: Predictions, out: PathLike, track: str, *, runtime: float | str | None = None,
         gpu: bool | None = None, extra_data: bool | None = None, llm: bool | None = None,
         description: str | None = None, readme: PathLike | None = None, inputs: PathLike | None = None,
         elements: Any = None, scores: Any = None, threshold: float | None = None,
         limits: Limits | None = None) -> Report:
    """Write a valid submission zip for ``track`` to ``out``, or nothing at all.

    ``predictions``: Track 1 (``align``): a JSON list of records, a CSV/TSV or Parquet table
    (see :mod:`ntire_t2iqa.packing.align_inputs` for the layouts; ``elements`` is an optional long
    table of element scores), a list of records or a pandas DataFrame. Track 2
    (``structure``): a folder of mask images or an ``.npz`` with ``scores`` (a ``name,score``
    table), a dict ``{name: {"score", "pred_area"}}`` or a DataFrame (name, score, pred_area).
    Masks may have any size; 0/1, 0/255 and boolean masks are taken as they are, heatmaps need
    ``threshold`` (a pixel above ``threshold`` x 255 for 8-bit data, x 65535 for 16-bit, x 1
    for floats is distorted); each is written as a 2-D uint8 0/1 array.

    readme.txt is written from ``runtime`` (seconds per image), ``gpu``, ``extra_data``, ``llm``
    and ``description`` in the challenge's template, or copied from ``readme``. With ``inputs``
    (the public test inputs, as for :func:`~ntire_t2iqa.validate`) coverage is checked too.

    Returns the validation :class:`~ntire_t2iqa.Report` (valid; warnings listed). Raises
    :class:`~ntire_t2iqa.errors.SubmissionError` with every problem when the predictions or
    the zip would be invalid (nothing is written), ``ValueError`` for missing readme values,
    :class:`~ntire_t2iqa.errors.ReferenceDataError` for unreadable ``inputs`` and
    :class:`~ntire_t2iqa.errors.MissingDependency` for a Parquet file without pyarrow.
    """
    mod = tracks.get(track)
    out = Path(out)
    if out.is_dir():
        raise ValueError(f"out must be a file path (e.g. submission.zip), not the folder {out}")
    readme_data = _readme_bytes(readme, {"runtime": runtime, "gpu": gpu, "extra_data": extra_data, "llm": llm,
                                         "description": description})
    content, notes = to_output(predictions, track, elements=elements, scores=scores, threshold=threshold)
    problems = list(notes) + check_readme(readme_data)[1]
    records, found = mod.parse_predictions(content)
    problems += found
    if records is None or any(p.severity == "error" for p in problems):
        raise SubmissionError(problems)
    output = records_json(content) if track == "align" else pickle.dumps(content, protocol=4)
    return _write_if_valid(out, {mod.OUTPUT: output, README: readme_data}, track, inputs, limits, notes)


def _write_if_valid(out: Path, members: dict[str, bytes], track: str, inputs: PathLike | None,
                    limits: Limits | None, notes: list[Problem]) -> Report:
    """Zip ``members`` into a temporary file beside ``out``, validate it, and move it into place only if valid."""
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.", suffix=".part")
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as raw:
            with zipfile.ZipFile(raw, "w", zipfile.ZIP_DEFLATED) as zf:
                for name, data in members.items():
                    zf.writestr(_member(name), data)
            raw.flush()
            os.fsync(raw.fileno())
        report = validate(tmp, track, inputs, limits)
        problems = notes + report.problems  # what converting the predictions noticed, then the validator's report
        if not report.valid:
            raise SubmissionError(problems)
        os.chmod(tmp, 0o644)  # readable like any zip one writes (mkstemp makes it private)
        os.replace(tmp, out)
        return Report(track, problems, report.n_images, report.coverage_checked)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def _member(name: str) -> zipfile.ZipInfo:
    """A root-level member with a fixed time stamp and ordinary permissions (the same predictions give the same zip)."""
    info = zipfile.ZipInfo(name, date_time=(2025, 1, 1, 0, 0, 0))
    info.compress_type = zipfile.ZIP_DEFLATED
    info.external_attr = 0o644 << 16
    return info

