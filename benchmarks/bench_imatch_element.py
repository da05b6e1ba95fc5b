"""What can imatch's tiny element model learn on a synthetic challenge? Priors, and element-model variants.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_imatch_element.py --data synth_small --out runs/imatch-element

1. The priors' ceiling: gradient-boosted trees (xgboost) on what an element query holds besides the picture
   (category, number of elements, prompt type, the prompt's ratings), with and without the T2I model's name,
   trained on the train split, element ACC on val (threshold 0.5) against the constant predictor.
2. Element models (``--variants``): one member's element model (fold 0 held out, phase 1, no perturbation, no
   hints) per variant, trained with the tiny config and lvlm-stack's loop; the AUC of the expected level
   against "present" and the ACC at tau 3 and at the best tau, out of fold and on val.
"""

from __future__ import annotations

import argparse
import copy
import importlib
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
from scipy.stats import rankdata

from ntire_t2iqa.data import ChallengePaths, load_folds
from ntire_t2iqa.data.folds import fold_assignment
from ntire_t2iqa_baselines.common.data import AlignItem, align_items, split_element
from ntire_t2iqa_baselines.imatch import CONFIGS

#: name -> (loss, T2I model in the query, train overrides)
VARIANTS = {
    "ce, 6 epochs, paper's query": ("ce", False, {"epochs": 6}),
    "ce, 6 epochs, T2I model": ("ce", True, {"epochs": 6}),
    "expectation MSE, 6 epochs, T2I model": ("mse", True, {"epochs": 6}),
    "ce, 6 epochs, lr 1e-2, T2I model": ("ce", True, {"epochs": 6, "lr_lm": 0.01}),
    "ce, 10 epochs, T2I model (tiny)": ("ce", True, {"epochs": 10}),
    "ce, 15 epochs, paper's query": ("ce", False, {"epochs": 15}),
    "ce, 15 epochs, T2I model": ("ce", True, {"epochs": 15}),
}


def val_truth(data: Path) -> dict[str, dict[str, float]]:
    """img_path -> element scores of the hidden val reference."""
    ref = json.loads(ChallengePaths.locate(data).align_reference("val").read_text())
    return {r["img_path"]: r["element_score"] for r in ref}


def priors(items: list[AlignItem], val: list[AlignItem], truth: dict[str, dict[str, float]]) -> None:
    """Print the val element ACC of gradient-boosted trees on the query's non-image inputs."""
    import xgboost as xgb
    cats = sorted({split_element(e)[1] for it in items for e in it.elements})
    models, types = sorted({it.model for it in items}), sorted({it.prompt_type for it in items})

    def table(its: list[AlignItem], score: Any, named: bool) -> tuple[np.ndarray, np.ndarray]:
        rows, ys = [], []
        for it in its:
            for e in it.elements:
                row = [split_element(e)[1] == c for c in cats] + [len(it.elements)]
                row += [it.prompt_type == t for t in types]
                row += [it.ratings.get(k, -1.0) for k in ("meaningless", "split_confidence", "attribute_confidence")]
                rows.append(row + ([it.model == m for m in models] if named else []))
                ys.append(score(it, e) >= 0.5)
        return np.asarray(rows, float), np.asarray(ys)

    print("| Inputs | trees of depth | val element ACC | constant |\n|---|---|---|---|")
    for named in (False, True):
        x, y = table(items, lambda it, e: it.element_scores[e], named)
        xv, yv = table(val, lambda it, e: truth[it.img_path][e], named)
        for depth in (1, 2, 3):
            booster = xgb.train({"max_depth": depth, "eta": 0.05, "objective": "binary:logistic", "nthread": 1},
                                xgb.DMatrix(x, y.astype(float)), 100)
            acc = float(np.mean((booster.predict(xgb.DMatrix(xv)) > 0.5) == yv))
            print(f"| {'with' if named else 'without'} the T2I model | {depth} | {acc:.4f} | {yv.mean():.4f} |")


