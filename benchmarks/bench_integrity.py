"""Integrity benchmark: probing and collusion over 3,000 stored Track 1 submissions of test size.

The store is built directly with the store API (what ``rank`` writes per scored file: the
submission, its result and its per-image predictions), not by scoring 3,000 zips. Then
``integrity`` is timed from opening the store to the finished report, and its JSON and the
private HTML page are rendered. Target: under 10 s. The planted teams (label probers,
copiers, baseline submitters) must all be found, and no normal team flagged.

Population (seed 2025): a reference of 6,500 images with 1-11 elements each (about 39,000);
60 teams of 50 submissions. A normal team has its own model (the reference plus noise of
its own size) and every submission retrains it a little (every image moves). Planted: 3
teams whose last 20 submissions are a chain of single-image probes, 2 teams whose files are
another team's with noise of 0.01, a ``baseline:`` entry and 2 teams that send it as theirs.

Also measured: what storing the predictions adds to scoring one file in ``rank`` (computing
them from the parsed records, as a worker does), on ``bench_score.py``'s 1,000-image Track 2
and 6,500-image Track 1 inputs.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from ntire_t2iqa import load_reference
from ntire_t2iqa.leaderboard.integrity import analyse
from ntire_t2iqa.leaderboard.integrity_html import to_html
from ntire_t2iqa.leaderboard.predictions import Predictions, meta_key, of_result
from ntire_t2iqa.leaderboard.store import Entry, Scope, Store
from ntire_t2iqa.scoring import evaluate

PROBERS = ("team003", "team007", "team011")
COPIERS = {"team008": "team009", "team015": "team012"}  # copier -> source
LAZY = ("team005", "team018")
BASELINE = "baseline:FGA-BLIP2"


def _store(db: Path, n_images: int, n_teams: int, per_team: int, rng: np.random.Generator) -> int:
    """Write the population into a new store; returns the number of submissions."""
    per_image = rng.integers(1, 12, n_images)
    n_el = int(per_image.sum())
    gt_total = rng.uniform(1, 5, n_images)
    gt_el = rng.choice([0.0, 1 / 3, 2 / 3, 1.0], n_el)
    scope = Scope("align", hashlib.sha256(b"bench-integrity").hexdigest(), "official")
    keys = [f"model{i % 20}/{i:05d}.png" for i in range(n_images)]
    files: dict[str, list[Predictions]] = {}

    def make(totals: np.ndarray, elements: np.ndarray) -> Predictions:
        decisions = elements >= 0.5
        return Predictions(totals, np.packbits(decisions), n_el)

    baseline_total, baseline_el = gt_total + rng.normal(0, 1.0, n_images), gt_el + rng.normal(0, 0.35, n_el)
    files[BASELINE] = [make(baseline_total, baseline_el)]
    for t in range(n_teams):
        team = f"team{t:03d}"
        sigma = rng.uniform(0.6, 1.2)
        model_total, model_el = gt_total + rng.normal(0, sigma, n_images), gt_el + rng.normal(0, 0.3, n_el)
        subs = []
        for k in range(per_team):
            if team in PROBERS and k >= per_team - 20:  # each probe changes one more image of the last file
                prev = subs[-1]
                totals = prev.totals.copy()
                i = int(rng.integers(n_images))
                totals[i] += 2.0
                subs.append(Predictions(totals, prev.decisions, n_el))
                continue
            subs.append(make(model_total + rng.normal(0, 0.15, n_images), model_el + rng.normal(0, 0.05, n_el)))
        files[team] = subs
    for copier, source in COPIERS.items():
        for k, p in enumerate(files[source][:10]):
            el = np.unpackbits(p.decisions, count=n_el).astype(float) * 0.6 + 0.2 + rng.normal(0, 0.01, n_el)
            files[copier][k] = make(p.totals + rng.normal(0, 0.01, n_images), el)
    for team in LAZY:
        files[team][-1] = files[BASELINE][0]
    n = 0
    with Store(db) as store:
        store.set_meta(f"scope:{scope.track}", {"ref_sha256": scope.ref_sha256, "plcc_fit": scope.plcc_fit,
                                                "reference": "generated"})
        store.set_meta(meta_key(scope.track, scope.ref_sha256), {"keys": keys,
                                                                  "elements_per_image": per_image.tolist()})
        entries, results = [], []
        for team, subs in files.items():
            for k, p in enumerate(subs):
                content = b"".join(x or b"" for x in p.row()[1:3])
                sha = hashlib.sha256(content).hexdigest()
                when = f"2025-03-{1 + k // 5:02d}T{8 + k % 5:02d}:{n % 60:02d}:00.000000Z"
                entries.append(Entry("align", team, f"/subs/{team}/s{k:02d}.zip", sha, len(content), 0, when))
                results.append((sha, p))
                n += 1
        store.add_entries(entries)
        for sha, p in results:
            store.add_result(scope, sha, "ok", 0.7, {"srcc": 0.7, "plcc": 0.7, "acc": 0.7}, None, None, p)
    return n


def scoring_cost(workdir: Path, repeats: int = 5) -> None:
    """Print, per track, scoring one file from its zip against computing its stored predictions (best of runs)."""
    import bench_score  # the scoring benchmark's input generators

    cases = (("structure", *bench_score.make_structure(workdir, "t2", 1000, 2025, dense=False)[:2]),
             ("align", *bench_score.make_align(workdir, "t1", 6500, 2025)[:2]))
    for track, zip_path, ref_path in cases:
        ref = load_reference(ref_path, track)
        score_t, pred_t = [], []
        for _ in range(repeats):
            t0 = time.perf_counter()
            ev = evaluate(zip_path, ref, track)
            score_t.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            of_result(track, ev.records, ev.result.details)
            pred_t.append(time.perf_counter() - t0)
        print(f"scoring  : {track}, {ev.result.n_images:,} images: zip to result {min(score_t):.3f} s, predictions "
              f"{min(pred_t):.3f} s more (+{min(pred_t) / min(score_t):.0%})")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=6500)
    parser.add_argument("--teams", type=int, default=60)
    parser.add_argument("--per-team", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=3, help="timed runs; the best is reported")
    parser.add_argument("--quick", action="store_true", help="600 submissions of 2,000 images")
    parser.add_argument("--no-scoring-cost", action="store_true", help="skip the cost added to scoring")
    args = parser.parse_args(argv)
    if args.quick:
        args.images, args.teams, args.per_team = 2000, 20, 30
    rng = np.random.default_rng(2025)
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "lb.db"
        t0 = time.perf_counter()
        n = _store(db, args.images, args.teams, args.per_team, rng)
        print(f"store: {n:,} submissions of {args.images:,} images written in {time.perf_counter() - t0:.1f} s, "
              f"{db.stat().st_size / 2**20:.0f} MiB")
        times = []
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            report = analyse(db, "align")
            times.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        payload, page = report.to_json(), to_html(report)
        render = time.perf_counter() - t0
        if not args.no_scoring_cost:
            scoring_cost(Path(tmp))
    flagged = {t.team for t in report.probing if t.flagged}
    copies = {frozenset((p.team_a, p.team_b)) for p in report.copies}
    lazy = {p.team_a for p in report.baseline_copies}
    found = flagged == set(PROBERS) and copies == {frozenset(p) for p in COPIERS.items()} and lazy == set(LAZY)
    best = min(times)
    print(f"integrity: {', '.join(f'{t:.2f}' for t in times)} s (best {best:.2f} s; target < 10 s = "
          f"{10 / best:.1f}x headroom)  {'PASS' if best < 10 else 'FAIL'}")
    print(f"render   : JSON {len(payload) / 1024:.0f} KiB and private HTML {len(page) / 1024:.0f} KiB "
          f"in {render:.2f} s")
    print(f"findings : probing flagged {sorted(flagged)}, copied pairs {sorted(sorted(c) for c in copies)}, "
          f"baseline submitted by {sorted(lazy)}: {'all planted found, no normal team flagged' if found else 'WRONG'}")
    return 0 if (best < 10 and found) or args.quick else 1


if __name__ == "__main__":
    sys.exit(main())
