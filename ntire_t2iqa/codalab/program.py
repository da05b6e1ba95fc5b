"""The Codabench / CodaLab scoring program: ``INPUT/res`` against ``INPUT/ref`` into ``OUTPUT``.

The platform unpacks a submission into ``INPUT/res`` and the reference data into
``INPUT/ref``, runs the scoring program, and reads ``OUTPUT/scores.json`` (Codabench) or
``OUTPUT/scores.txt`` (CodaLab). Both hold the keys of :mod:`.keys` (the official programs'
by default). The program is bundled with the toolkit's sources and runs on Python 3.9 and
later with numpy >= 1.22 and scipy >= 1.8; Track 2 also needs OpenCV.
"""

from __future__ import annotations

import json
import os
import re
import sys
import tempfile
from pathlib import Path
from typing import Any

from .. import safetext, tracks
from ..errors import MissingDependency, Problem, ReferenceDataError, SubmissionError, error
from ..scoring import load_reference, score
from ..tracks.common import Result
from . import keys as _keys
from .upload import in_upload_words, nested_folder

#: Every file the scoring program writes; those of an earlier run are removed before scoring starts.
OUTPUT_FILES = ("scores.txt", "scores.json", "detailed_results.html")
#: At most this many errors or warnings are listed (on stderr and in detailed_results.html); the rest are counted.
MAX_LISTED = 50
#: Longest method description shown in detailed_results.html, and copied into scores.txt.
MAX_DESCRIPTION = 2000
MAX_SCORES_DESCRIPTION = 200
#: A readme runtime this large or larger is left out (a leaderboard stores at most 10 integer digits).
MAX_RUNTIME = 1e9
_FLAGS = {"0": 0, "1": 1}
#: A description written as it is in scores.txt; anything else is written as a quoted string.
_PLAIN_DESCRIPTION = re.compile(r"[A-Za-z0-9][A-Za-z0-9 .,;()/+_-]*")


def _no_prediction_file() -> Problem:
    return error("your zip", "holds neither output.json (Track 1) nor output.pkl (Track 2) at its root.",
                 "Submit a zip with output.json and readme.txt (Track 1) or output.pkl and readme.txt (Track 2).")


def readme_values(result: Result, naming: str = "official") -> dict[str, float | int]:
    """The numeric readme.txt values that pass the checks, under this naming's keys.

    Runtime: a plain ASCII decimal (``safetext.ascii_decimal``) below :data:`MAX_RUNTIME`; the
    three flags: exactly ``0`` or ``1``. Anything else is left out.
    """
    out: dict[str, float | int] = {}
    for column in _keys.readme_columns(naming):
        raw = str(result.readme.get(column.source, ""))
        if column.precision:  # the runtime
            text = safetext.ascii_decimal(raw)
            if text is not None and float(text) < MAX_RUNTIME:
                out[column.key] = float(text)
        elif raw.strip() in _FLAGS:
            out[column.key] = _FLAGS[raw.strip()]
    return out


def _readme_text(result: Result, column: _keys.Column) -> str | None:
    raw = str(result.readme.get(column.source, ""))
    if column.precision:
        text = safetext.ascii_decimal(raw)
        return text if text is not None and float(text) < MAX_RUNTIME else None
    return raw.strip() if raw.strip() in _FLAGS else None


def description_text(description: str) -> str:
    """The method description as one inert scores.txt value: clipped, controls escaped, quoted unless plain.

    The value can neither start a new line nor mean anything to a YAML reader (tags, anchors,
    flow collections, comments): a text that is not plain words and simple punctuation is
    written as a double-quoted string with every non-ASCII character escaped.
    """
    text = safetext.plain(safetext.clip(description.strip(), MAX_SCORES_DESCRIPTION))
    if _PLAIN_DESCRIPTION.fullmatch(text) and not text.endswith(" "):
        return text
    return json.dumps(text, ensure_ascii=True)


