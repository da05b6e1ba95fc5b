"""Does a baseline read the image? Its val main score with the true images and with the images shuffled.

The val records keep their prompts, element keys and names; only the pictures move: each record gets the
picture of another val record (a random derangement, ``--shuffles`` of them). A model that scores from the
prompt alone (its prompt or category priors) keeps its score; one that reads the picture loses. Scored
against the synthetic challenge's hidden val reference with the toolkit's scorer. Run from the repository
root, on a synthetic challenge (``ntire-t2iqa data synth DIR --size medium``)::

    .venv/bin/python benchmarks/bench_image_shuffle.py fga-blip2 --data synth_medium --run runs/fga-tiny
    .venv/bin/python benchmarks/bench_image_shuffle.py rahf --data synth_medium --run runs/rahf-tiny
    .venv/bin/python benchmarks/bench_image_shuffle.py lvlm-stack --data synth_small --run runs/lvlm-tiny

``--run`` is trained first (``--config``, default ``tiny``, ``--seed``) unless it holds a finished run.
Prints the main score (and its parts) with true and shuffled images and the drop; ``--json`` prints one
JSON object. The target for the tiny baselines is a drop of at least 0.05.
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

TARGET_DROP = 0.05


def derangement(n: int, seed: int) -> list[int]:
    """``perm[i]`` = the record whose picture record ``i`` gets; no record keeps its own (for ``n > 1``)."""
    import numpy as np

    order = np.random.default_rng(seed).permutation(n).tolist()
    perm = list(range(n))
    for k, i in enumerate(order):
        perm[i] = order[(k + 1) % n]
    return perm


def split_pictures(data: Path, track: str, split: str) -> list[tuple[str, Path]]:
    """``(name under the images folder, picture file)`` of every record of ``split``."""
    from ntire_t2iqa_baselines.common.data import align_items, structure_items

    if track == "align":
        return [(it.img_path, it.image_file) for it in align_items(data, split)]
    return [(it.image_file.name, it.image_file) for it in structure_items(data, split)]


def shuffled_data(data: Path, track: str, split: str, folder: Path, seed: int) -> Any:
    """The data with ``split``'s images folder replaced by links that give each record another's picture."""
    from ntire_t2iqa.data.sources import SplitFiles, locate

    pictures = split_pictures(data, track, split)
    for (name, _), source in zip(pictures, derangement(len(pictures), seed)):
        link = folder / name
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(pictures[source][1].resolve())
    return locate(data, track, {split: SplitFiles(images=folder)})


def _parts(result: Any, track: str) -> dict[str, float]:
    keys = ("main_score", "srcc", "plcc") + (("acc",) if track == "align" else ("f1",))
    return {k: round(float(getattr(result, k)), 4) for k in keys}


def measure(name: str, data: Path, run: Path, config: str, device: str, seed: int, shuffles: int,
            batch_size: int | None, split: str = "val") -> dict[str, Any]:
    """Train ``run`` if needed, then score ``split`` with true and shuffled pictures."""
    from ntire_t2iqa import load_reference, score
    from ntire_t2iqa.data import ChallengePaths
    from ntire_t2iqa_baselines import registry

    spec, module = registry.get(name), registry.load(name)
    reference = load_reference(ChallengePaths.locate(data).reference(spec.track, split), spec.track)
    t0 = time.perf_counter()
    finished = getattr(module, "is_finished", None)
    trained = False
    if finished is None or not finished(run):
        module.train(data, run, json.loads(Path(module.CONFIGS.get(config, config)).read_text()), device, seed)
        trained = True
    train_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    true = _parts(score(module.predict(data, split, run, device, batch_size), reference, spec.track), spec.track)
    predict_s = time.perf_counter() - t0
    shuffled = []
    for k in range(shuffles):
        with tempfile.TemporaryDirectory() as tmp:
            moved = shuffled_data(data, spec.track, split, Path(tmp), seed=1000 + k)
            shuffled.append(_parts(score(module.predict(moved, split, run, device, batch_size), reference,
                                         spec.track), spec.track))
    mean_shuffled = sum(s["main_score"] for s in shuffled) / len(shuffled)
    return {"baseline": name, "run": str(run), "trained_now": trained, "train_s": round(train_s, 1),
            "predict_s": round(predict_s, 1), "true": true, "shuffled": shuffled,
            "shuffled_main_mean": round(mean_shuffled, 4), "drop": round(true["main_score"] - mean_shuffled, 4),
            "target_drop": TARGET_DROP}


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, measure, print; exit 2 when the drop misses the target."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("baseline", help="fga-blip2, rahf or lvlm-stack")
    parser.add_argument("--data", type=Path, required=True, help="a synthetic challenge (ntire-t2iqa data synth)")
    parser.add_argument("--run", type=Path, required=True, help="run folder (trained here unless finished)")
    parser.add_argument("--config", default="tiny", help="a config name of the baseline, or a JSON file")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--shuffles", type=int, default=3, help="how many random derangements to average")
    parser.add_argument("--batch-size", type=int, default=None)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    out = measure(args.baseline, args.data, args.run, args.config, args.device, args.seed, args.shuffles,
                  args.batch_size)
    if args.json:
        print(json.dumps(out))
    else:
        print(f"{out['baseline']}: run {out['run']} ({'trained now, ' if out['trained_now'] else ''}"
              f"{out['train_s']} s; val predicted in {out['predict_s']} s)")
        print(f"  true images:     {out['true']}")
        for k, s in enumerate(out["shuffled"]):
            print(f"  shuffled ({k + 1}):    {s}")
        verdict = "PASS" if out["drop"] >= TARGET_DROP else "MISS"
        print(f"  main score drop: {out['drop']:.4f} (mean over {len(out['shuffled'])} shuffles; "
              f"target >= {TARGET_DROP}: {verdict})")
    return 0 if out["drop"] >= TARGET_DROP else 2


if __name__ == "__main__":
    sys.exit(main())
