"""``rank`` and ``leaderboard`` commands (organizer side)."""

from __future__ import annotations

import json
import os
import signal
import sys
from pathlib import Path
from typing import Any

import click
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from . import metrics
from .cli_common import TRACK, err, out, plot_options, reference_failure, write_plot_files
from .cli_integrity import limit_options, limits_from_options, print_refused
from .errors import ReferenceDataError, StoreError
from .leaderboard import FORMATS, HIGHLIGHT_FORMATS, plots, rank, render
from .leaderboard.export import to_json, to_table
from .leaderboard.runner import DEFAULT_TIMEOUT, Interrupted, signals_raise
from .safetext import terminal


@click.command("rank")
@click.argument("submissions", type=click.Path(exists=True, file_okay=False), required=False)
@click.option("--track", type=TRACK, required=True)
@click.option("--ref", "reference", type=click.Path(exists=True), required=True, help="Hidden reference.")
@click.option("--manifest", type=click.Path(exists=True, dir_okay=False), default=None,
              help="CSV with path, team, leader, submitted_at, phase (instead of a <team>/<file>.zip folder).")
@click.option("--db", type=click.Path(dir_okay=False), default="leaderboard.db", show_default=True,
              help="SQLite results store (created if missing).")
@click.option("--pick", type=click.Choice(["best", "last"]), default="best", show_default=True,
              help="Which valid submission represents a team.")
@click.option("--workers", type=click.IntRange(min=1), default=1, show_default=True, help="Scoring processes.")
@click.option("--bootstrap", "resamples", type=click.IntRange(min=0), default=0, show_default=True,
              help="Paired bootstrap resamples over images for 95% intervals (0: off).")
@click.option("--plcc-fit", type=click.Choice(metrics.PLCC_FITS), default="official", show_default=True)
@click.option("--phase", default=None, help="Only rank submissions of this manifest phase.")
@click.option("--seed", type=int, default=0, show_default=True, help="Bootstrap seed.")
@click.option("--timeout", type=click.FloatRange(min=0), default=DEFAULT_TIMEOUT, show_default=True,
              help="Seconds one file may take to be read and scored; a slower file is invalid (0: no limit).")
@click.option("--json", "as_json", is_flag=True,
              help="Print one JSON object (the run's counts and the leaderboard) instead of the table.")
@limit_options
def rank_command(submissions: str | None, track: str, reference: str, manifest: str | None, db: str, pick: str,
                 workers: int, resamples: int, plcc_fit: str, phase: str | None, seed: int, timeout: float,
                 as_json: bool, **limit_args: Any) -> None:
    """Score every new submission into the results store and print the leaderboard."""
    if submissions is None and manifest is None:
        raise click.UsageError("give a SUBMISSIONS folder (<team>/<file>.zip) or --manifest CSV")
    limits = limits_from_options(**limit_args)
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    try:
        with signals_raise(), Progress(*columns, console=err, transient=True, disable=not err.is_terminal) as bar:
            tasks: dict[str, int] = {}

            def progress(stage: str, done: int, total: int) -> None:
                if stage not in tasks:
                    tasks[stage] = bar.add_task(stage, total=total)
                bar.update(tasks[stage], completed=done, total=total)

            board, summary = rank(submissions, track, reference, db, manifest, pick, workers, resamples, plcc_fit,
                                  seed, progress, phase, timeout, limits)
    except ReferenceDataError as exc:
        reference_failure(exc, as_json)
        return
    except StoreError as exc:
        _store_failure(exc, as_json)
    except (KeyboardInterrupt, Interrupted) as exc:
        signum = exc.signum if isinstance(exc, Interrupted) else signal.SIGINT
        err.print(f"[bold red]rank stopped by {signal.Signals(signum).name}[/bold red]: every result scored before "
                  f"it is kept in {terminal(db)}; run the same command again to finish.")
        # Every result is committed and the store closed by now. Leave without the interpreter's exit
        # hooks: the process pool's hook would write to a pipe its stopped manager thread has closed.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(128 + signum)
    if as_json:
        click.echo(json.dumps({"summary": {"files": summary.total, "scored_now": summary.scored,
                                           "invalid_now": summary.invalid, "already_scored": summary.already_scored,
                                           "not_scored": summary.failed, "refused": summary.refused},
                               "leaderboard": json.loads(to_json(board))}))
        sys.exit(1 if summary.failed else 0)
    out.print(to_table(board, out.width))
    err.print(f"{summary.total} file(s): {summary.scored} scored now ({summary.invalid} invalid), "
              f"{summary.already_scored} already in {terminal(db)}.")
    if board.invalid:
        err.print(f"{len(board.invalid)} invalid submission(s); see `ntire-t2iqa leaderboard --db {terminal(db)} "
                  f"--track {track} --format md`.")
    for line in summary.notes:
        err.print(f"[yellow]invalid after an unexpected scorer error (organizer note):[/yellow] {terminal(line)}")
    print_refused(summary, db, track)
    for line in summary.failed:
        err.print(f"[red]not scored (will be retried):[/red] {terminal(line)}")
    sys.exit(1 if summary.failed else 0)


