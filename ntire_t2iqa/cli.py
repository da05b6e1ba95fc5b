"""The ``ntire-t2iqa`` command line: a thin click layer over the library.

Exit codes: 0 success, 1 invalid submission, 2 usage error or unreadable reference/inputs.
"""

from __future__ import annotations

import json
import sys

import click
from rich.table import Table

from . import __version__, metrics
from .cli_common import (
    TRACK,
    limit_options,
    make_limits,
    out,
    print_problems,
    reference_failure,
    submission_failure,
)
from .errors import ReferenceDataError, SubmissionError
from .safetext import terminal
from .scoring import score as score_submission
from .scoring import validate as validate_submission


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="ntire-t2iqa")
def main() -> None:
    """Validate, score and rank NTIRE 2025 T2I quality assessment submissions."""


@main.command()
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


@main.command()
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


from .cli_baseline import baseline as _baseline_group  # noqa: E402
from .cli_codalab import codabench_bundle_command, codalab_score_command  # noqa: E402
from .cli_explain import explain_command  # noqa: E402
from .cli_integrity import integrity_command  # noqa: E402
from .cli_rank import leaderboard_command, rank_command  # noqa: E402

for _command in (explain_command, rank_command, leaderboard_command, integrity_command, codalab_score_command,
                 codabench_bundle_command, _baseline_group):
    main.add_command(_command)


# The data package's commands: `data synth|build-ref|folds|trivial` and `demo`.
from .data.cli import data as _data_group  # noqa: E402
from .data.cli import demo as _demo_command  # noqa: E402

main.add_command(_data_group)
main.add_command(_demo_command)

from .cli_pack import pack_command  # noqa: E402

main.add_command(pack_command)


if __name__ == "__main__":  # pragma: no cover
    main()
