"""``ntire-t2iqa demo``: the whole toolkit end to end on the small synthetic challenge.

1. Generate the small challenge in ``OUT_DIR`` (default ``demo/``) unless a complete one
   with the same seed is already there.
2. Write submissions into ``submissions/``: the trivial predictors of both tracks, then
   whatever each demo plugin adds (see below).
3. Validate each zip against the split's public inputs and score it against the hidden
   reference, with the same library calls as ``validate`` and ``score``.
4. Rank them per track (SQLite store, HTML leaderboards) and write a diagnostic report
   (``explain``) for each track's best submission that is not the oracle.
5. Return one row per submission; the CLI prints them as one table.

Baselines join the demo with a plugin: a module named in :data:`PLUGIN_MODULES` (or
registered with :func:`register_submitter`) that provides
``demo_submissions(paths: ChallengePaths, split: str, out_dir: Path) -> list[(track, label, zip_path)]``;
a plugin module's function also receives ``baselines=`` (the names of ``demo --baselines``) when they are given.
A plugin module that is not installed is skipped. Without progress output (``--quiet``,
``--json``) what a plugin writes to stderr (training logs, progress bars) is held back and
shown only if the plugin fails.
"""

from __future__ import annotations

import contextlib
import csv
import functools
import importlib
import io
import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..errors import SubmissionError
from ..scoring import load_reference, score, validate
from .layout import ChallengePaths
from .progress import progress_iter
from .synth import SynthSize, synthesize
from .trivial import write_trivial

PathLike = str | os.PathLike[str]
Submitter = Callable[[ChallengePaths, str, Path], list[tuple[str, str, Path]]]
#: Modules probed for a ``demo_submissions`` function (baselines add theirs here).
PLUGIN_MODULES: list[str] = ["ntire_t2iqa_baselines.demo"]
_SUBMITTERS: list[Submitter] = []
#: The trivial rows: (kind, noise, label).
TRIVIAL = (("constant", 0.0, "constant"), ("random", 0.0, "random"), ("oracle", 0.3, "oracle σ=0.3"))


@dataclass
class DemoRow:
    """One scored (or rejected) submission of the demo."""

    track: str
    label: str
    path: Path
    valid: bool
    main_score: float | None = None
    components: dict[str, float] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def register_submitter(submitter: Submitter) -> None:
    """Add a function that writes more demo submissions (called after the trivial ones)."""
    if submitter not in _SUBMITTERS:
        _SUBMITTERS.append(submitter)


def trivial_submissions(paths: ChallengePaths, split: str, out_dir: Path) -> list[tuple[str, str, Path]]:
    """Write the trivial predictors of both tracks; return (track, label, zip) triples."""
    out: list[tuple[str, str, Path]] = []
    for track in ("align", "structure"):
        for kind, noise, label in TRIVIAL:
            zip_path = out_dir / f"demo-{track}-{kind}.zip"
            out.append((track, label, write_trivial(paths.root, track, kind, split, zip_path, noise=noise)))
    return out


def _quietly(submitter: Submitter, paths: ChallengePaths, split: str,
             out: Path) -> list[tuple[str, str, Path]]:
    """Run a plugin with its stderr held back; if it fails, show what it wrote and re-raise."""
    held = io.StringIO()
    try:
        with contextlib.redirect_stderr(held):
            return submitter(paths, split, out)
    except BaseException:
        sys.stderr.write(held.getvalue())
        raise


def _plugins(baselines: Sequence[str] | None = None) -> tuple[list[Submitter], list[str]]:
    """Submitters from the plugin modules (given ``baselines=`` when it is not ``None``) and the registry, and
    notes on plugins skipped."""
    found: list[Submitter] = []
    notes: list[str] = []
    for name in PLUGIN_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name and (name == exc.name or name.startswith(exc.name + ".")):
                continue  # the plugin (or its package) is not there: nothing to add
            notes.append(f"{name} skipped: it needs {exc.name!r}, which is not installed "
                         "(pip install -e '.[baselines]').")
            continue
        func = getattr(module, "demo_submissions", None)
        if callable(func):
            found.append(func if baselines is None else functools.partial(func, baselines=tuple(baselines)))
    return found + _SUBMITTERS, notes


def ensure_challenge(out_dir: PathLike, seed: int = 0, progress: bool = True,
                     size: str | SynthSize = "small") -> tuple[ChallengePaths, float | None]:
    """The challenge in ``out_dir``, generated if missing or stale; also the seconds spent generating (or None)."""
    paths = ChallengePaths(Path(out_dir))
    if paths.is_complete():
        manifest = paths.read_manifest()
        if isinstance(size, str):
            same_size = manifest.get("size") == size
        else:
            same_size = manifest.get("spec") == json.loads(json.dumps(asdict(size)))
        if same_size and manifest.get("seed") == seed and set(manifest.get("tracks", {})) == {"align", "structure"}:
            return paths, None
    start = time.perf_counter()
    synthesize(paths.root, seed=seed, size=size, progress=progress)
    return paths, time.perf_counter() - start


