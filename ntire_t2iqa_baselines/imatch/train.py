"""iMatch training: element and overall models per ensemble member, pseudo-labelled val, retraining.

Run folder (``RUN/``)::

    config.json  folds.json  tokenizer/ + base/ (tiny config: offline tokenizer, random-init weights)
    augmented/<kind>/<img_path>.png         image-augmented copies (``recipe.image_aug``)
    phase1/member_k/{element,overall}/      each model's LoRA adapter (lvlm-stack's format, and peft/)
    pseudo_val.json                         the val predictions used as labels (``recipe.pseudo_labels``)
    phase2/member_k/{element,overall}/      retrained on train + pseudo-labelled val (the final phase)
    finished.json                           members, final phase, tau, out-of-fold scores

Members: ``ensemble.by: folds`` (member k trains on every prompt-grouped fold but k of
``train.folds``; its held-out fold gives out-of-fold predictions) or ``seeds`` (``ensemble.members``
models on all training images, seeds ``seed + k``). Models are trained with lvlm-stack's loop
(:func:`~ntire_t2iqa_baselines.lvlm_stack.folds.train_part`): cross-entropy on the level token among the
closed set of level tokens. A trained model is skipped when the command runs again (resume).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ntire_t2iqa.data import load_folds
from ntire_t2iqa.data.folds import fold_assignment
from ntire_t2iqa.data.sources import TrackData, locate

from ..common.data import AlignItem, align_items
from ..lvlm_stack.folds import ADAPTER, console, image_spec, make_accelerator, part_items, train_part
from ..lvlm_stack.model import Collator, ImageEncoder
from ..lvlm_stack.recipe import prepare_run
from ..lvlm_stack.stack import align_scores
from .augment import augmented_copies
from .levels import DEFAULT_TAU, TASKS, calibrate_tau, element_score, overall_score
from .predict import FINISHED, LevelPredictor, member_dirs, pseudo_items
from .query import Query, corpus, hints_from_labels

PARTS = ("element", "overall")
#: Sections of the config that change the trained models beyond lvlm-stack's (model, lora, train).
RECIPE_KEYS = ("recipe", "query", "ensemble")


def level_cross_entropy(logits: torch.Tensor, batch: dict[str, Any]) -> torch.Tensor:
    """Cross-entropy of the closed-set level logits against each sequence's level index (NaN targets skipped)."""
    target = batch["target"].to(logits.device)
    keep = ~torch.isnan(target)
    if not bool(keep.any()):
        return logits.sum() * 0.0
    return torch.nn.functional.cross_entropy(logits[keep], target[keep].long())


def part_config(cfg: dict[str, Any], part: str) -> dict[str, Any]:
    """The config one model trains with: the element model's ``recipe.element_epochs``, when set, replaces
    ``train.epochs`` (the overall model always uses ``train.epochs``)."""
    epochs = cfg.get("recipe", {}).get("element_epochs")
    if part != "element" or epochs is None:
        return cfg
    return {**cfg, "train": {**cfg["train"], "epochs": int(epochs)}}


def members_of(cfg: dict[str, Any]) -> list[int]:
    """The ensemble's member indices."""
    ens = cfg.get("ensemble", {})
    by = ens.get("by", "folds")
    if by not in ("folds", "seeds"):
        raise ValueError(f"ensemble.by must be 'folds' or 'seeds', not {by!r}")
    n = int(ens.get("members", cfg["train"]["folds"]))
    if by == "folds" and not 1 <= n <= cfg["train"]["folds"]:
        raise ValueError(f"ensemble.members ({n}) must be between 1 and train.folds ({cfg['train']['folds']})")
    return list(range(n))


def member_split(cfg: dict[str, Any], items: list[AlignItem], fold_of: dict[str, int], k: int
                 ) -> tuple[list[AlignItem], list[AlignItem]]:
    """(training items, held-out items) of member ``k``: its fold held out, or everything (``by: seeds``)."""
    if cfg.get("ensemble", {}).get("by", "folds") == "seeds":
        return list(items), []
    return [it for it in items if fold_of[it.img_path] != k], [it for it in items if fold_of[it.img_path] == k]


def _source(img_path: str) -> str:
    """The training image an augmented copy was made from (``aug/<kind>/<img_path>``)."""
    return img_path.split("/", 2)[2] if img_path.startswith("aug/") else img_path


def train_member(run: Path, mdir: Path, items: list[AlignItem], cfg: dict[str, Any], k: int, acc: Any,
                 seed: int, encoder: ImageEncoder, t0: float) -> None:
    """Train a member's element model and overall model (each skipped when already trained)."""
    merge = cfg["model"]["merge_size"]
    member_seed = seed + (k if cfg.get("ensemble", {}).get("by", "folds") == "seeds" else 0)
    hints = hints_from_labels(items)
    for part in PARTS:
        pdir = mdir / part
        if (pdir / ADAPTER).is_file():
            continue
        query = Query(cfg, hints, seed=member_seed * 31 + k, train=True)

        def make_collator(tokenizer: Any, query: Query = query, part: str = part) -> Collator:
            return Collator(tokenizer, merge, sequences=query.sequences(part))

        train_part(run, pdir, part, part_items(items, part), part_config(cfg, part), k, acc, member_seed, encoder,
                   t0, scorer_options={"tasks": TASKS, "output": "logits"}, make_collator=make_collator,
                   loss_fn=level_cross_entropy)


