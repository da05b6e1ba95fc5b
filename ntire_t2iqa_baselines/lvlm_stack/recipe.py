"""The whole recipe: folds -> per-fold LoRA models -> OOF -> XGBoost blend; prediction with all fold models."""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np

from ntire_t2iqa.data import load_folds, make_folds
from ntire_t2iqa.data.folds import fold_assignment
from ntire_t2iqa.data.sources import TrackData, locate

from ..common.data import AlignItem, align_items
from .folds import (
    DONE,
    ImageEncoder,
    console,
    image_spec,
    load_base,
    make_accelerator,
    model_parts,
    predict_parts,
    prepare_base,
    train_fold,
)
from .model import Scorer, add_lora
from .stack import Preds, Stack, average, fit_stack

#: Settings that may change between a run and its resumption (they do not change the result).
OPERATIONAL = {"workers", "save_steps", "gradient_checkpointing", "cache_images"}
FINISHED = "finished.json"


def _recipe_part(cfg: dict[str, Any]) -> dict[str, Any]:
    train = {k: v for k, v in cfg["train"].items() if k not in OPERATIONAL}
    return {"model": cfg["model"], "lora": cfg["lora"], "train": train}


def train_annotations(data: Path | TrackData) -> Path:
    """The raw training annotations (``train_list.json``) of a data folder of any layout."""
    return locate(data, "align").annotations("train")


def train_fingerprint(data: Path | TrackData) -> str:
    """sha256 of the raw training annotations: a run folder belongs to one training set."""
    return hashlib.sha256(train_annotations(data).read_bytes()).hexdigest()


def drop_stale_run(run: Path, data: Path, seed: int = 0) -> None:
    """Delete ``run`` when it was trained on other training data or with another seed (a demo cache)."""
    saved = run / "config.json"
    if saved.is_file():
        old = json.loads(saved.read_text())
        if old.get("_train_sha256") != train_fingerprint(data) or old.get("_seed") != seed:
            shutil.rmtree(run)


def prepare_run(run: Path, data: Path, cfg: dict[str, Any], seed: int, texts: list[str] | None = None,
                extra_tokens: tuple[str, ...] = ()) -> None:
    """Write config.json, folds.json and (tiny config) the base, once.

    folds.json is the ``folds.json`` next to the training annotations (from ``ntire-t2iqa data folds``)
    when it exists with the config's k, else made here by the same function (``make_folds``, k and seed
    from the config). ``texts``, ``extra_tokens``: the tiny tokenizer's corpus and whole-word tokens
    (:func:`~.folds.prepare_base`; another baseline's prompts and answers).
    """
    run.mkdir(parents=True, exist_ok=True)
    saved = run / "config.json"
    fingerprint = train_fingerprint(data)
    if saved.is_file():
        old = json.loads(saved.read_text())
        if _recipe_part(old) != _recipe_part(cfg) or old.get("_seed", seed) != seed:
            raise ValueError(f"{run} holds a run with another config or seed; resume it with the same "
                             "--config and --seed, or pass a new --out folder.")
        if old.get("_train_sha256", fingerprint) != fingerprint:
            raise ValueError(f"{run} was trained on other training data; pass a new --out folder.")
    saved.write_text(json.dumps({**cfg, "_seed": seed, "_train_sha256": fingerprint}, indent=1))
    if not (run / "folds.json").is_file():
        train_file = train_annotations(data)
        given = train_file.with_name("folds.json")  # written by `ntire-t2iqa data folds DATA --track align`
        if given.is_file() and len(load_folds(given)["folds"]) == cfg["train"]["folds"]:
            shutil.copyfile(given, run / "folds.json")
        else:
            make_folds(train_file, k=cfg["train"]["folds"], seed=cfg["train"].get("fold_seed", 0),
                       out=run / "folds.json")
    prepare_base(run, cfg, align_items(data, "train"), seed, texts, extra_tokens)


def train(data: Path, out: Path, config: dict[str, Any], device: str = "cpu", seed: int = 0) -> Path:
    """Train every fold (skipping finished ones, resuming the rest), then fit the blend. Returns ``out``.

    Under ``accelerate launch`` / ``torchrun`` every process runs this: the main process
    prepares the run, all train each fold together (DDP), the main process fits the blend.
    """
    t0 = time.perf_counter()
    data = data if isinstance(data, TrackData) else Path(data)
    out = Path(out)
    acc = make_accelerator(config, device)
    if acc.is_main_process:
        prepare_run(out, data, config, seed)
    acc.wait_for_everyone()
    encoder = ImageEncoder(image_spec(config), cache=config["train"].get("cache_images", False))
    k = len(load_folds(out / "folds.json")["folds"])
    for fold in range(k):
        train_fold(out, data, config, fold, acc, seed, encoder)
    if acc.is_main_process:
        stack = fit_run_stack(out, data, config, seed)
        seconds = {f"fold_{f}": json.loads((out / f"fold_{f}" / DONE).read_text())["seconds"] for f in range(k)}
        (out / FINISHED).write_text(json.dumps({"seconds_this_call": round(time.perf_counter() - t0, 2),
                                                "fold_seconds": seconds, "report": stack.report}, indent=1))
        rep = stack.report
        console.print(f"OOF main score: fold models {rep['oof_fold_models']['main']:.4f}, blend "
                      f"{rep['oof_blend_raw_elements']['main']:.4f} (elements from {rep['element_source']})",
                      highlight=False)
    acc.wait_for_everyone()
    return out


