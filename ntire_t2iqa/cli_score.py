"""``validate`` and ``score``: the participant's check and the organizer's score of one submission.

The library (readers, tracks, metrics) is imported when a command runs, not when its
``--help`` is shown.
"""

from __future__ import annotations

import json
import sys

import click

from . import metrics
from .cli_common import TRACK, limit_options, make_limits, out, print_problems, reference_failure, submission_failure
from .errors import ReferenceDataError, SubmissionError
from .safetext import terminal


@click.command("validate")
@click.argument("submission", type=click.Path(exists=True))
@click.option("--track", type=TRACK, required=True, help="align (Track 1) or structure (Track 2).")
@click.option("--inputs", type=click.Path(exists=True), default=None,
              help="Public inputs of the split to check coverage against. Track 1: the inputs JSON, or its "
                   "folder (val/ holding val.json). Track 2: a JSON list of image names, the split's "
                   "*_info.json, or its folder (val/ holding val_info.json or images/).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of text.")
@limit_options
def validate(submission: str, track: str, inputs: str | None, as_json: bool,
             max_json_mib: float | None, max_pkl_mib: float | None) -> None:
    """Check a submission zip (or unpacked folder) and report every problem with its fix."""
    from .scoring import validate as validate_submission

    try:
        report = validate_submission(submission, track, inputs, make_limits(max_json_mib, max_pkl_mib))
    except ReferenceDataError as exc:
        reference_failure(exc, as_json)
        return
    if as_json:
        click.echo(json.dumps(report.to_dict(), indent=2))
    else:
        print_problems(report.problems, out)
        if report.coverage_note():
            out.print(f"[dim]note[/dim]    {terminal(report.coverage_note())}")
        if report.valid:
            extra = f" with {report.n_warnings:,} warning(s)" if report.warnings else ""
            out.print(f"[bold green]valid[/bold green] {track} submission: {report.n_images} images{extra}.")
        else:
            out.print(f"[bold red]invalid[/bold red]: {report.n_errors:,} error(s), "
                      f"{report.n_warnings:,} warning(s).")
    sys.exit(0 if report.valid else 1)


@click.command("score")
@click.argument("submission", type=click.Path(exists=True))
@click.option("--track", type=TRACK, required=True, help="align (Track 1) or structure (Track 2).")
@click.option("--ref", "reference", type=click.Path(exists=True), required=True,
              help="Hidden reference: Track 1 eval.json (averaged or raw), Track 2 gt.pkl, or a folder holding it.")
@click.option("--plcc-fit", type=click.Choice(metrics.PLCC_FITS), default="official", show_default=True,
              help="Fit applied before PLCC.")
@click.option("--json", "as_json", is_flag=True, help="Print exactly one JSON object on stdout.")
@limit_options
def score(submission: str, track: str, reference: str, plcc_fit: str, as_json: bool,
          max_json_mib: float | None, max_pkl_mib: float | None) -> None:
    """Score a submission against the hidden reference as the official program does."""
    from rich.table import Table

    from .scoring import score as score_submission

    try:
        result = score_submission(submission, reference, track, plcc_fit, make_limits(max_json_mib, max_pkl_mib))
    except ReferenceDataError as exc:
        reference_failure(exc, as_json)
        return
    except SubmissionError as exc:
        submission_failure(exc, as_json)
        return
    if as_json:
        click.echo(json.dumps(result.to_dict()))
        return
    table = Table(title=f"{track} score ({result.n_images} images)")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key, value in result.to_dict().items():
        if isinstance(value, float):
            table.add_row(key, f"{value:.6f}")
    table.add_row("plcc_fit", result.plcc_fit)
    out.print(table)
    for note in result.warnings:
        out.print(f"[yellow]warning[/yellow] {terminal(note)}")