def scores_txt(result: Result, naming: str = "official") -> str:
    """``Key: value`` lines with 4 decimals, then the submission's readme.txt lines that pass the checks.

    Official naming writes the readme lines in the template's form (``runtime per image [s] : 10.43``,
    the description last, see :func:`description_text`); toolkit naming writes ``runtime: 10.43`` and
    the flags only. A value that fails its check is left out, so no line can be added or changed.
    """
    values = result.to_dict()
    lines = [f"{c.key}: {values[c.source]:.4f}" for c in _keys.metric_columns(result.track, naming)]
    separator = " : " if naming == "official" else ": "
    for column in _keys.readme_columns(naming):
        text = _readme_text(result, column)
        if text is not None:
            lines.append(f"{column.key}{separator}{text}")
    description = str(result.readme.get(_keys.DESCRIPTION_KEY, ""))
    if naming == "official" and description.strip():
        lines.append(f"{_keys.DESCRIPTION_KEY} : {description_text(description)}")
    return "\n".join(lines) + "\n"


def scores_json(result: Result, naming: str = "official") -> dict[str, Any]:
    """The metrics at full precision and the numeric readme values, under this naming's keys."""
    values = result.to_dict()
    out: dict[str, Any] = {c.key: values[c.source] for c in _keys.metric_columns(result.track, naming)}
    out.update(readme_values(result, naming))
    return out


def _bounded(items: list[str]) -> list[str]:
    """The first :data:`MAX_LISTED` items, then ``and N more.``."""
    if len(items) <= MAX_LISTED:
        return list(items)
    return [*items[:MAX_LISTED], f"and {len(items) - MAX_LISTED:,} more."]


def _page(body: list[str]) -> str:
    return ('<!DOCTYPE html><html><head><meta charset="utf-8"><title>Detailed results</title></head><body>'
            + "".join(body) + "</body></html>\n")


def _list(title: str, items: list[str]) -> str:
    return f"<h2>{title}</h2><ul>" + "".join(f"<li>{safetext.html(p)}</li>" for p in _bounded(items)) + "</ul>"


def detailed_html(result: Result | None, problems: list[str], naming: str = "official") -> str:
    """A small self-contained page with the full-precision metrics, warnings or errors.

    Every text taken from the submission (method description, warnings, problems) goes
    through :func:`safetext.html`; at most :data:`MAX_LISTED` problems are listed. The page
    holds aggregate metrics only, never a per-image value.
    """
    body = []
    if result is not None:
        values = result.to_dict()
        rows = "".join(f"<tr><td>{c.title}</td><td>{values[c.source]:.6f}</td></tr>"
                       for c in _keys.metric_columns(result.track, naming))
        body.append(f"<h2>Scores ({int(result.n_images)} images, PLCC fit: {safetext.html(result.plcc_fit)})</h2>"
                    f"<table>{rows}</table>")
        description = str(result.readme.get(_keys.DESCRIPTION_KEY, ""))
        if description:
            body.append(f"<p>Method: {safetext.html(safetext.clip(description, MAX_DESCRIPTION))}</p>")
    items = problems or (result.warnings if result else [])
    if items:
        body.append(_list("Errors" if result is None else "Warnings", [str(p) for p in items]))
    return _page(body)


def failure_html(what: str) -> str:
    """detailed_results.html for a submission that could not be scored for a reason other than its format."""
    return _page([f"<h2>Not scored</h2><p>{safetext.html(what)}</p>"])


def _write_atomic(path: Path, text: str) -> None:
    """Write UTF-8 text to a temporary file beside ``path``, then rename it into place.

    The text is encoded before anything is written, so a failure never leaves a partial
    file (nor the temporary one).
    """
    data = text.encode("utf-8")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            os.chmod(tmp, 0o644)  # readable by the platform, as a plain write would leave it
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _say(lines: list[str], prefix: str = "") -> None:
    """Print participant or organizer text on stderr, one safe line each."""
    for line in _bounded(lines):
        print(prefix + safetext.plain(line), file=sys.stderr)


def _detect_track(res: Path) -> str:
    found = [name for name in tracks.NAMES if (res / tracks.OUTPUTS[name]).exists()]
    if len(found) != 1:
        raise SubmissionError(nested_folder(res, None, tracks.OUTPUTS) or [_no_prediction_file()])
    return found[0]