def _check_recipe(run: Path, cfg: dict[str, Any], write: bool) -> None:
    """Refuse to resume a run folder trained with other recipe switches; record them (``write``)."""
    saved = run / "imatch.json"
    mine = {key: cfg.get(key, {}) for key in RECIPE_KEYS}
    if saved.is_file() and json.loads(saved.read_text()) != mine:
        raise ValueError(f"{run} holds a run with another recipe; resume it with the same --config, "
                         "or pass a new --out folder.")
    if write:
        saved.write_text(json.dumps(mine, indent=1))


def train(data: Path | TrackData, out: Path, config: dict[str, Any], device: str = "cpu", seed: int = 0) -> Path:
    """The whole recipe into ``out`` (resumable): phase 1, pseudo-labels, phase 2, tau. Returns ``out``."""
    t0 = time.perf_counter()
    out = Path(out)
    rc = config.get("recipe", {})
    members = members_of(config)
    acc = make_accelerator(config, device)
    items = align_items(data, "train")
    out.mkdir(parents=True, exist_ok=True)
    _check_recipe(out, config, write=False)
    prepare_run(out, data, config, seed, texts=corpus(items, config))
    _check_recipe(out, config, write=True)
    fold_of = fold_assignment(load_folds(out / "folds.json"))
    encoder = ImageEncoder(image_spec(config), cache=config["train"].get("cache_images", False))
    copies = (augmented_copies(items, float(rc.get("image_aug_share", 0.1)), out / "augmented", seed)
              if rc.get("image_aug") else [])
    splits = {k: member_split(config, items, fold_of, k) for k in members}

    def with_copies(train_items: list[AlignItem]) -> list[AlignItem]:
        mine = {it.img_path for it in train_items}
        return train_items + [c for c in copies if _source(c.img_path) in mine]

    for k in members:
        train_member(out, out / "phase1" / f"member_{k}", with_copies(splits[k][0]), config, k, acc, seed, encoder, t0)
    phase, n_pseudo = "phase1", 0
    if rc.get("pseudo_labels"):
        pseudo = _pseudo_labels(out, data, config, device, encoder, members)
        n_pseudo = len(pseudo)
        for k in members:
            train_member(out, out / "phase2" / f"member_{k}", with_copies(splits[k][0]) + pseudo, config, k, acc,
                         seed, encoder, t0)
        phase = "phase2"
    info: dict[str, Any] = {"members": members, "final_phase": phase, "n_train": len(items),
                            "n_augmented": len(copies), "n_pseudo": n_pseudo, "tau": float(rc.get("tau", DEFAULT_TAU))}
    if any(splits[k][1] for k in members):
        info.update(_out_of_fold(out, config, device, encoder, members, splits, phase, info["tau"],
                                 bool(rc.get("calibrate_tau"))))
    info["seconds"] = round(time.perf_counter() - t0, 1)
    (out / FINISHED).write_text(json.dumps(info, indent=1))
    oof = info.get("oof", {}).get("main")
    console.print(f"imatch: {len(members)} member(s), final {phase}, tau {info['tau']:.2f}"
                  + (f", out-of-fold main score {oof:.4f}" if oof is not None else ""), highlight=False)
    return out


def _pseudo_labels(run: Path, data: Path | TrackData, cfg: dict[str, Any], device: str, encoder: ImageEncoder,
                   members: list[int]) -> list[AlignItem]:
    """Phase 1's ensemble predicts the val split; its predictions become labels (saved in pseudo_val.json)."""
    source = locate(data, "align")
    try:
        val = align_items(source, "val")
    except (FileNotFoundError, ValueError) as exc:
        raise ValueError(f"recipe.pseudo_labels needs the val split's inputs and images ({exc}); pass --data with "
                         "a val split, or set recipe.pseudo_labels to false") from None
    try:
        test = align_items(source, "test")
    except (FileNotFoundError, ValueError):
        test = []
    predictor = LevelPredictor(run, cfg, device, encoder=encoder)
    levels = predictor.levels(member_dirs(run, "phase1", members), val)
    pseudo = pseudo_items(val, levels, "val", test)
    (run / "pseudo_val.json").write_text(json.dumps(
        [{"img_path": it.img_path, "total_score": it.total, "element_score": it.element_scores} for it in pseudo]))
    return pseudo


def _out_of_fold(run: Path, cfg: dict[str, Any], device: str, encoder: ImageEncoder, members: list[int],
                 splits: dict[int, tuple[list[AlignItem], list[AlignItem]]], phase: str, tau: float,
                 calibrate: bool) -> dict[str, Any]:
    """Each member scores its held-out fold; tau calibrated on those element levels when asked; OOF scores."""
    predictor = LevelPredictor(run, cfg, device, encoder=encoder)
    held: list[AlignItem] = []
    levels: dict[str, dict[str, Any]] = {}
    for k in members:
        if splits[k][1]:
            levels.update(predictor.levels(member_dirs(run, phase, [k]), splits[k][1]))
            held.extend(splits[k][1])
    flat = [(levels[it.img_path]["elements"][e], it.element_scores[e] >= 0.5) for it in held for e in it.elements]
    if calibrate and flat:
        tau = calibrate_tau([lv for lv, _ in flat], [y for _, y in flat], default=tau)
    totals = np.asarray([overall_score(levels[it.img_path]["total"]) for it in held])
    elements = np.asarray([element_score(lv, tau) for lv, _ in flat])
    return {"tau": tau, "tau_calibrated": bool(calibrate and flat), "n_oof": len(held),
            "oof": align_scores(held, totals, elements)}
