"""``integrity`` command, and the submission-limit options of ``rank`` (organizer side)."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
from rich.table import Table

from .cli_common import TRACK, err, out, reference_failure
from .errors import ReferenceDataError, StoreError
from .leaderboard.integrity import IntegrityOptions, IntegrityReport, analyse
from .leaderboard.limits import MAX_LISTED, parse_phase_start
from .leaderboard.runner import RunSummary
from .safetext import terminal

_SHOWN = 20
_PRIVATE = ("[bold red]ORGANIZERS ONLY - DO NOT PUBLISH[/bold red]: this report names teams suspected of probing "
            "or sharing predictions; its findings are leads to check, not proof.")


# --------------------------------------------------------------------------- rank's limit options


def limit_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """``rank``'s submission-limit options (they arrive in the command as keyword arguments)."""
    options = [
        click.option("--max-per-day", type=click.IntRange(min=0), default=None,
                     help="Most submissions per team per day (UTC) and phase; later ones are refused, never scored "
                          "(0: no limit). Kept in the store for later runs."),
        click.option("--max-per-phase", type=click.IntRange(min=0), default=None,
                     help="Most submissions per team per phase (0: no limit). Kept in the store for later runs."),
        click.option("--count-invalid/--no-count-invalid", default=None,
                     help="Whether invalid submissions count toward the limits (default: no, as Codabench counts)."),
        click.option("--phase-start", "phase_starts", multiple=True, metavar="NAME=TIME",
                     help="A phase starting at TIME (UTC), for submissions without a manifest phase (repeat it)."),
        click.option("--no-limits", is_flag=True, help="Drop the limits kept in the store (refused files get scored)."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def limits_from_options(max_per_day: int | None = None, max_per_phase: int | None = None,
                        count_invalid: bool | None = None, phase_starts: tuple[str, ...] = (),
                        no_limits: bool = False) -> dict[str, Any] | None:
    """The limit changes ``rank`` was given (None: keep the stored limits)."""
    if no_limits:
        if max_per_day or max_per_phase or phase_starts or count_invalid is not None:
            raise click.UsageError("--no-limits drops every limit: give it without other limit options")
        return {"per_day": 0, "per_phase": 0, "count_invalid": False, "phase_starts": ()}
    try:
        starts = tuple(parse_phase_start(p) for p in phase_starts)
    except ReferenceDataError as exc:
        raise click.UsageError(str(exc)) from None
    changes = {"per_day": max_per_day, "per_phase": max_per_phase, "count_invalid": count_invalid,
               "phase_starts": starts or None}
    return changes if any(v is not None for v in changes.values()) else None


def print_refused(summary: RunSummary, db: str, track: str) -> None:
    """List the submissions a run refused (organizer-facing stderr), the first few by name."""
    if not summary.refused:
        return
    err.print(f"[yellow]{len(summary.refused):,} submission(s) over a submission limit: refused, never "
              "scored.[/yellow]")
    for line in summary.refused[:MAX_LISTED]:
        err.print(f"[yellow]refused:[/yellow] {terminal(line)}")
    if len(summary.refused) > MAX_LISTED:
        err.print(f"... and {len(summary.refused) - MAX_LISTED:,} more; `ntire-t2iqa integrity --db "
                  f"{terminal(db)} --track {track} --json` lists them all.")


# --------------------------------------------------------------------------- integrity


def _table(title: str, head: list[str], rows: list[list[str]]) -> Table:
    table = Table(title=title)
    for h in head:
        table.add_column(h, justify="left" if h in ("Team", "Matches team", "Images probed most", "Evidence",
                                                     "First") else "right")
    for row in rows:
        table.add_row(*row)
    return table


def print_report(report: IntegrityReport) -> None:
    """The terminal report: every name through :func:`~ntire_t2iqa.safetext.terminal`."""
    d = report.data
    out.print(_PRIVATE)
    out.print(f"{len(d.subs):,} scored submissions ({d.totals.shape[0]:,} distinct files) of {report.teams():,} "
              f"teams, {d.n_images:,} images; probe pairs differ on 1 to {report.probe_limit:,} images.")
    for note in d.notes:
        out.print(f"[yellow]note:[/yellow] {terminal(note)}")
    rows = []
    for t in report.probing[:_SHOWN]:
        top = sorted(t.images().items(), key=lambda x: (-x[1], x[0]))[:3]
        rows.append([terminal(t.team), "yes" if t.flagged else "no", f"{t.submissions:,}", f"{t.probes:,}",
                     f"{t.single_image_probes:,}", f"{t.bits:.1f}",
                     terminal(", ".join(f"{d.image_name(i)} ({n})" for i, n in top))])
    if rows:
        out.print(_table("Label probing", ["Team", "Flagged", "Subs", "Probes", "Single-image", "Bits (est.)",
                                           "Images probed most"], rows))
    else:
        out.print("Label probing: no team has two submissions that differ on only a few images.")
    for title, pairs in (("Matching predictions across teams", report.copies),
                         ("Teams that submitted a baseline", report.baseline_copies)):
        rows = []
        for p in pairs[:_SHOWN]:
            m = max(p.matches, key=lambda m: (m.identical, max(m.pearson, m.spearman)))
            agreement = "n/a" if m.agreement is None else f"{m.agreement:.4f}"
            rows.append([terminal(p.team_a), terminal(p.team_b), f"{len(p.matches):,}",
                         f"{sum(x.identical for x in p.matches):,}", terminal(p.first),
                         terminal(f"{m.a.file} ~ {m.b.file}: r={m.pearson:.4f}, rho={m.spearman:.4f}, "
                                  f"agreement {agreement}")])
        if rows:
            out.print(_table(title, ["Team", "Matches team", "Pairs", "Identical", "First", "Evidence"], rows))
        else:
            out.print(f"{title}: none.")
        if len(pairs) > _SHOWN:
            out.print(f"... and {len(pairs) - _SHOWN:,} more (see --json).")
    out.print(f"Submission limits: {terminal(report.limits.describe())}; {len(report.refused):,} refused.")
    for r in report.refused[:_SHOWN]:
        out.print(f"  refused: {terminal(r.team)}: {terminal(r.file)} ({terminal(r.submitted_at)}): "
                  f"{terminal(r.reason)}")


@click.command("integrity")
@click.option("--db", type=click.Path(dir_okay=False), default="leaderboard.db", show_default=True)
@click.option("--track", type=TRACK, required=True)
@click.option("--phase", default=None, help="Only this manifest phase.")
@click.option("--probe-max-images", type=click.IntRange(min=1), default=20, show_default=True,
              help="A probe pair differs on at most this many images (or --probe-max-share, the larger).")
@click.option("--probe-max-share", type=click.FloatRange(0, 1, max_open=True), default=0.01, show_default=True,
              help="... or at most this share of the test images.")
@click.option("--min-probes", type=click.IntRange(min=1), default=2, show_default=True,
              help="Flag a team from this many probe submissions.")
@click.option("--min-correlation", type=click.FloatRange(0, 1, min_open=True), default=0.99, show_default=True,
              help="Per-image correlation of total scores (Pearson or Spearman) from which two teams' files match.")
@click.option("--min-agreement", type=click.FloatRange(0, 1, min_open=True), default=0.95, show_default=True,
              help="Track 1: share of equal element decisions needed as well.")
@click.option("--min-mask-agreement", type=click.FloatRange(0, 1, min_open=True), default=0.9, show_default=True,
              help="Track 2: overlap of the 32 x 32 mask grids needed as well.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object with every finding.")
@click.option("--html", "html_out", type=click.Path(dir_okay=False), default=None,
              help="Also write the organizer-only HTML page here (never publish it).")
def integrity_command(db: str, track: str, phase: str | None, probe_max_images: int, probe_max_share: float,
                      min_probes: int, min_correlation: float, min_agreement: float, min_mask_agreement: float,
                      as_json: bool, html_out: str | None) -> None:
    """Organizers only: submission limits, label probing and teams with matching predictions.

    Reads the per-image predictions `rank` stored while scoring (no file is read again).
    Never publish the output: it names suspected teams.
    """
    options = IntegrityOptions(probe_max_images, probe_max_share, min_probes, min_correlation, min_agreement,
                               min_mask_agreement)
    try:
        report = analyse(db, track, options, phase)
    except ReferenceDataError as exc:
        reference_failure(exc, as_json)
        return
    except StoreError as exc:
        err.print(f"[bold red]{terminal(str(exc))}[/bold red]")
        sys.exit(2)
    if html_out:
        from .leaderboard.integrity_html import to_html

        try:
            Path(html_out).parent.mkdir(parents=True, exist_ok=True)
            Path(html_out).write_text(to_html(report), encoding="utf-8")
        except OSError as exc:
            err.print(f"[bold red]cannot write {terminal(html_out)}: {terminal(exc.strerror or str(exc))}."
                      "[/bold red] Fix: pass --html a path in a writable folder.")
            sys.exit(2)
        err.print(f"[bold red]organizer-only page[/bold red] (never publish it): wrote {terminal(html_out)}")
    if as_json:
        click.echo(report.to_json())
    else:
        print_report(report)