def _store_failure(exc: StoreError, as_json: bool = False) -> None:
    """Report a results-store problem (organizer side) and exit 2."""
    if as_json:
        click.echo(json.dumps({"error": "store", "message": str(exc)}))
    else:
        err.print(f"[bold red]{terminal(str(exc))}[/bold red]")
    sys.exit(2)


@click.command("leaderboard")
@click.option("--db", type=click.Path(dir_okay=False), default="leaderboard.db", show_default=True)
@click.option("--track", type=TRACK, required=True)
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="table", show_default=True)
@click.option("--pick", type=click.Choice(["best", "last"]), default="best", show_default=True)
@click.option("--phase", default=None, help="Only this manifest phase.")
@click.option("--private", is_flag=True,
              help="HTML for organizers only: adds a predicted-vs-reference scatter, which shows hidden "
                   "reference values. Never publish this page.")
@click.option("--team", default=None,
              help="Highlight this team's row (table, md, latex, html; fit to publish). With --private it is also "
                   "the team whose scatter is drawn (default: the top row).")
@click.option("--out", "out_path", type=click.Path(dir_okay=False), default=None,
              help="Write to this file instead of stdout.")
@plot_options
def leaderboard_command(db: str, track: str, fmt: str, pick: str, phase: str | None, private: bool,
                        team: str | None, out_path: str | None, plots_dir: Path | None,
                        plot_formats: tuple[str, ...]) -> None:
    """Export a stored leaderboard as a table, CSV, Markdown, LaTeX, HTML or JSON.

    Every format is fit to publish (per-submission aggregates only), except the HTML page
    made with --private, which shows hidden per-image reference values. --plots DIR also
    writes the page's plots as PNG (or PDF, SVG) files, e.g. for a paper.
    """
    if private and fmt != "html":
        raise click.UsageError("--private applies to --format html only")
    if team is not None and fmt not in HIGHLIGHT_FORMATS:
        raise click.UsageError(f"--team highlights a row in --format {', '.join(HIGHLIGHT_FORMATS)}; {fmt} is "
                               "plain data without styling")
    try:
        rendered = render(db, track, fmt, pick, phase, team, private)
        if plots_dir is not None:
            written = write_plot_files(plots(db, track, pick, phase, team, private), plots_dir, plot_formats)
    except ReferenceDataError as exc:
        reference_failure(exc, False)
        return
    except StoreError as exc:
        _store_failure(exc)
    if plots_dir is not None:
        err.print(f"wrote {len(written)} plot file(s) to {terminal(str(plots_dir))}"
                  + (" (the scatter shows hidden reference values: do not publish it)" if private else ""))
    if fmt == "table":
        board = rendered
        assert not isinstance(board, str)
        out.print(to_table(board, out.width, team))
        if board.invalid:
            err.print(f"{len(board.invalid)} invalid submission(s), not ranked; their reasons: "
                      f"`--format md` (or json).")
        return
    assert isinstance(rendered, str)
    if private:
        err.print("[bold red]organizer-only page: it shows hidden reference values; do not publish it[/bold red]")
    if out_path:
        try:
            Path(out_path).parent.mkdir(parents=True, exist_ok=True)
            Path(out_path).write_text(rendered, encoding="utf-8")
        except OSError as exc:
            err.print(f"[bold red]cannot write {terminal(out_path)}: {terminal(exc.strerror or str(exc))}.[/bold red] "
                      "Fix: pass --out a path in a writable folder.")
            sys.exit(2)
        err.print(f"wrote {terminal(out_path)}")
    else:
        click.echo(rendered, nl=False)

