"""eliq on a synthetic challenge: train the tiny config for both tracks, score val, compare with trivial predictors.

Run from the repository root (``nice -n 5`` and ``OMP_NUM_THREADS=1`` on a shared machine)::

    ntire-t2iqa data synth synth_medium --size medium
    .venv/bin/python benchmarks/bench_eliq.py --data synth_medium --out runs/eliq-bench

Per track: the training time (``baseline train eliq --config tiny``, the same function), the val
submission scored with the toolkit's scorer against the hidden val reference (SRCC, PLCC, ACC at the
label-free threshold or F1, main score), the same for the trivial ``constant`` and ``random``
predictors, and, as a check that the picture is read, the val score with the pictures shuffled
among the records (one derangement, as ``bench_image_shuffle.py``). Existing finished runs in
``--out`` are reused (delete them to time training again). ``--json`` prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.bench_image_shuffle import shuffled_data  # noqa: E402

TIME_BUDGET_S = 8 * 60  # both tracks, tiny config, 2 CPU cores
SRCC_TARGET = 0.25  # Track 1 val SRCC of the total score


def _scores(result: Any, track: str) -> dict[str, float]:
    keys = ("main_score", "srcc", "plcc") + (("acc",) if track == "align" else ("f1",))
    return {k: round(float(getattr(result, k)), 4) for k in keys}


def measure(data: Path, out: Path, config: str, overrides: list[str], seed: int) -> dict[str, Any]:
    """Train (unless finished) and score both tracks; trivial predictors and shuffled pictures for comparison."""
    from ntire_t2iqa import load_reference, score
    from ntire_t2iqa.data import ChallengePaths, write_trivial
    from ntire_t2iqa.data.sources import locate
    from ntire_t2iqa_baselines import eliq
    from ntire_t2iqa_baselines.common.config import load_baseline_config
    from ntire_t2iqa_baselines.common.submission import write_submission
    from ntire_t2iqa_baselines.registry import get

    cfg = load_baseline_config(eliq.CONFIGS, eliq.CONFIG_SCHEMA, config, overrides)
    paths = ChallengePaths.locate(data)
    report: dict[str, Any] = {"data": str(data), "config": config, "overrides": overrides, "tracks": {}}
    for track in ("align", "structure"):
        run = out / f"eliq-{track}"
        t0 = time.perf_counter()
        trained = not (run / "eliq.json").is_file()
        if trained:
            eliq.train(locate(data, track), run, cfg, "cpu", seed)
        train_s = time.perf_counter() - t0
        ref = load_reference(paths.reference(track, "val"), track)
        rows: dict[str, Any] = {}
        with tempfile.TemporaryDirectory() as tmp:
            t1 = time.perf_counter()
            pred = eliq.predict(locate(data, track), "val", run, "cpu")
            predict_s = time.perf_counter() - t1
            zp = Path(tmp) / "eliq.zip"
            write_submission(get("eliq"), pred, zp, predict_s / max(len(pred), 1), False, data, "val", track)
            rows["eliq"] = _scores(score(zp, ref, track=track), track)
            moved = shuffled_data(data, track, "val", Path(tmp) / "shuffled", seed=1000)
            rows["eliq_shuffled_pictures"] = _scores(score(eliq.predict(moved, "val", run, "cpu"), ref, track=track),
                                                     track)
            for kind in ("constant", "random"):
                trivial = write_trivial(data, track, kind, "val", Path(tmp) / f"{kind}.zip")
                rows[f"trivial_{kind}"] = _scores(score(trivial, ref, track=track), track)
        state = json.loads((run / "eliq.json").read_text())
        report["tracks"][track] = {"train_s": round(train_s, 1) if trained else None,
                                   "stage_seconds": state["seconds"], "n_train_images": state["n_images"],
                                   "predict_s": round(predict_s, 1), "rows": rows}
    times = [t["train_s"] for t in report["tracks"].values()]
    report["train_s_both"] = round(sum(times), 1) if None not in times else None
    report["within_budget"] = None if report["train_s_both"] is None else report["train_s_both"] <= TIME_BUDGET_S
    report["align_srcc_target_met"] = report["tracks"]["align"]["rows"]["eliq"]["srcc"] >= SRCC_TARGET
    return report


def main(argv: list[str] | None = None) -> None:
    """CLI: measure and print."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, required=True, help="a synthetic challenge (ntire-t2iqa data synth)")
    ap.add_argument("--out", type=Path, required=True, help="run folders eliq-align/ and eliq-structure/")
    ap.add_argument("--config", default="tiny")
    ap.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    report = measure(args.data, args.out, args.config, args.overrides, args.seed)
    if args.json:
        print(json.dumps(report, indent=1))
        return
    for track, t in report["tracks"].items():
        print(f"{track}: trained in {t['train_s']} s on {t['n_train_images']} images; val:")
        for name, row in t["rows"].items():
            print(f"  {name:24s} " + "  ".join(f"{k} {v:.4f}" for k, v in row.items()))
    print(f"both tracks: {report['train_s_both']} s (budget {TIME_BUDGET_S} s); "
          f"align SRCC target {SRCC_TARGET}: {'met' if report['align_srcc_target_met'] else 'missed'}")


if __name__ == "__main__":
    main()
