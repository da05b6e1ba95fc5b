"""iMatch inference: element model(s) first, their levels as hints for the overall model(s); QAlign read-out.

Every member of the ensemble (a fold model, or a seed) has an element model and an overall model
(``RUN/<phase>/member_k/{element,overall}/adapter.safetensors``). The base is loaded once and the
adapters are swapped (lvlm-stack's :func:`~ntire_t2iqa_baselines.lvlm_stack.scoring.predict_items`).
Levels are the closed-set expectation (``recipe.qalign``) or the likeliest level token (without it),
averaged over the members; the element levels feed the overall query when ``recipe.element_hints`` is on.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from ..common.data import AlignItem, align_items
from ..lvlm_stack.folds import image_spec, load_base, make_accelerator
from ..lvlm_stack.model import Collator, ImageEncoder, Scorer, add_lora
from ..lvlm_stack.scoring import load_adapter, part_items, predict_items
from .levels import TASKS, element_fraction, element_score, overall_score
from .query import Hints, Query

FINISHED = "finished.json"
#: img_path -> {"total": expected overall level 1..15, "elements": {key: expected element level 1..7}}
Levels = dict[str, dict[str, Any]]


def member_dirs(run: Path, phase: str, members: list[int]) -> list[Path]:
    """The folders of a phase's ensemble members."""
    return [run / phase / f"member_{k}" for k in members]


class LevelPredictor:
    """The base model loaded once, with a scorer over iMatch's two closed answer sets."""

    def __init__(self, run: Path, cfg: dict[str, Any], device: str = "cpu", batch_size: int | None = None,
                 qalign: bool | None = None, encoder: ImageEncoder | None = None):
        self.cfg = cfg
        acc = make_accelerator(cfg, device)
        self.tokenizer, base = load_base(run, cfg, acc.device)
        use_qalign = cfg["recipe"].get("qalign", True) if qalign is None else qalign
        self.scorer = Scorer(add_lora(base, cfg["lora"]), self.tokenizer, tasks=TASKS,
                             output="expectation" if use_qalign else "argmax").to(acc.device)
        self.encoder = encoder or ImageEncoder(image_spec(cfg), cache=cfg["train"].get("cache_images", False))
        self.batch = batch_size or cfg["infer"]["batch_images"]
        self.workers = cfg["infer"].get("workers", 0)

    def _run(self, adapter: Path, items: list[AlignItem], query: Query, part: str) -> dict[str, dict[str, Any]]:
        load_adapter(self.scorer, adapter)
        collator = Collator(self.tokenizer, self.cfg["model"]["merge_size"], sequences=query.sequences(part))
        return predict_items(self.scorer, part_items(items, part), self.encoder, collator, self.batch, None,
                             self.workers)

    def element_levels(self, members: list[Path], items: list[AlignItem]) -> dict[str, dict[str, float]]:
        """img_path -> {element: level 1..7}, the mean over the members' element models."""
        sums: dict[str, dict[str, list[float]]] = {}
        for mdir in members:
            for img, pred in self._run(mdir / "element", items, Query(self.cfg, hints={}), "element").items():
                for e, v in pred["elements"].items():
                    sums.setdefault(img, {}).setdefault(e, []).append(float(v))
        return {it.img_path: {e: sum(sums[it.img_path][e]) / len(sums[it.img_path][e])
                              for e in it.elements} for it in items if it.elements}

    def overall_levels(self, members: list[Path], items: list[AlignItem], hints: Hints) -> dict[str, float]:
        """img_path -> overall level 1..15, the mean over the members' overall models (queries with ``hints``)."""
        totals: dict[str, list[float]] = {}
        for mdir in members:
            for img, pred in self._run(mdir / "overall", items, Query(self.cfg, hints=hints), "overall").items():
                totals.setdefault(img, []).append(float(pred["total"]))
        return {img: sum(v) / len(v) for img, v in totals.items()}

    def levels(self, members: list[Path], items: list[AlignItem]) -> Levels:
        """Both tasks: element levels first, then the overall levels with them as hints."""
        elements = self.element_levels(members, items)
        totals = self.overall_levels(members, items, elements)
        return {it.img_path: {"total": totals[it.img_path], "elements": elements.get(it.img_path, {})}
                for it in items}


def as_records(items: list[AlignItem], levels: Levels, tau: float) -> list[dict[str, Any]]:
    """Track 1 records: total 1..5 from the overall level; element 0..1, >= 0.5 exactly when level > ``tau``."""
    return [{"img_path": it.img_path, "prompt": it.prompt,
             "total_score": overall_score(levels[it.img_path]["total"]),
             "element_score": {e: element_score(levels[it.img_path]["elements"][e], tau) for e in it.elements}}
            for it in items]


def pseudo_items(items: list[AlignItem], levels: Levels, split: str, test_items: list[AlignItem]) -> list[AlignItem]:
    """Validation items labelled with predictions (total = the predicted score, elements = level fractions).

    Never from the test split: ``split`` must be ``val``, and an item whose image (path or file) is also a
    test image is left out.
    """
    if split != "val":
        raise ValueError(f"pseudo-labels come from the val split only, not {split!r}")
    test_paths = {it.img_path for it in test_items}
    test_files = {Path(it.image_file).resolve() for it in test_items}
    out = []
    for it in items:
        if it.img_path in test_paths or Path(it.image_file).resolve() in test_files:
            continue
        lv = levels[it.img_path]
        out.append(dataclasses.replace(
            it, img_path=f"pseudo/{it.img_path}", total=overall_score(lv["total"]),
            element_scores={e: element_fraction(lv["elements"][e]) for e in it.elements}))
    return out


def run_info(weights: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """(config, finished.json) of a finished iMatch run folder."""
    weights = Path(weights)
    if not (weights / "config.json").is_file():
        raise FileNotFoundError(f"{weights} is not an imatch run folder (no config.json); pass the --out folder of "
                                "`baseline train imatch`.")
    if not (weights / FINISHED).is_file():
        raise FileNotFoundError(f"{weights} is not finished; run `baseline train imatch` with the same --out "
                                "to resume it.")
    return json.loads((weights / "config.json").read_text()), json.loads((weights / FINISHED).read_text())


def predict(data: Path, split: str, weights: Path, device: str = "cpu", batch_size: int | None = None,
            qalign: bool | None = None) -> list[dict[str, Any]]:
    """Track 1 output.json content for every image of ``split`` (the final phase's ensemble).

    ``qalign``: override the run's ``recipe.qalign`` (the ablation reads one trained run both ways).
    """
    cfg, info = run_info(weights)
    items = align_items(data, split)
    predictor = LevelPredictor(Path(weights), cfg, device, batch_size, qalign)
    levels = predictor.levels(member_dirs(Path(weights), info["final_phase"], info["members"]), items)
    return as_records(items, levels, info["tau"])