def evaluate(paths: ChallengePaths, split: str, entries: list[tuple[str, str, Path]],
             progress: bool = True) -> list[DemoRow]:
    """Validate and score each (track, label, zip) against the split's inputs and hidden reference."""
    references = {t: load_reference(paths.reference(t, split), t) for t in {e[0] for e in entries}}
    rows: list[DemoRow] = []
    for track, label, zip_path in progress_iter(entries, len(entries), "Scoring", progress):
        report = validate(zip_path, track, paths.inputs(track, split))
        row = DemoRow(track, label, Path(zip_path), report.valid,
                      errors=[str(p) for p in report.errors], warnings=[str(p) for p in report.warnings])
        if report.valid:
            try:
                result = score(zip_path, references[track], track)
            except SubmissionError as exc:
                row.valid, row.errors = False, [str(p) for p in exc.errors]
            else:
                row.main_score = result.main_score
                row.components = {k: v for k, v in result.to_dict().items()
                                  if isinstance(v, float) and k != "main_score"}
                row.warnings = list(result.warnings)
        rows.append(row)
    return rows


def rank_demo(paths: ChallengePaths, split: str, rows: list[DemoRow]) -> dict[str, tuple[Any, Path]]:
    """Rank the demo's valid submissions per track into ``OUT/leaderboard.db``; write one HTML page per track.

    The noisy oracle reads the hidden answers, so it is listed as an unranked ``baseline:`` entry.
    Returns ``{track: (leaderboard, html_path)}``.
    """
    from ..leaderboard import rank, render

    boards: dict[str, tuple[Any, Path]] = {}
    db = paths.root / "leaderboard.db"
    for track in sorted({r.track for r in rows if r.valid}):
        manifest = paths.root / f"leaderboard_{track}.csv"
        with open(manifest, "w", newline="", encoding="utf-8") as fh:
            writer = csv.writer(fh)
            writer.writerow(["path", "team", "leader", "submitted_at", "phase"])
            for i, row in enumerate(r for r in rows if r.track == track and r.valid):
                team = f"baseline:{row.label}" if row.label.startswith("oracle") else row.label
                writer.writerow([str(Path(row.path).resolve()), team, "demo", f"2025-03-21T00:00:{i:02d}Z", split])
        board, _ = rank(None, track, paths.reference(track, split), db, manifest=manifest)
        page = paths.root / f"leaderboard_{track}.html"
        page.write_text(render(db, track, "html"), encoding="utf-8")
        boards[track] = (board, page)
    return boards


def explain_demo(paths: ChallengePaths, split: str, rows: list[DemoRow]) -> dict[str, tuple[str, Path]]:
    """Write ``OUT/explain_<track>.html`` for each track's best valid submission that is not the oracle.

    Returns ``{track: (label, html_path)}``.
    """
    from ..explain import explain
    from ..explain.report import to_html

    images = {"align": paths.align_images, "structure": paths.structure_images}
    reports: dict[str, tuple[str, Path]] = {}
    for track in ("align", "structure"):
        candidates = [r for r in rows if r.track == track and r.valid and not r.label.startswith("oracle")]
        if not candidates:
            continue
        row = max(candidates, key=lambda r: r.main_score or 0.0)
        page = paths.root / f"explain_{track}.html"
        page.write_text(to_html(explain(row.path, paths.reference(track, split), track, images=images[track])),
                        encoding="utf-8")
        reports[track] = (row.label, page)
    return reports


@dataclass
class DemoRun:
    """The demo's outcome: one row per submission, timings in seconds, notes (e.g. plugins skipped),
    the leaderboards and the diagnostic reports."""

    rows: list[DemoRow]
    timings: dict[str, float]
    notes: list[str] = field(default_factory=list)
    boards: dict[str, tuple[Any, Path]] = field(default_factory=dict)
    reports: dict[str, tuple[str, Path]] = field(default_factory=dict)


def run_demo(out_dir: PathLike = "demo", submissions: PathLike = "submissions", split: str = "test",
             seed: int = 0, progress: bool = True, size: str | SynthSize = "small",
             baselines: Sequence[str] | None = None) -> DemoRun:
    """Generate (if needed), submit, validate and score every demo submission.

    ``baselines``: the baselines' names for the plugins (``None``: their default; empty: none).
    """
    start = time.perf_counter()
    paths, generated = ensure_challenge(out_dir, seed, progress, size)
    out = Path(submissions)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    entries = trivial_submissions(paths, split, out)
    submitters, notes = _plugins(baselines)
    for submitter in submitters:
        entries.extend(submitter(paths, split, out) if progress else _quietly(submitter, paths, split, out))
    t1 = time.perf_counter()
    rows = evaluate(paths, split, entries, progress)
    t2 = time.perf_counter()
    boards = rank_demo(paths, split, rows)
    t3 = time.perf_counter()
    reports = explain_demo(paths, split, rows)
    end = time.perf_counter()
    timings = {"generate": generated or 0.0, "submit": t1 - t0, "score": t2 - t1, "rank": t3 - t2,
               "explain": end - t3, "total": end - start}
    return DemoRun(rows, timings, notes, boards, reports)
