"""``baseline list|train|run``: the reference baselines, imported only when these commands run."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import click
from rich.table import Table

from .cli_common import err, out, print_problems
from .errors import ReferenceDataError, SubmissionError
from .safetext import terminal

INSTALL_HINT = ("The baselines need the 'baselines' extra (torch, transformers, ...): "
                "pip install 'ntire-t2iqa[baselines]'  (on a CPU-only machine install torch's CPU build first).")


def _registry() -> Any:
    try:
        from ntire_t2iqa_baselines import registry
    except ImportError as exc:  # the package itself is missing
        raise click.ClickException(f"{INSTALL_HINT} ({exc})") from None
    return registry


def _load(name: str) -> tuple[Any, Any]:
    registry = _registry()
    try:
        spec = registry.get(name)
    except KeyError as exc:
        raise click.UsageError(str(exc.args[0])) from None
    try:
        return spec, registry.load(name)
    except ImportError as exc:
        raise click.ClickException(f"{INSTALL_HINT} ({exc})") from None


def _config(module: Any, choice: str, overrides: tuple[str, ...] = ()) -> dict[str, Any]:
    """The baseline's config (a name of its ``CONFIGS`` or a JSON file) with ``--set`` overrides, validated once
    against its ``CONFIG_SCHEMA``; a bad file, key or value is a usage error naming the key path."""
    from ntire_t2iqa_baselines.common.config import ConfigError, load_baseline_config

    try:
        return load_baseline_config(getattr(module, "CONFIGS", {}), getattr(module, "CONFIG_SCHEMA", None), choice,
                                    overrides)
    except ConfigError as exc:
        raise click.UsageError(f"--config: {exc}") from None


@click.group("baseline")
def baseline() -> None:
    """Reference baselines: list, train, and run them into a validated submission zip."""


@baseline.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list of {name, track, tracks, summary}.")
def list_command(as_json: bool) -> None:
    """List the baselines."""
    if as_json:
        click.echo(json.dumps([{"name": spec.name, "track": spec.track, "tracks": list(spec.all_tracks),
                                "summary": spec.summary} for spec in _registry().REGISTRY.values()]))
        return
    table = Table(title="Baselines")
    for col in ("name", "track", "what it is"):
        table.add_column(col)
    for spec in _registry().REGISTRY.values():
        table.add_row(spec.name, ", ".join(spec.all_tracks), spec.summary)
    out.print(table)


DATA_HELP = ("Data folder: a synthetic challenge (`data synth`), a Track 1 root (train_list.json + images/, "
             "val/, test/) or a Track 2 root (train/, val/, test/); see the README, \"Your own copy of the data\".")


TRACK_HELP = "The track, for a baseline that submits to both (eliq); default: the baseline's first track."


def _track(spec: Any, track: str | None) -> str:
    """``--track`` checked against the baseline's tracks (default: its first)."""
    if track is None:
        return spec.track
    if track not in spec.all_tracks:
        raise click.UsageError(f"--track {track}: {spec.name} submits to {' and '.join(spec.all_tracks)} only")
    return track


def _data(track: str, data: str | None, split: str, annotations: str | None, images: str | None) -> Any:
    """The track's data: the folder's layout detected, with explicit pieces replacing what was found."""
    from .data.sources import SplitFiles, locate

    pieces = SplitFiles(Path(annotations) if annotations else None, Path(images) if images else None)
    return locate(data, track, {split: pieces})


@baseline.command("train")
@click.argument("name")
@click.option("--data", type=click.Path(exists=True, file_okay=False), default=None, help=DATA_HELP)
@click.option("--train-annotations", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Training annotations, when not where --data's layout has them "
                   "(Track 1: train_list.json; Track 2: train_info.json).")
@click.option("--train-images", type=click.Path(exists=True, file_okay=False), default=None,
              help="Training images folder, when not where --data's layout has it.")
@click.option("--out", "run_dir", type=click.Path(file_okay=False), required=True,
              help="Run folder: checkpoints (every epoch) and config; an existing run is resumed.")
