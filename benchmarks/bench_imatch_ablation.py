"""imatch ablation on a synthetic challenge, as the iMatch paper's Tables 4 and 5: each strategy added in turn.

    ntire-t2iqa data synth synth_small --size small
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_imatch_ablation.py --data synth_small --out runs/imatch-ablation

Rows (cumulative): base (levels as answers, the likeliest level token read out); +QAlign (closed-set
softmax expectation: the same trained models, read differently); +validation pseudo-labels; +element
hints in the overall query; +image augmentation; +prompt type and level perturbation in the element model
(= the tiny config). Every row is a validated val submission scored by ``ntire_t2iqa.score`` against the
hidden val reference; the trivial predictors are printed for scale. Runs are kept in ``--out`` and reused.
"""

from __future__ import annotations

import argparse
import copy
import json
import tempfile
import time
from pathlib import Path
from typing import Any

from ntire_t2iqa import score
from ntire_t2iqa.data import ChallengePaths, write_trivial
from ntire_t2iqa_baselines.common.submission import write_submission
from ntire_t2iqa_baselines.imatch import CONFIGS, predict, train
from ntire_t2iqa_baselines.registry import get

OFF = {"qalign": False, "pseudo_labels": False, "element_hints": False, "image_aug": False, "type_aug": False,
       "element_perturbation": 0.0}
#: (row, training run, recipe switches turned on for training, QAlign at inference)
ROWS = [
    ("base", "A", {}, False),
    ("+QAlign", "A", {}, True),
    ("+val pseudo-labels", "B", {"qalign": True, "pseudo_labels": True}, True),
    ("+element hints", "C", {"qalign": True, "pseudo_labels": True, "element_hints": True}, True),
    ("+image augmentation", "D", {"qalign": True, "pseudo_labels": True, "element_hints": True, "image_aug": True},
     True),
    ("+type, perturbation (element model)", "E", {}, True),  # E: the config as given (tiny: everything on)
]


def row_config(base: dict[str, Any], on: dict[str, Any], run: str) -> dict[str, Any]:
    """The base config with every switch off, then ``on`` (run E keeps the config's own recipe)."""
    cfg = copy.deepcopy(base)
    if run != "E":
        cfg["recipe"].update(OFF)
        cfg["recipe"].update(on)
    return cfg


def main(argv: list[str] | None = None) -> None:
    """Train the runs (reused when finished), score each row on val, print the table."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, required=True, help="a synthetic challenge (ntire-t2iqa data synth)")
    ap.add_argument("--out", type=Path, required=True, help="folder for the runs")
    ap.add_argument("--config", default="tiny", help="tiny or a JSON file")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    base = json.loads(Path(CONFIGS.get(args.config, args.config)).read_text())
    ref = ChallengePaths.locate(args.data).align_reference("val")
    spec = get("imatch")
    rows, seconds = [], {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, run, on, qalign in ROWS:
            folder = args.out / run
            if run not in seconds:
                t0 = time.perf_counter()
                train(args.data, folder, row_config(base, on, run), "cpu", args.seed)
                seconds[run] = time.perf_counter() - t0
            records = predict(args.data, "val", folder, "cpu", None, qalign=qalign)
            zp = Path(tmp) / f"{run}-{qalign}.zip"
            write_submission(spec, records, zp, 0.0, False, args.data, "val")
            r = score(zp, ref, "align")
            tau = json.loads((folder / "finished.json").read_text())["tau"]
            rows.append((name, run, r.main_score, r.srcc, r.plcc, r.components["acc"], tau, seconds[run]))
            print(f"{name}: main {r.main_score:.4f}", flush=True)
        for kind in ("constant", "random"):
            r = score(write_trivial(args.data, "align", kind, "val", Path(tmp) / f"{kind}.zip"), ref, "align")
            rows.append((f"trivial {kind}", "-", r.main_score, r.srcc, r.plcc, r.components["acc"], float("nan"), 0.0))
    print("\n| Row | Run | Val main | SRCC | PLCC | ACC | tau | training s (this call) |")
    print("|---|---|---|---|---|---|---|---|")
    for name, run, main_, s, p, a, tau, sec in rows:
        print(f"| {name} | {run} | {main_:.4f} | {s:.4f} | {p:.4f} | {a:.4f} | {tau:.2f} | {sec:.0f} |")


if __name__ == "__main__":
    main()
