"""Time ``explain`` end to end: 10,000 Track 1 images, and 1,000 Track 2 images with overlays of the 50 worst.

Each case is timed from files to the written HTML report (scoring, every table, plots,
overlays), next to ``score`` alone on the same files, in one run:

    .venv/bin/python benchmarks/bench_explain.py            # full size, about a minute with input generation
    .venv/bin/python benchmarks/bench_explain.py --quick    # 2,000 / 200 images

The inputs are those of ``bench_score.py`` (same generators and seeds); the Track 1
reference also gets a prompt ``type`` per image so the per-type table is exercised, and
``--images`` gives Track 2 pictures so the overlays are drawn over photos.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_score import make_align, make_structure  # noqa: E402

from ntire_t2iqa import score  # noqa: E402
from ntire_t2iqa.explain import explain  # noqa: E402
from ntire_t2iqa.explain.report import to_html  # noqa: E402

TARGET_S = 15.0


def best_of(repeats: int, func) -> tuple[float, object]:
    best, value = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        value = func()
        best = min(best, time.perf_counter() - start)
    return best, value


def add_types(ref_path: Path) -> None:
    records = json.loads(ref_path.read_text())
    for i, rec in enumerate(records):
        rec["type"] = ("real", "synthetic-one", "synthetic-multi")[i % 3]
    ref_path.write_text(json.dumps(records))


def write_pictures(folder: Path, names: list[str], seed: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for name in names:
        base = rng.integers(0, 255, 3).astype(np.uint8)
        picture = np.broadcast_to(base, (512, 512, 3)).copy()
        cv2.circle(picture, tuple(int(v) for v in rng.integers(100, 400, 2)), 60, tuple(int(v) for v in 255 - base), -1)
        cv2.imwrite(str(folder / f"{name}.jpg"), picture)


def run_case(track: str, zip_path: Path, ref_path: Path, out: Path, images: Path | None, repeats: int) -> dict:
    score_s, result = best_of(repeats, lambda: score(zip_path, ref_path, track))

    def full() -> int:
        ex = explain(zip_path, ref_path, track, images=images, overlays=50)
        out.write_text(to_html(ex), encoding="utf-8")
        assert ex.result.to_dict() == result.to_dict(), "explain's headline differs from score's"
        return len(ex.data.get("overlays", []))

    explain_s, n_overlays = best_of(repeats, full)
    return {"score_s": score_s, "explain_s": explain_s, "overlays": n_overlays, "html_mib": out.stat().st_size / 2**20}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2,000 Track 1 and 200 Track 2 images")
    parser.add_argument("--repeats", type=int, default=2, help="best of this many runs (default 2)")
    args = parser.parse_args(argv)
    n_align, n_structure = (2_000, 200) if args.quick else (10_000, 1_000)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        print(f"generating inputs: Track 1 {n_align:,} images, Track 2 {n_structure:,} images ...", flush=True)
        a_zip, a_ref, a_info = make_align(work, "align", n_align, seed=2025)
        add_types(a_ref)
        s_zip, s_ref, _ = make_structure(work, "structure", n_structure, seed=2025, dense=False)
        write_pictures(work / "images", [f"img_{i:05d}" for i in range(n_structure)], seed=1)
        rows = [
            (f"Track 1, {n_align:,} images, {a_info['elements']:,} elements",
             run_case("align", a_zip, a_ref, work / "a.html", None, args.repeats)),
            (f"Track 2, {n_structure:,} images, overlays of the 50 worst over pictures",
             run_case("structure", s_zip, s_ref, work / "s.html", work / "images", args.repeats)),
        ]
    print("\n| Case | score | explain (files to HTML) | HTML size | target | verdict |\n|---|---|---|---|---|---|")
    ok = True
    for label, r in rows:
        verdict = "PASS" if r["explain_s"] < TARGET_S else "FAIL"
        ok &= verdict == "PASS"
        print(f"| {label} | {r['score_s']:.2f} s | {r['explain_s']:.2f} s ({r['explain_s'] / r['score_s']:.1f}x score) "
              f"| {r['html_mib']:.1f} MiB | < {TARGET_S:.0f} s | {verdict} |")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