def oof_predictions(run: Path, k: int) -> Preds:
    """All folds' out-of-fold predictions merged (every training image exactly once)."""
    merged: Preds = {}
    for fold in range(k):
        part = json.loads((run / f"fold_{fold}" / "oof.json").read_text())
        dup = set(part) & set(merged)
        if dup:
            raise ValueError(f"image {sorted(dup)[0]!r} is out-of-fold in two folds; {run} is inconsistent")
        merged.update(part)
    return merged


def fit_run_stack(run: Path, data: Path, cfg: dict[str, Any], seed: int) -> Stack:
    """Fit the XGBoost blend on the run's OOF predictions and save it in ``RUN/stack``."""
    folds = load_folds(run / "folds.json")
    fold_of = fold_assignment(folds)
    items = align_items(data, "train")
    oof = oof_predictions(run, len(folds["folds"]))
    missing = [it.img_path for it in items if it.img_path not in oof]
    if missing:
        raise ValueError(f"no out-of-fold prediction for {missing[0]!r}; retrain the run")
    stack = fit_stack(items, oof, fold_of, cfg.get("stack", {}), seed)
    stack.save(run / "stack")
    return stack


def run_config(weights: Path) -> dict[str, Any]:
    """The config a run folder was trained with."""
    path = Path(weights) / "config.json"
    if not path.is_file():
        raise FileNotFoundError(f"{weights} is not an lvlm-stack run folder (no config.json); "
                                "pass the --out folder of `baseline train lvlm-stack`.")
    return json.loads(path.read_text())


def fold_predictions(data: Path, split: str, weights: Path, device: str = "cpu", batch_size: int | None = None
                     ) -> tuple[list[AlignItem], list[Preds]]:
    """Every fold model's predictions on a split (the base is loaded once; adapters are swapped)."""
    weights = Path(weights)
    cfg = run_config(weights)
    k = len(load_folds(weights / "folds.json")["folds"])
    unfinished = [f for f in range(k) if not (weights / f"fold_{f}" / DONE).is_file()]
    if unfinished or not (weights / "stack" / "stack.json").is_file():
        raise FileNotFoundError(f"{weights} is not finished (folds {unfinished} left, or no stack); "
                                "run `baseline train lvlm-stack` with the same --out to resume it.")
    acc = make_accelerator(cfg, device)
    items = align_items(data, split)
    tokenizer, base = load_base(weights, cfg, acc.device)
    scorer = Scorer(add_lora(base, cfg["lora"]), tokenizer).to(acc.device)
    encoder = ImageEncoder(image_spec(cfg), cache=cfg["train"].get("cache_images", False))
    batch = batch_size or cfg["infer"]["batch_images"]
    parts = model_parts(cfg)
    preds = [predict_parts(scorer, items, encoder, tokenizer, cfg["model"]["merge_size"], weights / f"fold_{fold}",
                           parts, batch, None, cfg["infer"].get("workers", 0)) for fold in range(k)]
    return items, preds


def blend(items: list[AlignItem], preds: list[Preds], stack: Stack) -> list[dict[str, Any]]:
    """Track 1 records: XGBoost total from the fold-mean features; elements from the mean (or the classifier)."""
    mean = average(preds)
    totals, elements = stack.predict(items, mean)
    return [{"img_path": it.img_path, "prompt": it.prompt, "total_score": float(t),
             "element_score": {e: float(np.clip(p, 0.0, 1.0)) for e, p in zip(it.elements, el)}}
            for it, t, el in zip(items, totals, elements)]


def as_records(items: list[AlignItem], preds: Preds) -> list[dict[str, Any]]:
    """One fold model's (or the fold mean's) predictions as Track 1 records, no blending."""
    return [{"img_path": it.img_path, "total_score": float(preds[it.img_path]["total"]),
             "element_score": {e: float(preds[it.img_path]["elements"][e]) for e in it.elements}} for it in items]


def predict(data: Path, split: str, weights: Path, device: str = "cpu", batch_size: int | None = None
            ) -> list[dict[str, Any]]:
    """Track 1 output.json content for every image of ``split``: the blend of the five fold models."""
    items, preds = fold_predictions(data, split, weights, device, batch_size)
    return blend(items, preds, Stack.load(Path(weights) / "stack"))
