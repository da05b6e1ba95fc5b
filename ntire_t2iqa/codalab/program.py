"""Codabench / CodaLab scoring program and competition bundle.

The platform unpacks a submission into ``INPUT/res`` and the reference data into
``INPUT/ref``, runs the scoring program, and reads ``OUTPUT/scores.txt`` (CodaLab) or
``OUTPUT/scores.json`` (Codabench). This module needs only numpy, scipy and OpenCV, so
the bundle can carry the toolkit's sources and run on a plain scientific image.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Any

from . import safetext, tracks
from .errors import Problem, ReferenceDataError, SubmissionError, error
from .scoring import load_reference, score
from .tracks.common import README_KEYS, Result

#: Metric keys written to scores.txt / scores.json, per track, in order.
SCORE_KEYS = {"align": ("main_score", "srcc", "plcc", "acc"),
              "structure": ("main_score", "f1", "srcc", "plcc", "precision", "recall", "giou")}
#: readme.txt values appended to scores.txt under these keys.
README_SCORE_KEYS = dict(zip(README_KEYS[:4], ("runtime", "cpu", "extra_data", "llm")))
LABELS = {"main_score": "Main Score", "srcc": "SRCC", "plcc": "PLCC", "acc": "ACC", "f1": "F1",
          "precision": "Precision", "recall": "Recall", "giou": "GIoU"}
#: Every file the scoring program writes; those of an earlier run are removed before scoring starts.
OUTPUT_FILES = ("scores.txt", "scores.json", "detailed_results.html")
#: At most this many errors or warnings are listed (on stderr and in detailed_results.html); the rest are counted.
MAX_LISTED = 50
#: Longest method description shown in detailed_results.html.
MAX_DESCRIPTION = 2000


def _problem(res: Path) -> Problem:
    return error(res.name, "holds neither output.json (Track 1) nor output.pkl (Track 2).",
                 "Submit a zip with output.json and readme.txt (Track 1) or output.pkl and readme.txt (Track 2).")


def scores_txt(result: Result) -> str:
    """``Key: value`` lines with 4 decimals, then the readme.txt values that are plain ASCII decimals.

    A readme value that is not ``[0-9]+(.[0-9]+)?`` (the validator refuses those) is left out.
    """
    values = result.to_dict()
    lines = [f"{key}: {values[key]:.4f}" for key in SCORE_KEYS[result.track]]
    for readme_key, key in README_SCORE_KEYS.items():
        value = safetext.ascii_decimal(str(result.readme.get(readme_key, "")))
        if value is not None:
            lines.append(f"{key}: {value}")
    return "\n".join(lines) + "\n"


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


def detailed_html(result: Result | None, problems: list[str]) -> str:
    """A small self-contained page with the full-precision metrics, warnings or errors.

    Every text taken from the submission (method description, warnings, problems) goes
    through :func:`safetext.html`; at most :data:`MAX_LISTED` problems are listed. The page
    holds aggregate metrics only, never a per-image value.
    """
    body = []
    if result is not None:
        values = result.to_dict()
        rows = "".join(f"<tr><td>{LABELS[k]}</td><td>{values[k]:.6f}</td></tr>" for k in SCORE_KEYS[result.track])
        body.append(f"<h2>Scores ({int(result.n_images)} images, PLCC fit: {safetext.html(result.plcc_fit)})</h2>"
                    f"<table>{rows}</table>")
        description = str(result.readme.get(README_KEYS[4], ""))
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


def run(input_dir: str | Path, output_dir: str | Path, track: str | None = None) -> int:
    """Score ``input_dir/res`` against ``input_dir/ref`` into ``output_dir``; return the exit code.

    0 scored (``scores.txt``, ``scores.json``, ``detailed_results.html``); 1 invalid submission,
    or one that could not be scored (only ``detailed_results.html``, messages also on stderr);
    2 unreadable reference or output folder. Outputs of an earlier run are removed first, and
    every file is written atomically, so the folder never holds a stale or half-written score.
    """
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
        if track is None:
            found = [name for name, mod in tracks.TRACKS.items() if (res / mod.OUTPUT).exists()]
            if len(found) != 1:
                raise SubmissionError([_problem(res)])
            track = found[0]
        reference: Any = _load_reference(ref, track)
        result = score(res, reference, track=track)
        payload = {key: result.to_dict()[key] for key in SCORE_KEYS[result.track]}
        outputs = {"detailed_results.html": detailed_html(result, []),
                   "scores.json": json.dumps(payload, indent=2), "scores.txt": scores_txt(result)}
        _say([str(note) for note in result.warnings], "warning: ")
    except SubmissionError as exc:
        problems = [str(p) for p in exc.errors] or [str(exc)]
        outputs, code = {"detailed_results.html": detailed_html(None, problems)}, 1
        _say(problems)
    except ReferenceDataError as exc:
        _say([str(exc)])
        outputs, code = {"detailed_results.html": failure_html(
            "The scoring program could not read the reference data; this is not a problem with the "
            "submission. Please tell the organizers.")}, 2
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
                                 f"Check it with `ntire-t2iqa codabench-bundle --track {track} --ref ...`.") from None


# --------------------------------------------------------------------------- bundle

_SCORE_PY = '''"""Scoring program: runs the bundled ntire_t2iqa toolkit on $input/res and $input/ref."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ntire_t2iqa.codalab import run  # noqa: E402

