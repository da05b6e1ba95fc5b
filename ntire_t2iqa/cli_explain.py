"""``ntire-t2iqa explain``: where a submission loses points (terminal summary, JSON or an HTML report)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from . import metrics
from .cli_common import (
    TRACK,
    err,
    limit_options,
    make_limits,
    out,
    plot_options,
    reference_failure,
    submission_failure,
    write_plot_files,
)
from .data.layout import write_text_atomic
from .errors import ReferenceDataError, SubmissionError
from .safetext import terminal


@click.command("explain")
@click.argument("submission", type=click.Path(exists=True))
@click.option("--track", type=TRACK, required=True, help="align (Track 1) or structure (Track 2).")
@click.option("--ref", "reference", type=click.Path(exists=True), required=True,
              help="Labelled reference: Track 1 eval.json (averaged or raw), Track 2 gt.pkl, or a folder holding it.")
@click.option("--images", type=click.Path(exists=True, file_okay=False), default=None,
              help="Folder of the pictures: Track 2 overlays are drawn over them (else over a blank canvas), "
                   "Track 1's largest rank errors get thumbnails.")
@click.option("--out", "out_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write a self-contained HTML report here.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object (every table) instead of text.")
@click.option("--plcc-fit", type=click.Choice(metrics.PLCC_FITS), default="official", show_default=True,
              help="Fit applied before PLCC.")
@click.option("--top", type=click.IntRange(min=1), default=20, show_default=True,
              help="Rows in the worst-image lists.")
@click.option("--overlays", type=click.IntRange(min=0), default=50, show_default=True,
              help="Track 2: overlay pictures of this many worst images in the HTML report.")
@plot_options
@limit_options
def explain_command(submission: str, track: str, reference: str, images: str | None, out_path: Path | None,
                    as_json: bool, plcc_fit: str, top: int, overlays: int, max_json_mib: float | None,
                    max_pkl_mib: float | None, plots_dir: Path | None, plot_formats: tuple[str, ...]) -> None:
    """Show where a submission loses points against a labelled split (e.g. a validation fold).

    --plots DIR also writes the report's plots (score fit; Track 1 category errors and
    threshold calibration) as PNG (or PDF, SVG) files, e.g. for a paper.
    """
    from .explain import explain
    from .explain.report import plots, print_summary, to_html

    try:
        ex = explain(submission, reference, track, images, plcc_fit, top, overlays if out_path else 0,
                     make_limits(max_json_mib, max_pkl_mib))
    except ReferenceDataError as exc:
        reference_failure(exc, as_json)
        return
    except SubmissionError as exc:
        submission_failure(exc, as_json, "not explained")
        return
    if out_path is not None:
        try:
            write_text_atomic(out_path, to_html(ex))
        except OSError as exc:
            err.print(f"[bold red]cannot write {terminal(str(out_path))}: {terminal(str(exc.strerror or exc))}"
                      "[/bold red]; choose a writable path.")
            sys.exit(2)
    if plots_dir is not None:
        written = write_plot_files(plots(ex), plots_dir, plot_formats)
        err.print(f"wrote {len(written)} plot file(s) to {plots_dir}")
    if as_json:
        click.echo(json.dumps(ex.to_dict()))
        return
    print_summary(ex, out)
    if out_path is not None:
        out.print(f"[green]wrote[/green] {terminal(str(out_path))}")
