"""Helpers shared by the command modules: consoles, problem printing, exit on reference errors."""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from rich.console import Console

from .errors import Problem, ReferenceDataError, SubmissionError, count
from .safetext import terminal

if TYPE_CHECKING:
    from .archive import Limits
    from .svgplot import Plot

TRACK = click.Choice(["align", "structure"])
#: ``--plot-format`` choices (those of :data:`ntire_t2iqa.plotimage.FORMATS`, named here so --help loads nothing).
PLOT_FORMATS = ("png", "pdf", "svg")

# No highlighting and no :emoji: codes: text from a submission is shown as it is written
# (and markup in it is escaped with safetext.terminal wherever it is printed).
out = Console(highlight=False, soft_wrap=True, emoji=False)
err = Console(stderr=True, highlight=False, soft_wrap=True, emoji=False)


def make_limits(max_json_mib: float | None, max_pkl_mib: float | None) -> Limits:
    """The archive limits, with the output.json / output.pkl size limits raised where asked."""
    from .archive import Limits, MiB

    base = Limits()
    sizes = dict(base.member_bytes)
    if max_json_mib:
        sizes["output.json"] = int(max_json_mib * MiB)
    if max_pkl_mib:
        sizes["output.pkl"] = int(max_pkl_mib * MiB)
    total = max(base.max_total_bytes, sum(sizes.values()))
    return Limits(base.max_members, sizes, total, base.max_ratio)


def limit_options(func: Any) -> Any:
    func = click.option("--max-pkl-mib", type=click.FloatRange(min=1), default=None,
                        help="Raise the output.pkl size limit (default 2048 MiB).")(func)
    func = click.option("--max-json-mib", type=click.FloatRange(min=1), default=None,
                        help="Raise the output.json size limit (default 256 MiB).")(func)
    return func


def print_problems(problems: list[Problem], console: Console) -> None:
    """Print a report's problems (already bounded: a few dozen, the rest counted by kind)."""
    for p in problems:
        mark = "[bold red]error[/bold red]  " if p.severity == "error" else "[yellow]warning[/yellow]"
        console.print(f"{mark} {terminal(p.where)}: {terminal(p.what)}")
        if p.fix:
            console.print(f"         [green]fix:[/green] {terminal(p.fix)}")


def reference_failure(exc: ReferenceDataError, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps({"error": "reference", "message": str(exc)}))
    else:
        err.print(f"[bold red]{terminal(str(exc))}[/bold red]")
    sys.exit(2)


def submission_failure(exc: SubmissionError, as_json: bool, not_done: str = "not scored") -> None:
    """Report an invalid submission (every problem, or one JSON object) and exit 1."""
    if as_json:
        click.echo(json.dumps({"error": "submission", "valid": False,
                               "errors": [p.to_dict() for p in exc.errors],
                               "warnings": [p.to_dict() for p in exc.problems if p.severity == "warning"]}))
    else:
        print_problems(exc.problems, err)
        err.print(f"[bold red]invalid[/bold red]: {count(exc.problems, 'error'):,} error(s); {not_done}.")
    sys.exit(1)


def plot_options(func: Any) -> Any:
    """``--plots DIR`` and ``--plot-format``: the page's plots as picture files too (``leaderboard``, ``explain``)."""
    func = click.option("--plot-format", "plot_formats", type=click.Choice(PLOT_FORMATS), multiple=True,
                        default=("png",), show_default=True,
                        help="Format of the --plots files: png (3x the page's size), pdf, svg; repeat for "
                             "several.")(func)
    func = click.option("--plots", "plots_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
                        help="Also write every plot as a picture file in this folder (e.g. for a paper).")(func)
    return func


def write_plot_files(plots: Mapping[str, Plot], folder: Path, formats: tuple[str, ...]) -> list[Path]:
    """Write the plots with :func:`ntire_t2iqa.plotimage.write_plots`; exit 2 when the folder cannot be written."""
    from .plotimage import write_plots

    try:
        return write_plots(plots, folder, formats or ("png",))
    except OSError as exc:
        err.print(f"[bold red]cannot write the plots to {terminal(str(folder))}: "
                  f"{terminal(exc.strerror or str(exc))}.[/bold red] Fix: pass --plots a writable folder.")
        sys.exit(2)
