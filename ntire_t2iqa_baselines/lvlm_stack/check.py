"""Recipe check on a scored split: blend vs each fold model vs the fold mean vs the trivial predictors.

    python -m ntire_t2iqa_baselines.lvlm_stack.check --data demo --run RUN --split val

Every row is a real submission zip (validated, then scored by ``ntire_t2iqa.score``
against ``<data>/align/<split>_eval.json``), so the numbers are the toolkit's own.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from ntire_t2iqa import score
from ntire_t2iqa.data import ChallengePaths, write_trivial

from ..common.submission import write_submission
from ..registry import get
from .recipe import as_records, blend, fold_predictions
from .stack import Stack, average


def compare(data: Path, run: Path, split: str = "val", device: str = "cpu") -> dict[str, Any]:
    """Main scores (and components) of the blend, every fold model, their mean and the trivial predictors."""
    ref = ChallengePaths.locate(data).align_reference(split)
    items, preds = fold_predictions(data, split, run, device)
    spec = get("lvlm-stack")
    rows: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        def scored(name: str, records: list[dict[str, Any]]) -> None:
            zp = Path(tmp) / f"{name}.zip"
            write_submission(spec, records, zp, 0.0, device.startswith("cuda"), data, split)
            r = score(zp, ref, "align")
            rows[name] = {"main": r.main_score, "srcc": r.srcc, "plcc": r.plcc, "acc": r.components["acc"]}

        scored("blend", blend(items, preds, Stack.load(run / "stack")))
        for k, p in enumerate(preds):
            scored(f"fold_{k}", as_records(items, p))
        scored("fold_mean", as_records(items, average(preds)))
        for kind in ("constant", "random"):
            r = score(write_trivial(data, "align", kind, split, Path(tmp) / f"{kind}.zip"), ref, "align")
            rows[f"trivial_{kind}"] = {"main": r.main_score, "srcc": r.srcc, "plcc": r.plcc, "acc": r.components["acc"]}
    folds = [v["main"] for k, v in rows.items() if k.startswith("fold_") and k != "fold_mean"]
    summary = {"blend": rows["blend"]["main"], "mean_of_fold_models": float(np.mean(folds)),
               "best_trivial": max(rows["trivial_constant"]["main"], rows["trivial_random"]["main"])}
    summary["blend_beats_fold_mean"] = summary["blend"] >= summary["mean_of_fold_models"]
    summary["blend_beats_trivial"] = summary["blend"] > summary["best_trivial"]
    return {"rows": rows, "summary": summary}


def main(argv: list[str] | None = None) -> None:
    """CLI: print the comparison as JSON."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--run", type=Path, required=True)
    ap.add_argument("--split", default="val", choices=["val", "test"])
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args(argv)
    print(json.dumps(compare(args.data, args.run, args.split, args.device), indent=1))


if __name__ == "__main__":
    main()
