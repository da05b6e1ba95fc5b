"""Ranking benchmark: score many Track 1 submissions into a fresh store, then re-run with nothing new.

Prints submissions per second (target >= 5/s on 2 workers) and the re-run time (target < 3 s).
Inputs are generated in code with a fixed seed: a reference of test-set size and
submissions spread over teams, each a noisy copy of the reference.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
import zipfile
from pathlib import Path

from ntire_t2iqa.leaderboard import rank
from ntire_t2iqa.tracks.common import README_TEMPLATE

CATEGORIES = ("object", "color", "counting", "spatial", "activity", "attribute", "animal", "human")


def make_reference(n_images: int, rng: random.Random) -> list[dict]:
    """Averaged-form reference records with 1-11 elements each (about 6 on average)."""
    ref = []
    for i in range(n_images):
        elements = {f"thing{j} ({rng.choice(CATEGORIES)})": rng.choice((0.0, 1 / 3, 2 / 3, 1.0))
                    for j in range(rng.randint(1, 11))}
        ref.append({"img_path": f"model{i % 20}/{i:05d}.png", "prompt_id": i // 4,
                    "total_score": round(rng.uniform(1, 5), 3), "element_score": elements})
    return ref


def make_submission(ref: list[dict], noise: float, rng: random.Random) -> bytes:
    """output.json bytes: the reference plus noise, records shuffled."""
    records = [{"img_path": r["img_path"], "total_score": r["total_score"] + rng.gauss(0, noise),
                "element_score": {k: min(1.0, max(0.0, v + rng.gauss(0, noise / 2)))
                                  for k, v in r["element_score"].items()}} for r in ref]
    rng.shuffle(records)
    return json.dumps(records).encode()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--submissions", type=int, default=500)
    parser.add_argument("--images", type=int, default=6500)
    parser.add_argument("--teams", type=int, default=50)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--quick", action="store_true", help="60 submissions of 2,000 images")
    args = parser.parse_args(argv)
    if args.quick:
        args.submissions, args.images, args.teams = 60, 2000, 10
    rng = random.Random(2025)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        ref = make_reference(args.images, rng)
        (root / "eval.json").write_text(json.dumps(ref))
        t0 = time.perf_counter()
        for k in range(args.submissions):
            team = root / "subs" / f"team{k % args.teams:03d}"
            team.mkdir(parents=True, exist_ok=True)
            with zipfile.ZipFile(team / f"sub{k:04d}.zip", "w", zipfile.ZIP_DEFLATED) as zf:
                zf.writestr("output.json", make_submission(ref, rng.uniform(0.2, 2.0), rng))
                zf.writestr("readme.txt", README_TEMPLATE)
        n_elements = sum(len(r["element_score"]) for r in ref)
        print(f"generated {args.submissions} submissions of {args.images} images ({n_elements} elements) "
              f"in {time.perf_counter() - t0:.1f} s")
        db = root / "lb.db"
        t0 = time.perf_counter()
        board, summary = rank(root / "subs", "align", root / "eval.json", db, workers=args.workers)
        first = time.perf_counter() - t0
        t0 = time.perf_counter()
        _, again = rank(root / "subs", "align", root / "eval.json", db, workers=args.workers)
        rerun = time.perf_counter() - t0
    rate = summary.scored / first
    ok_rate, ok_rerun = rate >= 5, rerun < 3
    print(f"first run : {summary.scored} scored in {first:.1f} s = {rate:.2f} submissions/s on {args.workers} "
          f"workers (target >= 5/s)  {'PASS' if ok_rate else 'FAIL'}")
    print(f"re-run    : {again.scored} new, {again.already_scored} known, {rerun:.2f} s (target < 3 s)  "
          f"{'PASS' if ok_rerun else 'FAIL'}")
    print(f"leaderboard: {len(board.rows)} teams, best {board.rows[0].team} {board.rows[0].main_score:.4f}")
    return 0 if (ok_rate and ok_rerun) or args.quick else 1


if __name__ == "__main__":
    sys.exit(main())