sys.exit(run(sys.argv[1], sys.argv[2], {track!r}))
'''

_YAML = """version: 2
title: {title}
description: {description}
docker_image: {docker_image}
enable_detailed_results: true
pages:
  - title: Overview
    file: overview.md
tasks:
  - index: 0
    name: {task_name}
    description: Scored by the ntire-t2iqa toolkit (exactly as the official program).
    scoring_program: scoring_program
    reference_data: reference_data
phases:
  - index: 0
    name: {phase}
    description: Upload a zip with {output} and readme.txt at its root.
    start: {start}
    max_submissions_per_day: {per_day}
    max_submissions: {total}
    tasks:
      - 0
leaderboards:
  - index: 0
    title: Results
    key: results
    submission_rule: Force_Last
    columns:
{columns}"""


def write_bundle(track: str, reference: str | Path, out_zip: str | Path, title: str | None = None,
                 docker_image: str = "codalab/codalab-legacy:py39", phase: str = "Development",
                 start: str = "2025-01-30", per_day: int = 5, total: int = 300) -> Path:
    """Write a Codabench competition bundle: competition.yaml, overview, scoring program, reference data."""
    mod = tracks.get(track)
    ref_file = mod.reference_file(reference)
    mod.load_reference(ref_file)  # refuse to bundle a reference the scorer cannot read
    track_name = "Track 1 alignment" if track == "align" else "Track 2 structure"
    title = title or f"NTIRE 2025 T2I quality assessment: {track_name}"
    columns = "".join(
        f"      - title: {LABELS[key]}\n        key: {key}\n        index: {i}\n        sorting: desc\n"
        f"        precision: 4\n" for i, key in enumerate(SCORE_KEYS[track]))
    yaml = _YAML.format(title=json.dumps(title), description=json.dumps(f"{title}, scored with ntire-t2iqa."),
                        docker_image=docker_image, task_name=json.dumps(title), phase=json.dumps(phase),
                        output=mod.OUTPUT, start=start, per_day=per_day, total=total, columns=columns)
    overview = (f"# {title}\n\nSubmit a zip holding exactly `{mod.OUTPUT}` and `readme.txt` at its root. "
                "Check it first with `ntire-t2iqa validate submission.zip --track "
                f"{track}`.\n\nMain score: "
                + ("0.25 SRCC + 0.25 PLCC + 0.5 ACC.\n" if track == "align" else "0.7 F1 + 0.15 (SRCC + PLCC).\n"))
    package = Path(__file__).resolve().parent
    out_zip = Path(out_zip)
    out_zip.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(out_zip, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("competition.yaml", yaml)
        zf.writestr("overview.md", overview)
        zf.writestr("scoring_program/metadata.yaml", "command: python3 $program/score.py $input $output\n")
        zf.writestr("scoring_program/score.py", _SCORE_PY.format(track=track))
        for src in sorted(package.rglob("*.py")):
            rel = src.relative_to(package.parent)
            if "data" in rel.parts[1:2]:
                continue  # the synthetic-challenge generator is not needed to score
            zf.write(src, f"scoring_program/{rel.as_posix()}")
        zf.write(ref_file, f"reference_data/{mod.REFERENCE_NAME}")
    return out_zip
