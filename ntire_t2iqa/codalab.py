"""Codabench / CodaLab scoring program and competition bundle.

The platform unpacks a submission into ``INPUT/res`` and the reference data into
``INPUT/ref``, runs the scoring program, and reads ``OUTPUT/scores.txt`` (CodaLab) or
``OUTPUT/scores.json`` (Codabench). This module needs only numpy, scipy and OpenCV, so
the bundle can carry the toolkit's sources and run on a plain scientific image.
"""

from __future__ import annotations

import html
import json
import sys
import zipfile
from pathlib import Path

from . import tracks
from .errors import Problem, ReferenceDataError, SubmissionError, error
from .scoring import score
from .tracks.common import README_KEYS, Result

#: Metric keys written to scores.txt / scores.json, per track, in order.
SCORE_KEYS = {"align": ("main_score", "srcc", "plcc", "acc"),
              "structure": ("main_score", "f1", "srcc", "plcc", "precision", "recall", "giou")}
#: readme.txt values appended to scores.txt under these keys.
README_SCORE_KEYS = dict(zip(README_KEYS[:4], ("runtime", "cpu", "extra_data", "llm")))
LABELS = {"main_score": "Main Score", "srcc": "SRCC", "plcc": "PLCC", "acc": "ACC", "f1": "F1",
          "precision": "Precision", "recall": "Recall", "giou": "GIoU"}


def _problem(res: Path) -> Problem:
    return error(res.name, "holds neither output.json (Track 1) nor output.pkl (Track 2).",
                 "Submit a zip with output.json and readme.txt (Track 1) or output.pkl and readme.txt (Track 2).")


def scores_txt(result: Result) -> str:
    """``Key: value`` lines with 4 decimals, then the readme.txt values."""
    values = result.to_dict()
    lines = [f"{key}: {values[key]:.4f}" for key in SCORE_KEYS[result.track]]
    for readme_key, key in README_SCORE_KEYS.items():
        if readme_key in result.readme:
            lines.append(f"{key}: {result.readme[readme_key]}")
    return "\n".join(lines) + "\n"


def detailed_html(result: Result | None, problems: list[str]) -> str:
    """A small self-contained page with the full-precision metrics, warnings or errors."""
    body = []
    if result is not None:
        rows = "".join(f"<tr><td>{LABELS[k]}</td><td>{result.to_dict()[k]:.6f}</td></tr>"
                       for k in SCORE_KEYS[result.track])
        body.append(f"<h2>Scores ({result.n_images} images, PLCC fit: {html.escape(result.plcc_fit)})</h2>"
                    f"<table>{rows}</table>")
        if result.readme.get(README_KEYS[4]):
            body.append(f"<p>Method: {html.escape(result.readme[README_KEYS[4]])}</p>")
    items = problems or (result.warnings if result else [])
    if items:
        title = "Errors" if result is None else "Warnings"
        body.append(f"<h2>{title}</h2><ul>" + "".join(f"<li>{html.escape(p)}</li>" for p in items) + "</ul>")
    return ('<!DOCTYPE html><html><head><meta charset="utf-8"><title>Detailed results</title></head><body>'
            + "".join(body) + "</body></html>\n")


def run(input_dir: str | Path, output_dir: str | Path, track: str | None = None) -> int:
    """Score ``input_dir/res`` against ``input_dir/ref`` into ``output_dir``; return the exit code.

    0 scored; 1 invalid submission (messages on stderr and in detailed_results.html);
    2 unreadable reference.
    """
    res, ref, out = Path(input_dir) / "res", Path(input_dir) / "ref", Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    try:
        if track is None:
            found = [name for name, mod in tracks.TRACKS.items() if (res / mod.OUTPUT).exists()]
            if len(found) != 1:
                raise SubmissionError([_problem(res)])
            track = found[0]
        result = score(res, ref, track=track)
    except SubmissionError as exc:
        problems = [str(p) for p in exc.errors]
        (out / "detailed_results.html").write_text(detailed_html(None, problems), encoding="utf-8")
        print("\n".join(problems), file=sys.stderr)
        return 1
    except ReferenceDataError as exc:
        print(str(exc), file=sys.stderr)
        return 2
    (out / "scores.txt").write_text(scores_txt(result), encoding="utf-8")
    payload = {key: result.to_dict()[key] for key in SCORE_KEYS[result.track]}
    (out / "scores.json").write_text(json.dumps(payload, indent=2), encoding="utf-8")
    (out / "detailed_results.html").write_text(detailed_html(result, []), encoding="utf-8")
    for note in result.warnings:
        print(f"warning: {note}", file=sys.stderr)
    return 0


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
