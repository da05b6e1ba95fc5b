"""Entry point for multi-GPU training: ``accelerate launch -m ntire_t2iqa_baselines.lvlm_stack.train_fold ...``.

Every process runs the same code (torchrun works too): ``--fold all`` (default) trains
the folds not yet finished and fits the blend; ``--fold k`` trains one fold only (to spread
folds over machines, each with its own GPUs, sharing the run folder). A fold resumes from
its last checkpoint; a finished fold is skipped.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ntire_t2iqa.data.sources import SplitFiles, locate
from ntire_t2iqa.errors import ReferenceDataError

from ..common.config import ConfigError, load_baseline_config
from . import CONFIG_SCHEMA, CONFIGS
from .folds import image_spec, make_accelerator, train_fold
from .model import ImageEncoder
from .recipe import prepare_run, train


def main(argv: list[str] | None = None) -> None:
    """Parse the arguments and train."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=None,
                    help="data folder: a synthetic challenge or a Track 1 root (train_list.json + images/)")
    ap.add_argument("--train-annotations", type=Path, default=None, help="train_list.json, if not under --data")
    ap.add_argument("--train-images", type=Path, default=None, help="training images folder, if not under --data")
    ap.add_argument("--out", type=Path, required=True, help="run folder (resumed when it exists)")
    ap.add_argument("--config", default="full", help="tiny, full or a JSON file")
    ap.add_argument("--fold", default="all", help="'all' or a fold index")
    ap.add_argument("--device", default="cuda", help="cuda (each process takes its local GPU) or cpu")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--weights", default=None, help="local Qwen2.5-VL directory (overrides model.path)")
    ap.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                    help="override a config value, e.g. --set train.epochs=2 (repeatable; checked as the config)")
    args = ap.parse_args(argv)
    try:
        config = load_baseline_config(CONFIGS, CONFIG_SCHEMA, args.config, args.overrides)
    except ConfigError as exc:
        ap.error(str(exc))
    if args.weights:  # a string, as model.path's schema wants
        config["model"]["path"] = args.weights
    try:
        args.data = locate(args.data, "align", {"train": SplitFiles(args.train_annotations, args.train_images)})
    except ReferenceDataError as exc:
        ap.error(str(exc))
    if args.fold == "all":
        train(args.data, args.out, config, args.device, args.seed)
        return
    acc = make_accelerator(config, args.device)
    if acc.is_main_process:
        prepare_run(args.out, args.data, config, args.seed)
    acc.wait_for_everyone()
    encoder = ImageEncoder(image_spec(config), cache=config["train"].get("cache_images", False))
    train_fold(args.out, args.data, config, int(args.fold), acc, args.seed, encoder)


if __name__ == "__main__":
    main()
