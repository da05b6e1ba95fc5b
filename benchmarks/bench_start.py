"""Start-up and whole-process benchmark: the command line against bare Python and the official programs.

Every figure is a whole process, started and waited for as a user or a platform starts it:

* start-up: ``ntire-t2iqa --help``, ``validate --help``, ``validate`` and ``score`` of both tracks,
  each against ``python -c "import numpy"`` (the floor of any numpy program);
* ``codalab-score`` on an unzipped ``INPUT/res`` + ``INPUT/ref`` against
  ``benchmarks/official_runner.py``, which runs the plain official-style scorer
  (``naive_official.py``) as CodaLab runs a competition's ``evaluate.py``: Track 2 with
  1,000 typical images and with 300 many-region images, Track 1 with 10,000 images.
  Both sides must give the same metrics (within 1e-9); the two programs are run in
  alternation, and each side's median decides.

Run from the repository root:

    .venv/bin/python benchmarks/bench_start.py            # full run (a few minutes on 2 cores)
    .venv/bin/python benchmarks/bench_start.py --quick    # smaller inputs, fewer runs

Exit status: 1 when the metrics differ, 2 when (full run only) a speed target is missed, 0 otherwise.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.bench_score import make_align, make_structure  # noqa: E402
from ntire_t2iqa.codalab.keys import metric_columns  # noqa: E402

PY = sys.executable
RUNNER = str(ROOT / "benchmarks" / "official_runner.py")
TOLERANCE = 1e-9
#: Whole-process targets against the official programs (ratio official / toolkit).
TARGETS = {"structure": 3.0, "structure_dense": 3.0, "align": 1.5}
#: Phases of the toolkit's codalab-score, timed inside one process (printed with each comparison).
PROFILE = r"""
import sys, time
t0 = time.perf_counter()
import numpy
t1 = time.perf_counter()
from ntire_t2iqa import codalab, tracks
from ntire_t2iqa.scoring import _check, load_reference
mod = tracks.get(sys.argv[2])
t2 = time.perf_counter()
ref = load_reference(sys.argv[1] + "/ref", sys.argv[2])
t3 = time.perf_counter()
records, readme, problems = _check(sys.argv[1] + "/res", sys.argv[2], mod.expected_of(ref), "reference", None)
t4 = time.perf_counter()
from ntire_t2iqa import minpack
minpack.minpack()
t5 = time.perf_counter()
mod.compute(records, ref, "official", check=False)
t6 = time.perf_counter()
print(f"numpy {t1 - t0:.3f}, toolkit and track imports {t2 - t1:.3f}, reference {t3 - t2:.3f}, "
      f"submission read and checks {t4 - t3:.3f}, MINPACK load {t5 - t4:.3f}, matching and metrics {t6 - t5:.3f}")
"""


def toolkit_command() -> list[str]:
    """The installed console script next to this interpreter, else ``python -m ntire_t2iqa``."""
    script = Path(PY).parent / "ntire-t2iqa"
    return [str(script)] if script.exists() else [PY, "-m", "ntire_t2iqa"]


def wall(cmd: list[str], check: bool = True) -> float:
    """Seconds from start to exit of one process (its output discarded)."""
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=ROOT)
    elapsed = time.perf_counter() - t0
    if check and proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited {proc.returncode}: {proc.stderr.decode()[-400:]}")
    return elapsed


def median_of(cmd: list[str], runs: int, check: bool = True) -> tuple[float, float]:
    """(median, best) seconds over ``runs`` runs, after one warm-up run (file cache, .pyc)."""
    wall(cmd, check)
    times = [wall(cmd, check) for _ in range(runs)]
    return statistics.median(times), min(times)


def unpack(zip_path: Path, ref_path: Path, folder: Path, ref_name: str) -> Path:
    """CodaLab's layout: the upload unzipped into INPUT/res, the reference in INPUT/ref."""
    (folder / "res").mkdir(parents=True, exist_ok=True)
    (folder / "ref").mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(zip_path) as zf:
        zf.extractall(folder / "res")
    shutil.copy(ref_path, folder / "ref" / ref_name)
    return folder


def official_metrics(scores_txt: Path) -> dict[str, float]:
    out: dict[str, float] = {}
    for line in scores_txt.read_text().splitlines():
        key, _, value = line.partition(": ")
        try:
            out[key] = float(value)
        except ValueError:
            continue
    return out


def toolkit_metrics(scores_json: Path, track: str) -> dict[str, float]:
    values = json.loads(scores_json.read_text())
    return {c.source: float(values[c.key]) for c in metric_columns(track)}