def _score(res: Path, ref: Path, track: str | None, naming: str) -> tuple[dict[str, str], Result]:
    if track is None:
        track = _detect_track(res)
    problems = nested_folder(res, track, tracks.OUTPUTS)
    if problems:
        raise SubmissionError(problems)
    tracks.get(track)  # a missing OpenCV is the organizers' problem: say so before reading anything
    reference: Any = _load_reference(ref, track)
    result = score(res, reference, track=track)
    outputs = {"detailed_results.html": detailed_html(result, [], naming),
               "scores.json": json.dumps(scores_json(result, naming), indent=2),
               "scores.txt": scores_txt(result, naming)}
    return outputs, result


def run(input_dir: str | Path, output_dir: str | Path, track: str | None = None, keys: str = "official") -> int:
    """Score ``input_dir/res`` against ``input_dir/ref`` into ``output_dir``; return the exit code.

    0 scored (``scores.txt``, ``scores.json``, ``detailed_results.html``); 1 invalid submission,
    or one that could not be scored (only ``detailed_results.html``, messages also on stderr);
    2 unreadable reference, a library missing from the scoring environment, or an unusable
    output folder. Outputs of an earlier run are removed first, and every file is written
    atomically, so the folder never holds a stale or half-written score. ``keys`` picks the
    naming of :mod:`.keys`.
    """
    _keys.metric_columns("align", keys)  # an unknown naming is a usage error, before anything is touched
    res, ref, out = Path(input_dir) / "res", Path(input_dir) / "ref", Path(output_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
        for name in OUTPUT_FILES:
            (out / name).unlink(missing_ok=True)
    except OSError as exc:
        _say([f"the output folder cannot be prepared ({type(exc).__name__}: {exc.strerror or exc})."], "error: ")
        return 2
    outputs: dict[str, str]
    code = 0
    try:
        outputs, result = _score(res, ref, track, keys)
        _say([str(note) for note in result.warnings], "warning: ")
    except SubmissionError as exc:
        problems = [str(in_upload_words(p)) for p in exc.errors] or [str(exc)]
        outputs, code = {"detailed_results.html": detailed_html(None, problems, keys)}, 1
        _say(problems)
    except ReferenceDataError as exc:
        _say([str(exc)])
        outputs, code = {"detailed_results.html": failure_html(
            "The scoring program could not read the reference data; this is not a problem with the "
            "submission. Please tell the organizers.")}, 2
    except MissingDependency as exc:
        _say([f"organizers: {exc}"], "error: ")
        outputs, code = {"detailed_results.html": failure_html(
            f"The scoring environment lacks {exc.module}, which {exc.needed_for} needs; this is not a problem "
            "with the submission. Please tell the organizers.")}, 2
    except Exception as exc:  # noqa: BLE001 - whatever a participant's files trigger, the platform gets a page
        kind = type(exc).__name__
        _say([f"the submission could not be scored ({kind})."], "error: ")
        outputs, code = {"detailed_results.html": failure_html(
            f"The submission could not be scored: an unexpected error ({kind}) occurred while reading or scoring "
            "its files. Check it with `ntire-t2iqa validate submission.zip --track TRACK`, and tell the organizers "
            "if it validates.")}, 1
    try:
        for name, text in outputs.items():
            _write_atomic(out / name, text)
    except OSError as exc:
        _say([f"the output folder cannot be written ({type(exc).__name__}: {exc.strerror or exc})."], "error: ")
        return 2
    return code


def _load_reference(ref: Path, track: str) -> Any:
    """The loaded reference; any failure is the organizers' (a :class:`ReferenceDataError`, exit 2)."""
    try:
        return load_reference(ref, track)
    except ReferenceDataError:
        raise
    except Exception as exc:  # noqa: BLE001 - an unreadable reference is never the participant's fault
        raise ReferenceDataError(ref.name, f"cannot be loaded ({type(exc).__name__}).",
                                 f"Check it with `ntire-t2iqa score SUBMISSION --track {track} --ref ...`.") from None
