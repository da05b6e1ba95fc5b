"""``codalab-score`` and ``codabench-bundle``: the platform's scoring program and the competition bundle."""

from __future__ import annotations

import json
import sys
import zipfile
from pathlib import Path
from typing import Any

import click

from . import codalab
from .cli_common import TRACK, err, out, reference_failure
from .codalab.bundle import DEFAULT_IMAGE, OPENCV_IMAGE, write_bundle
from .codalab.config import BundleConfig, ConfigError, load_config, merge, parse_date
from .errors import MissingDependency, ReferenceDataError
from .safetext import terminal

_KEYS = click.Choice(codalab.NAMINGS)


@click.command("codalab-score")
@click.argument("input_dir", type=click.Path(exists=True, file_okay=False))
@click.argument("output_dir", type=click.Path(file_okay=False))
@click.option("--track", type=TRACK, default=None, help="Default: from the submission (output.json or output.pkl).")
@click.option("--keys", type=_KEYS, default="official", show_default=True,
              help="Key names in scores.txt/scores.json: the official programs' (SRCC, ..., Final_Score) or the "
                   "toolkit's (main_score, srcc, ...).")
@click.option("--json", "as_json", is_flag=True,
              help="Also print one JSON object: the exit code and scores.json's content (null when not scored).")
def codalab_score_command(input_dir: str, output_dir: str, track: str | None, keys: str, as_json: bool) -> None:
    """Scoring program: INPUT_DIR/res against INPUT_DIR/ref into OUTPUT_DIR/scores.txt and scores.json."""
    code = codalab.run(input_dir, output_dir, track, keys)
    if as_json:
        scores = Path(output_dir) / "scores.json"
        click.echo(json.dumps({"exit_code": code,
                               "scores": json.loads(scores.read_text(encoding="utf-8")) if scores.is_file() else None,
                               "files": sorted(p.name for p in Path(output_dir).iterdir() if p.is_file())}))
    sys.exit(code)


def _date(ctx: click.Context, param: click.Parameter, value: str | None) -> Any:
    if value is None:
        return None
    try:
        return parse_date(f"--{param.name.replace('phase_', '')}", value)  # type: ignore[union-attr]
    except ConfigError as exc:
        raise click.BadParameter(f"{exc.what} {exc.fix}") from None


_FILE = click.Path(exists=True, dir_okay=False, path_type=Path)


@click.command("codabench-bundle")
@click.argument("out_zip", type=click.Path(dir_okay=False))
@click.option("--track", type=TRACK, required=True)
@click.option("--ref", "reference", type=click.Path(exists=True), default=None,
              help="Hidden reference of the single phase (or of every phase the settings file gives none).")
@click.option("--config", "config_file", type=_FILE, default=None,
              help="Settings file (.toml or .json): title, pages, logo, phases with their references, limits, ...; "
                   "options given here override it.")
@click.option("--title", default=None, help="Competition title (at most 256 characters).")
@click.option("--description", default=None, help="One-paragraph description shown in the competition list.")
@click.option("--overview", type=_FILE, default=None, help="Overview page (Markdown); default: generated.")
@click.option("--evaluation", type=_FILE, default=None, help="Evaluation page (Markdown); default: generated.")
@click.option("--data-page", type=_FILE, default=None, help="Data page (Markdown); default: none.")
@click.option("--terms", type=_FILE, default=None, help="Terms of participation (Markdown); default: generic terms.")
@click.option("--logo", type=_FILE, default=None, help="PNG, JPEG, GIF or WebP; default: a generated PNG.")
@click.option("--docker-image", default=None,
              help=f"Image the program runs in. Default: {DEFAULT_IMAGE} (Track 1, or with --opencv-wheel), "
                   f"else {OPENCV_IMAGE}.")
@click.option("--opencv-wheel", type=_FILE, default=None,
              help="An opencv-python-headless wheel (Linux x86_64) to carry in the scoring program, so Track 2 runs "
                   "in an image without OpenCV.")
@click.option("--leaderboard-rule", type=click.Choice(["best", "last"]), default=None,
              help="Which submission represents a participant (as rank --pick). Default: best.")
@click.option("--keys", type=_KEYS, default=None,
              help="Key names the program writes and the columns use. Default: official.")
@click.option("--phase-name", default=None, help="Name of the single phase (default: Development).")
@click.option("--start", "phase_start", callback=_date, default=None, help="Phase start, YYYY-MM-DD[ HH:MM:SS] UTC "
              "(default: today).")
@click.option("--end", "phase_end", callback=_date, default=None, help="Phase end (default: none).")
@click.option("--per-day", "phase_max_submissions_per_day", type=click.IntRange(min=1), default=None,
              help="Submissions per participant and day (default 5).")
@click.option("--total", "phase_max_submissions", type=click.IntRange(min=1), default=None,
              help="Submissions per participant in the phase (default 300).")
@click.option("--time-limit", "phase_execution_time_limit", type=click.IntRange(min=1), default=None,
              help="Seconds the scoring of one submission may take (default 600).")
@click.option("--solution/--no-solution", "solutions", default=None,
              help="Add a trivial solution per task to check the set-up (default: add).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object: the bundle's path and its members.")
def codabench_bundle_command(out_zip: str, track: str, reference: str | None, config_file: Path | None,
                             as_json: bool, **options: Any) -> None:
    """Write a Codabench competition bundle: competition.yaml, pages, logo, scoring program, reference data."""
    for page in ("overview", "evaluation", "terms"):
        options[f"page_{page}"] = options.pop(page)
    options["page_data"] = options.pop("data_page")
    try:
        config = load_config(config_file) if config_file else BundleConfig()
        config = merge(config, **options)
        path = write_bundle(track, reference, out_zip, config)
    except ConfigError as exc:
        err.print(f"[bold red]settings: {terminal(str(exc))}[/bold red]")
        sys.exit(2)
    except MissingDependency as exc:
        err.print(f"[bold red]{terminal(str(exc))}[/bold red]")
        sys.exit(2)
    except ReferenceDataError as exc:
        reference_failure(exc, False)
        return
    if as_json:
        with zipfile.ZipFile(path) as zf:
            click.echo(json.dumps({"bundle": str(path), "track": track, "members": zf.namelist()}))
    else:
        out.print(f"wrote {terminal(str(path))}")
    if track == "structure" and config.opencv_wheel is None and config.docker_image is None:
        err.print(f"[yellow]note[/yellow]: Track 2 needs OpenCV; the bundle uses {OPENCV_IMAGE}, the one codalab "
                  "image that installs it. To run in the smaller default image instead, carry OpenCV in the bundle "
                  "with --opencv-wheel (see the README's Codabench section).")