def compare_codalab(label: str, track: str, inputs: Path, work: Path, rounds: int,
                    target: float, rows: list[tuple[str, str, str, str]]) -> tuple[bool, bool]:
    """Alternate the two programs ``rounds`` times; return (metrics agree, target met)."""
    out_tk, out_off = work / f"out_tk_{label}", work / f"out_off_{label}"
    tk_cmd = [*toolkit_command(), "codalab-score", str(inputs), str(out_tk)]
    off_cmd = [PY, RUNNER, str(inputs), str(out_off)]
    wall(tk_cmd)
    wall(off_cmd)  # warm-up: file cache and .pyc files for both
    tk_times, off_times = [], []
    for _ in range(rounds):
        tk_times.append(wall(tk_cmd))
        off_times.append(wall(off_cmd))
    tk, off = statistics.median(tk_times), statistics.median(off_times)
    ratio = off / tk
    tk_m = toolkit_metrics(out_tk / "scores.json", track)
    off_m = official_metrics(out_off / "scores.txt")
    worst = max(abs(tk_m[k] - off_m[k]) for k in tk_m)
    same = worst <= TOLERANCE
    print(f"\n[{label}] toolkit codalab-score: median {tk:.3f} s (runs {', '.join(f'{t:.2f}' for t in tk_times)})")
    print(f"[{label}] official runner:       median {off:.3f} s (runs {', '.join(f'{t:.2f}' for t in off_times)})")
    print(f"[{label}] {ratio:.2f}x; metrics {'identical' if same else 'DIFFER'} (max |diff| {worst:.1e})")
    prof = subprocess.run([PY, "-c", PROFILE, str(inputs), track], capture_output=True, text=True, cwd=ROOT)
    print(f"[{label}] toolkit phases in one process: {prof.stdout.strip() or prof.stderr[-300:]}")
    rows.append((label, f"official {off:.2f} s / toolkit {tk:.2f} s = {ratio:.2f}x", f">= {target:g}x",
                 "PASS" if ratio >= target else "FAIL"))
    rows.append((label, f"metrics max |diff| {worst:.1e}", f"<= {TOLERANCE:g}", "PASS" if same else "FAIL"))
    return same, ratio >= target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller inputs and fewer runs (about a minute)")
    parser.add_argument("--seed", type=int, default=2025)
    parser.add_argument("--keep", metavar="DIR", help="write the inputs to DIR and keep them")
    args = parser.parse_args(argv)
    sizes = ({"align": 2000, "structure": 200, "structure_dense": 60, "runs": 3, "rounds": 3} if args.quick
             else {"align": 10000, "structure": 1000, "structure_dense": 300, "runs": 7, "rounds": 5})
    import numpy as np

    print(f"ntire_t2iqa start-up benchmark ({'quick' if args.quick else 'full'} run, seed {args.seed}, "
          f"{os.cpu_count()} CPU cores, Python {sys.version.split()[0]}, numpy {np.__version__})")
    rows: list[tuple[str, str, str, str]] = []
    same_all, met_all = True, True
    with tempfile.TemporaryDirectory(prefix="t2iqa_start_") as tmp:
        work = Path(args.keep) if args.keep else Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        zip_t1, ref_t1, _ = make_align(work, "t1", sizes["align"], args.seed + 2)
        zip_t2, ref_t2, _ = make_structure(work, "t2", sizes["structure"], args.seed, dense=False)
        zip_d, ref_d, _ = make_structure(work, "t2dense", sizes["structure_dense"], args.seed + 1, dense=True)

        tk = toolkit_command()
        numpy_floor, _ = median_of([PY, "-c", "import numpy"], sizes["runs"])
        print(f"\nstart-up, median of {sizes['runs']} runs (bare `python -c \"import numpy\"`: {numpy_floor:.3f} s)")
        startup: list[tuple[str, list[str], bool]] = [
            ("--help", [*tk, "--help"], True),
            ("validate --help", [*tk, "validate", "--help"], True),
            ("leaderboard --help", [*tk, "leaderboard", "--help"], True),
            (f"validate, Track 1 ({sizes['align']:,} images)",
             [*tk, "validate", str(zip_t1), "--track", "align"], True),
            (f"validate, Track 2 ({sizes['structure']:,} images)",
             [*tk, "validate", str(zip_t2), "--track", "structure"], True),
            (f"score, Track 1 ({sizes['align']:,} images)",
             [*tk, "score", str(zip_t1), "--track", "align", "--ref", str(ref_t1)], True),
            (f"score, Track 2 ({sizes['structure']:,} images)",
             [*tk, "score", str(zip_t2), "--track", "structure", "--ref", str(ref_t2)], True),
        ]
        for label, cmd, check in startup:
            med, best = median_of(cmd, sizes["runs"], check)
            print(f"  {label:<34} {med:6.3f} s (best {best:.3f} s) = {med / numpy_floor:5.1f}x bare numpy")
            rows.append((label, f"{med:.3f} s, {med / numpy_floor:.1f}x `import numpy`", "-", "measured"))

        cases: list[tuple[str, str, Callable[[], Path], str]] = [
            (f"codalab-score Track 2, {sizes['structure']:,} typical images", "structure",
             lambda: unpack(zip_t2, ref_t2, work / "in_t2", "gt.pkl"), "structure"),
            (f"codalab-score Track 2, {sizes['structure_dense']:,} many-region images", "structure",
             lambda: unpack(zip_d, ref_d, work / "in_t2dense", "gt.pkl"), "structure_dense"),
            (f"codalab-score Track 1, {sizes['align']:,} images", "align",
             lambda: unpack(zip_t1, ref_t1, work / "in_t1", "eval.json"), "align"),
        ]
        for label, track, make_inputs, target_key in cases:
            same, met = compare_codalab(label, track, make_inputs(), work, sizes["rounds"], TARGETS[target_key], rows)
            same_all &= same
            met_all &= met

    print("\n" + "-" * 100)
    w0 = max(len(r[0]) for r in rows)
    w1 = max(len(r[1]) for r in rows)
    for case, measured, target, verdict in rows:
        print(f"{case:<{w0}}  {measured:<{w1}}  target {target:<9} {verdict}")
    if not same_all:
        print("\nRESULTS DIFFER between the toolkit and the official runner.")
        return 1
    if not met_all and not args.quick:
        print("\nA speed target was missed.")
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
