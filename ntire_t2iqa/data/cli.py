"""Click commands of the data package: ``ntire-t2iqa data ...`` and ``ntire-t2iqa demo``.

Exit codes as the main CLI: 0 success, 1 an invalid demo submission, 2 bad input.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import click
from rich.table import Table

from ..cli_common import err, out
from ..errors import ReferenceDataError
from ..safetext import terminal
from .layout import EVAL_SPLITS, SYNTH_SIZES, TRIVIAL_KINDS
from .sources import TRACK_NAMES, DataLayoutError, detect, looked_for

if TYPE_CHECKING:
    from .demo import DemoRow

# Rendering, reference building and scoring (numpy, OpenCV, Pillow) are imported by each command
# when it runs, so `data ... --help` and `demo --help` start at once.

TRACK = click.Choice(["align", "structure"])


def _fail(exc: Exception) -> None:
    err.print(f"[bold red]error:[/bold red] {terminal(str(exc))}")
    sys.exit(2)


@click.group("data")
def data() -> None:
    """Synthetic mini-challenge, reference building, prompt-grouped folds, trivial predictors."""


@data.command("synth")
@click.argument("out_dir", metavar="OUT", type=click.Path(file_okay=False))
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True,
              help="Random seed; same seed, same files.")
@click.option("--size", type=click.Choice(SYNTH_SIZES), default="small", show_default=True,
              help="small: seconds, for trying things; medium: a few thousand images per track, for training.")
@click.option("--workers", type=click.IntRange(min=1), default=2, show_default=True, help="Worker processes.")
@click.option("--quiet", is_flag=True, help="No progress bars.")
@click.option("--json", "as_json", is_flag=True, help="Print the manifest as JSON.")
def synth(out_dir: str, seed: int, size: str, workers: int, quiet: bool, as_json: bool) -> None:
    """Write a complete synthetic mini-challenge for both tracks to OUT, in the official formats."""
    from .synth import synthesize

    try:
        manifest = synthesize(out_dir, seed=seed, size=size, workers=workers, progress=not (quiet or as_json))
    except (ReferenceDataError, ValueError, OSError) as exc:
        _fail(exc)
        return
    if as_json:
        click.echo(json.dumps(manifest, indent=2))
        return
    table = Table(title=f"Synthetic challenge in {out_dir} (size {size}, seed {seed}, {manifest['seconds']:.1f} s)")
    for col in ("track", "split", "images", "prompts / artefacts", "elements"):
        table.add_column(col, justify="left" if col in ("track", "split") else "right")
    for track, info in manifest["tracks"].items():
        for split, counts in info["splits"].items():
            table.add_row(track, split, str(counts["images"]),
                          str(counts.get("prompts", counts.get("artefacts", ""))), str(counts.get("elements", "")))
    out.print(table)
    out.print("Public files: inputs, images, train annotations. Hidden: *_eval.json, *_gt.pkl, val/test raw "
              "annotations (see manifest.json).")


@data.command("build-ref")
@click.argument("raw", type=click.Path(exists=True))
@click.option("--out", "out_path", type=click.Path(dir_okay=False), required=True,
              help="Reference to write: eval.json (Track 1) or gt.pkl (Track 2).")
@click.option("--track", type=TRACK, default=None,
              help="Default: inferred (a JSON list is Track 1, an object Track 2; a folder: the track it holds).")
@click.option("--images", type=click.Path(exists=True, file_okay=False), default=None,
              help="Track 2: folder of the images, to draw each image's shapes at its own size "
                   "(default for a data folder: its training images).")
@click.option("--min-votes", type=click.IntRange(min=1), default=2, show_default=True,
              help="Track 2: annotators who must mark a pixel for it to count as distorted.")
def build_ref(raw: str, out_path: str, track: str | None, images: str | None, min_votes: int) -> None:
    """Turn raw annotations into a hidden reference the scorer reads.

    RAW is the annotation file (train_list.json, train_info.json, ...) or a data folder, whose
    training annotations are used (a Track 1 root, a Track 2 root with train/, a synthetic challenge).
    """
    from .build_ref import build_align_reference, build_structure_reference

    try:
        raw_path, track, images = _raw_annotations(Path(raw), track, images)
        if track == "align":
            records = build_align_reference(raw_path, out_path)
            out.print(f"[green]wrote[/green] {terminal(out_path)}: {len(records)} images, "
                      f"{sum(len(r['element_score']) for r in records)} elements.")
        else:
            if images is None:
                raise click.UsageError("Track 2 needs --images DIR: shapes are drawn at each image's own size.")
            warnings: list[str] = []
            gt = build_structure_reference(raw_path, images, out_path, min_votes=min_votes, warnings=warnings)
            for line in warnings[:20]:
                err.print(f"[yellow]warning:[/yellow] {terminal(line)}")
            if len(warnings) > 20:
                err.print(f"[yellow]warning:[/yellow] ... and {len(warnings) - 20} more image(s) with no annotator.")
            marked = sum(int(v["pred_area"].any()) for v in gt.values())
            out.print(f"[green]wrote[/green] {terminal(out_path)}: {len(gt)} images, {marked} with a distortion mask"
                      + (f", {len(warnings)} with no annotator (empty mask)." if warnings else "."))
    except (ReferenceDataError, OSError) as exc:
        _fail(exc)


def _raw_annotations(raw: Path, track: str | None, images: str | None) -> tuple[Path, str, str | None]:
    """(annotation file, track, images folder) of build-ref's RAW: a file, or a data folder's training data."""
    if raw.is_file():
        return raw, track or _infer_track(raw), images
    wanted = [track] if track else ["align", "structure"]
    found = [(t, s) for t in wanted if (s := detect(raw, t)) is not None and s.has("train")]
    if not found:
        looked = "; ".join(f"{TRACK_NAMES[t]}: {looked_for(raw, t)}" for t in wanted)
        raise DataLayoutError(str(raw), f"holds no training annotations (looked in it for {looked}).",
                                 "Pass the annotation file, or a data folder laid out as in the README.")
    if len(found) > 1:
        raise click.UsageError(f"{raw} holds training annotations of both tracks; add --track align or structure.")
    t, source = found[0]
    if t == "structure" and images is None and source.has("train", "images"):
        images = str(source.images("train"))
    err.print(f"{terminal(TRACK_NAMES[t])}: {terminal(str(source.annotations('train')))}"
              + (f", images {terminal(images)}" if t == "structure" and images else ""))
    return source.annotations("train"), t, images


def _infer_track(path: Path) -> str:
    from ..tracks.common import read_json_file

    obj = read_json_file(path, "Pass the raw annotation file.")
    return "align" if isinstance(obj, list) else "structure"


@data.command("folds")
@click.argument("data_path", metavar="DATA", type=click.Path(exists=True))
@click.option("--k", type=click.IntRange(min=2), default=5, show_default=True, help="Number of folds.")
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True, help="Seed of the group order.")
@click.option("--track", type=TRACK, default=None, help="Only this track (default: every training file found).")
@click.option("--out", "out_path", type=click.Path(dir_okay=False), default=None,
              help="Output file (default: folds.json next to each training file).")
def folds(data_path: str, k: int, seed: int, track: str | None, out_path: str | None) -> None:
    """Prompt-grouped folds of the training data.

    DATA is a training file or a data folder: a synthetic challenge or one of its track folders, a Track 1
    root (train_list.json), a Track 2 root (train/train_info.json). folds.json goes next to the training file.
    """
    from .folds import FOLDS_NAME, make_folds, training_files

    try:
        files = training_files(data_path, track)
        if out_path and len(files) > 1:
            raise click.UsageError("--out needs a single training file; add --track.")
        for file in files:
            target = Path(out_path) if out_path else file.parent / FOLDS_NAME
            result = make_folds(file, k=k, seed=seed, out=target)
            table = Table(title=f"{result['track']}: {k} prompt-grouped folds of {file} -> {target}")
            for col in ("fold", "prompts", "images"):
                table.add_column(col, justify="right")
            for entry in result["folds"]:
                table.add_row(str(entry["fold"]), str(len(entry["prompts"])), str(len(entry["images"])))
            out.print(table)
    except (ReferenceDataError, ValueError, OSError) as exc:
        _fail(exc)


@data.command("trivial")
@click.argument("data_path", metavar="DATA", type=click.Path(exists=True, file_okay=False))
@click.option("--track", type=TRACK, required=True, help="align (Track 1) or structure (Track 2).")
@click.option("--kind", type=click.Choice(TRIVIAL_KINDS), required=True, help="Which trivial predictor.")
@click.option("--split", type=click.Choice(EVAL_SPLITS), default="test", show_default=True)
@click.option("--noise", type=click.FloatRange(min=0), default=0.3, show_default=True, help="Oracle noise level.")
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True)
@click.option("--out", "out_path", type=click.Path(dir_okay=False), default=None,
              help="Zip to write (default: submissions/trivial-TRACK-KIND-SPLIT.zip).")
def trivial(data_path: str, track: str, kind: str, split: str, noise: float, seed: int, out_path: str | None) -> None:
    """Write a trivial submission (constant, random or noisy oracle) for a synthetic challenge DATA."""
    from .trivial import write_trivial

    try:
        path = write_trivial(data_path, track, kind, split, out_path, noise=noise, seed=seed)
    except (ReferenceDataError, ValueError, OSError) as exc:
        _fail(exc)
        return
    out.print(f"[green]wrote[/green] {terminal(str(path))}")


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def demo_table(rows: list[DemoRow], split: str) -> Table:
    """One rich table: track, submission, main score and its components (fits 80 columns)."""
    table = Table(title=f"ntire-t2iqa demo: synthetic challenge, {split} split")
    for col in ("track", "submission", "main", "SRCC", "PLCC", "ACC/F1", "warn"):
        left = col in ("track", "submission")
        table.add_column(col, justify="left" if left else "right", no_wrap=True)
    for row in rows:
        third = row.components.get("acc", row.components.get("f1"))
        main = _fmt(row.main_score) if row.valid else "[red]invalid[/red]"
        table.add_row(row.track, row.label, main, _fmt(row.components.get("srcc")),
                      _fmt(row.components.get("plcc")), _fmt(third), str(len(row.warnings)))
    return table


def _baseline_names(text: str | None) -> tuple[str, ...] | None:
    """``--baselines``: ``None`` (the default set), ``()`` for ``none``, else the names, each a known baseline."""
    if text is None:
        return None
    names = tuple(dict.fromkeys(n.strip() for n in text.split(",") if n.strip() and n.strip() != "none"))
    try:
        from ntire_t2iqa_baselines import registry
    except ImportError:  # a core-only install: the demo runs without baselines and says how to add them
        return names
    for name in names:
        try:
            registry.get(name)
        except KeyError as exc:
            raise click.UsageError(f"--baselines: {exc.args[0]} Use 'none' for no baseline.") from None
    return names


@click.command("demo")
@click.argument("out_dir", metavar="[OUT_DIR]", type=click.Path(file_okay=False), default="demo")
@click.option("--submissions", type=click.Path(file_okay=False), default="submissions", show_default=True,
              help="Where the demo's submission zips go.")
@click.option("--split", type=click.Choice(EVAL_SPLITS), default="test", show_default=True)
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True)
@click.option("--baselines", "baseline_names", default=None, metavar="NAMES",
              help="Comma-separated baselines to train (tiny configs, reused from OUT_DIR/.runs) and score, e.g. "
                   "fga-blip2,rahf,lvlm-stack (lvlm-stack: about 2.5 more minutes the first time); 'none' for none. "
                   "[default: fga-blip2,rahf]")
@click.option("--quiet", is_flag=True, help="No progress bars; baseline logs only if a baseline fails.")
@click.option("--json", "as_json", is_flag=True, help="Print the rows as JSON.")
def demo(out_dir: str, submissions: str, split: str, seed: int, baseline_names: str | None, quiet: bool,
         as_json: bool) -> None:
    """Run the toolkit end to end on the small synthetic challenge in OUT_DIR (default demo/)."""
    from ..leaderboard.export import to_table
    from .demo import run_demo

    baselines = _baseline_names(baseline_names)
    start = time.perf_counter()
    try:
        run = run_demo(out_dir, submissions, split, seed, progress=not (quiet or as_json), baselines=baselines)
    except (ReferenceDataError, ValueError, OSError) as exc:
        _fail(exc)
        return
    rows, timings = run.rows, run.timings
    if as_json:
        click.echo(json.dumps({"rows": [{"track": r.track, "submission": r.label, "zip": str(r.path),
                                         "valid": r.valid, "main_score": r.main_score, **r.components,
                                         "warnings": r.warnings, "errors": r.errors} for r in rows],
                               "seconds": timings, "notes": run.notes,
                               "reports": {t: {"submission": label, "html": str(page)}
                                           for t, (label, page) in run.reports.items()}}, indent=2))
    else:
        out.print(demo_table(rows, split))
        for board, page in run.boards.values():
            out.print(to_table(board, out.width))
            out.print(f"HTML leaderboard: {terminal(str(page))}")
        for track, (label, page) in run.reports.items():
            out.print(f"Where {label} ({track}) loses points: {terminal(str(page))}")
        for row in rows:
            for problem in row.errors[:3]:
                out.print(f"[red]{row.track} {row.label}:[/red] {terminal(problem)}")
        made = f"generated in {timings['generate']:.1f} s, " if timings["generate"] else "reused, "
        out.print(f"Challenge {out_dir}/ {made}submissions in {submissions}/, "
                  f"total {time.perf_counter() - start:.1f} s.")
        out.print("Constant predictions leave SRCC/PLCC undefined: the scorer counts them as 0 and warns. "
                  "Every baseline must beat random and constant; the noisy oracle reads the hidden answers.")
        for note in run.notes:
            out.print(f"[yellow]note:[/yellow] {terminal(note)}")
        out.print(f"Next: ntire-t2iqa score {submissions}/demo-align-oracle.zip --track align "
                  f"--ref {out_dir}/align/{split}_eval.json")
    sys.exit(0 if all(r.valid for r in rows) else 1)