def auc(score: np.ndarray, y: np.ndarray) -> float:
    """Mann-Whitney AUC of ``score`` against the boolean ``y`` (ties averaged)."""
    r = rankdata(score)
    n1, n0 = int(y.sum()), int(len(y) - y.sum())
    return float((r[y].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


def variant(data: Path, out: Path, name: str, spec: tuple[str, bool, dict[str, Any]],
            truth: dict[str, dict[str, float]]) -> None:
    """Train one element model of a variant (reused when trained) and print its row."""
    import torch

    from ntire_t2iqa_baselines.imatch.levels import TASKS
    from ntire_t2iqa_baselines.imatch.predict import LevelPredictor
    from ntire_t2iqa_baselines.imatch.query import Query
    from ntire_t2iqa_baselines.lvlm_stack.folds import image_spec, make_accelerator, part_items, train_part
    from ntire_t2iqa_baselines.lvlm_stack.model import Collator, ImageEncoder
    from ntire_t2iqa_baselines.lvlm_stack.recipe import prepare_run
    T = importlib.import_module("ntire_t2iqa_baselines.imatch.train")
    loss, named, train_over = spec
    cfg = copy.deepcopy(json.loads(Path(CONFIGS["tiny"]).read_text()))
    cfg["recipe"].update(element_perturbation=0.0, type_aug=False, qalign=True)
    cfg["recipe"].pop("element_epochs", None)
    cfg["query"]["t2i_model"] = named
    items = align_items(data, "train")
    prepare_run(out, data, cfg, 0, texts=T.corpus(items, cfg))  # one base and tokenizer for every variant
    cfg["train"].update(train_over)
    train_items, held = T.member_split(cfg, items, fold_assignment(load_folds(out / "folds.json")), 0)
    encoder = ImageEncoder(image_spec(cfg), cache=True)
    mdir = out / "".join(c if c.isalnum() else "_" for c in name)
    query = Query(cfg, {}, seed=0, train=True)
    if loss == "ce":
        options, loss_fn = {"tasks": TASKS, "output": "logits"}, T.level_cross_entropy
    else:
        def loss_fn(pred: Any, batch: dict[str, Any]) -> Any:
            t = batch["target"].to(pred.device)
            keep = ~torch.isnan(t)
            return (((pred[keep] - (t[keep] + 1.0)) / 6.0) ** 2).mean()
        options = {"tasks": TASKS, "output": "expectation"}
    t0 = time.perf_counter()
    if not (mdir / "element" / "adapter.safetensors").is_file():
        train_part(out, mdir / "element", "element", part_items(train_items, "element"), cfg, 0,
                   make_accelerator(cfg, "cpu"), 0, encoder, t0, scorer_options=options,
                   make_collator=lambda tok: Collator(tok, cfg["model"]["merge_size"],
                                                      sequences=query.sequences("element")),
                   loss_fn=loss_fn)
    seconds = time.perf_counter() - t0
    predictor = LevelPredictor(out, cfg, "cpu", encoder=encoder)
    cells = []
    val = align_items(data, "val")
    for its, score in ((held, lambda it, e: it.element_scores[e]), (val, lambda it, e: truth[it.img_path][e])):
        lv_of = predictor.element_levels([mdir], its)
        lv = np.asarray([lv_of[it.img_path][e] for it in its for e in it.elements])
        y = np.asarray([score(it, e) >= 0.5 for it in its for e in it.elements])
        best = max((float(np.mean((lv > t) == y)), float(t)) for t in np.round(np.arange(1.5, 6.5001, 0.05), 2))
        cells.append(f"{lv.std():.3f} | {auc(lv, y):.3f} | {np.mean((lv > 3) == y):.4f} | "
                     f"{best[0]:.4f} at {best[1]:.2f}")
    print(f"| {name} | {' | '.join(cells)} | {seconds:.0f} |", flush=True)


def main(argv: list[str] | None = None) -> None:
    """Print the priors' table, then train and print each element-model variant."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, required=True, help="a synthetic challenge (ntire-t2iqa data synth)")
    ap.add_argument("--out", type=Path, required=True, help="folder for the element models (reused)")
    ap.add_argument("--variants", default="all", choices=("all", "none"),
                    help="train the element-model variants (all) or print the priors only (none)")
    args = ap.parse_args(argv)
    items, val, truth = align_items(args.data, "train"), align_items(args.data, "val"), val_truth(args.data)
    priors(items, val, truth)
    if args.variants == "none":
        return
    print("\nLevel std, AUC, ACC at tau 3, best ACC: out of fold (fold 0), then val.\n")
    print("| Element model | OOF std | OOF AUC | OOF ACC@3 | OOF best | val std | val AUC | val ACC@3 | val best "
          "| training s |\n|---|---|---|---|---|---|---|---|---|---|")
    args.out.mkdir(parents=True, exist_ok=True)
    for name, spec in VARIANTS.items():
        variant(args.data, args.out, name, spec, truth)


if __name__ == "__main__":
    main()