@click.option("--config", "config_name", default="tiny", show_default=True, help="tiny, full, or a JSON file.")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
              help="Override one config value by its dotted key path, the value read as JSON (else a string), "
                   "e.g. --set train.epochs=2, --set model.path=/models/Qwen2.5-VL-7B-Instruct (lvlm-stack), "
                   "--set altclip_dir=/models/AltCLIP (rahf). Repeatable; checked with the config.")
@click.option("--device", default="cpu", show_default=True, help="cpu, cuda or cuda:N.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--track", type=click.Choice(["align", "structure"]), default=None, help=TRACK_HELP)
def train_command(name: str, data: str | None, train_annotations: str | None, train_images: str | None,
                  run_dir: str, config_name: str, overrides: tuple[str, ...], device: str, seed: int,
                  track: str | None) -> None:
    """Train a baseline (resumes from the run folder's last checkpoint)."""
    spec, module = _load(name)
    track = _track(spec, track)
    config = _config(module, config_name, overrides)
    t0 = time.perf_counter()
    try:
        source = _data(track, data, "train", train_annotations, train_images)
        err.print(f"{spec.name}: training data: {terminal(_describe(source, 'train'))}")
        path = module.train(source, Path(run_dir), config, device, seed)
    except (ReferenceDataError, RuntimeError, FileNotFoundError, ValueError) as exc:
        raise click.ClickException(str(exc)) from None
    err.print(f"trained {spec.name} in {time.perf_counter() - t0:.1f} s -> {terminal(str(path))}")


@baseline.command("run")
@click.argument("name")
@click.option("--data", type=click.Path(exists=True, file_okay=False), default=None, help=DATA_HELP)
@click.option("--split", type=click.Choice(["val", "test"]), default="test", show_default=True)
@click.option("--inputs", type=click.Path(exists=True, dir_okay=False), default=None,
              help="The split's inputs, when not where --data's layout has them "
                   "(Track 1: val.json/test.json; Track 2: val_info.json/test_info.json).")
@click.option("--images", type=click.Path(exists=True, file_okay=False), default=None,
              help="The split's images folder, when not where --data's layout has it.")
@click.option("--weights", type=click.Path(exists=True), required=True, help="Run folder or checkpoint file.")
@click.option("--out", "out_zip", type=click.Path(dir_okay=False), required=True, help="Submission zip to write.")
@click.option("--device", default="cpu", show_default=True)
@click.option("--batch-size", type=click.IntRange(min=1), default=None, help="Inference batch size.")
@click.option("--track", type=click.Choice(["align", "structure"]), default=None, help=TRACK_HELP)
def run_command(name: str, data: str | None, split: str, inputs: str | None, images: str | None, weights: str,
                out_zip: str, device: str, batch_size: int | None, track: str | None) -> None:
    """Predict a split, write output + readme.txt (measured runtime), validate, then report success."""
    from ntire_t2iqa_baselines.common.submission import write_submission

    spec, module = _load(name)
    track = _track(spec, track)
    t0 = time.perf_counter()
    try:
        source = _data(track, data, split, inputs, images)
        err.print(f"{spec.name}: {split} data: {terminal(_describe(source, split))}")
        predictions = module.predict(source, split, Path(weights), device, batch_size)
    except (ReferenceDataError, RuntimeError, FileNotFoundError, ValueError) as exc:
        raise click.ClickException(str(exc)) from None
    elapsed = time.perf_counter() - t0
    n = len(predictions)
    try:
        write_submission(spec, predictions, out_zip, elapsed / max(n, 1), device.startswith("cuda"), source, split,
                         track)
    except SubmissionError as exc:
        print_problems(exc.problems, err)
        err.print(f"[bold red]the {spec.name} submission is invalid[/bold red]; not written.")
        sys.exit(1)
    out.print(f"[bold green]valid[/bold green] {track} submission: {n} images, "
              f"{elapsed / max(n, 1):.4f} s per image -> {terminal(out_zip)}")


def _describe(source: Any, split: str) -> str:
    """One line: the layout and the split's files (those found)."""
    files = source.files.get(split)
    parts = [str(p) for p in (files.annotations, files.images) if p is not None and p.exists()] if files else []
    return f"{source.layout} layout: {', '.join(parts)}"
