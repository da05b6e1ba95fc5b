"""Mutation score of the scoring core and the converters (``make mutation``; not part of CI: too slow).

Each module is mutated with mutmut in a scratch copy of the working tree (tracked and untracked,
not ignored, files), with only the tests that exercise it, so a run never touches the checkout.
Prints, per module, killed / survived / timeouts / no tests and the score (killed over mutants
that ran), then each survivor's name; ``--json FILE`` writes the same with each survivor's diff.

    python benchmarks/mutation.py                       # every module (hours on 2 shared cores)
    python benchmarks/mutation.py metrics regions       # some of them
    python benchmarks/mutation.py metrics --jobs 2 --json mutation-metrics.json
    python benchmarks/mutation.py metrics --work /tmp/mut   # again after adding tests: only survivors rerun

Equivalent mutants cannot be told apart by a tool: BENCHMARKS.md lists each survivor with its
disposition (killed by a test added since, or why it is equivalent).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

#: module -> (files mutated, tests run against them)
MODULES: dict[str, tuple[list[str], list[str]]] = {
    "metrics": (["ntire_t2iqa/metrics.py"],
                ["tests/test_metrics.py", "tests/test_reference_harness.py", "tests/test_official_behaviour.py",
                 "tests/test_correlation.py", "tests/test_align.py", "tests/test_structure.py", "tests/test_explain.py",
                 "tests/test_mutation_kills.py"]),
    "regions": (["ntire_t2iqa/regions.py"],
                ["tests/test_regions.py", "tests/test_regions_units.py", "tests/test_reference_harness.py",
                 "tests/test_official_behaviour.py", "tests/test_structure.py"]),
    "tracks": (["ntire_t2iqa/tracks/*"],
               ["tests/test_tracks_compute.py", "tests/test_tracks_common.py", "tests/test_align.py",
                "tests/test_structure.py", "tests/test_reference_harness.py", "tests/test_official_behaviour.py",
                "tests/test_safety.py", "tests/test_hostile_text.py", "tests/test_problem_catalogue.py",
                "tests/test_align_units.py", "tests/test_structure_units.py"]),
    "ranking": (["ntire_t2iqa/leaderboard/ranking.py"],
                ["tests/test_ranking.py", "tests/test_leaderboard.py",
                 "tests/test_rank_hardening.py::test_bootstrap_results_are_dropped_when_the_board_changes"]),
    "store": (["ntire_t2iqa/leaderboard/store.py"],
              ["tests/test_store_units.py", "tests/test_integrity_store.py",
               "tests/test_cli_commands.py::test_rerank_after_the_reference_or_the_fit_changes"]
              + [f"tests/test_leaderboard.py::{t}" for t in (
                  "test_rank_picks_best_orders_and_lists_invalid", "test_pick_last_takes_the_latest_valid",
                  "test_rerun_scores_only_new_files", "test_ties_go_to_the_earlier_submission",
                  "test_bootstrap_is_paired_and_deterministic", "test_exports")]
              + [f"tests/test_rank_hardening.py::{t}" for t in (  # the store's own; not rank's file handling
                  "test_undecodable_team_and_file_names_are_stored_and_scored",
                  "test_bootstrap_results_are_dropped_when_the_board_changes", "test_a_stored_reason_is_bounded",
                  "test_a_file_that_is_not_our_store_is_refused_and_left_unchanged",
                  "test_a_store_of_the_first_version_is_read_and_then_stamped", "test_a_new_store_carries_our_id",
                  "test_read_only_commands_write_nothing",
                  "test_a_wal_store_on_a_read_only_disk_is_read_without_side_files",
                  "test_a_full_disk_exits_2_and_a_rerun_gives_the_undisturbed_board",
                  "test_a_scorer_failure_is_tried_again_by_other_scoring_code")]),
    "fga_convert": (["ntire_t2iqa_baselines/fga_blip2/convert.py"],
                    ["tests/test_baseline_fga_blip2_golden.py", "tests/test_fga_convert_units.py",
                     "tests/test_baseline_fga_blip2.py"]),
    "rahf_convert": (["ntire_t2iqa_baselines/rahf/convert.py"],
                     ["tests/test_baseline_rahf_golden.py", "tests/test_rahf_convert_units.py",
                      "tests/test_baseline_rahf.py"]),
}

#: tests left out of every module's run: slow and unrelated to the mutated code (a browser render), or timing a
#: signal against a child process, which the mutation runner's slower start makes miss
DESELECT = ["tests/test_explain.py::test_html_report_renders_in_chromium",
            "tests/test_rank_hardening.py::test_a_signal_stops_every_worker_and_a_rerun_completes_the_same"]

LINE = re.compile(r"^\s*(?P<name>\S+__mutmut_\d+): (?P<status>.+?)\s*$")


def scratch_copy(dest: Path) -> None:
    """The working tree's tracked and untracked (not ignored) files, copied into ``dest``."""
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=ROOT, check=True,
                           capture_output=True).stdout.decode().split("\0")
    for name in filter(None, files):
        src = ROOT / name
        if src.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / name)


def results(work: Path, mutmut: list[str], env: dict[str, str]) -> dict[str, str]:
    """Every mutant's status in a scratch copy, from ``mutmut results``."""
    listing = subprocess.run([*mutmut, "results", "--all", "true"], cwd=work, env=env, capture_output=True,
                             text=True).stdout
    return {m["name"]: m["status"] for m in map(LINE.match, listing.splitlines()) if m}


def refresh_tests(dest: Path) -> None:
    """Copy the working tree's tests and docs (tracked and untracked) over those of a kept scratch copy."""
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z", "tests", "docs"], cwd=ROOT,
                           check=True,
                           capture_output=True).stdout.decode().split("\0")
    for name in filter(None, files):
        if (ROOT / name).is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, dest / name)


def run_module(name: str, jobs: int, python: Path, keep: bool, reuse: Path | None = None) -> dict:
    """Mutate one module in a scratch copy; return its counts and survivors (with their diffs).

    ``reuse``: a scratch copy kept by an earlier run (``--work``): its tests are refreshed from the
    working tree, the mutants not yet tested are run and the survivors (and those no test reached) of before
    are run again.
    """
    files, tests = MODULES[name]
    fresh = reuse is None or not (reuse / "mutants").is_dir()
    work = reuse if reuse is not None else Path(tempfile.mkdtemp(prefix=f"ntire-mutation-{name}-"))
    keep = keep or reuse is not None
    try:
        if fresh:
            work.mkdir(parents=True, exist_ok=True)
            scratch_copy(work)
        else:
            refresh_tests(work)
        top = files[0].split("/")[0]
        (work / "setup.cfg").write_text(
            "[mutmut]\n"
            f"source_paths = {top}\n"
            "only_mutate =\n" + "".join(f"    {f}\n" for f in files) +
            "also_copy =\n    benchmarks\n    docs\n    ntire_t2iqa\n    ntire_t2iqa_baselines\n"
            "pytest_add_cli_args =\n    -x\n    -q\n    -p\n    no:cacheprovider\n"
            + "".join(f"    --deselect\n    {t}\n" for t in DESELECT) +
            "pytest_add_cli_args_test_selection =\n" + "".join(f"    {t}\n" for t in tests))
        env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
        mutmut = [str(python.parent / "mutmut")]
        t0 = time.perf_counter()
        again = [] if fresh else sorted(n for n, s in results(work, mutmut, env).items()
                                        if s in ("survived", "no tests"))
        run = subprocess.run(["nice", "-n", "10", *mutmut, "run", "--max-children", str(jobs)], cwd=work, env=env,
                             capture_output=True, text=True)
        if again and not run.returncode:
            run = subprocess.run(["nice", "-n", "10", *mutmut, "run", "--max-children", str(jobs), *again],
                                 cwd=work, env=env, capture_output=True, text=True)
        seconds = time.perf_counter() - t0
        statuses = results(work, mutmut, env)
        counts: dict[str, int] = {}
        for status in statuses.values():
            counts[status] = counts.get(status, 0) + 1
        survivors = sorted(n for n, s in statuses.items() if s == "survived")
        diffs = {n: subprocess.run([*mutmut, "show", n], cwd=work, env=env, capture_output=True,
                                   text=True).stdout for n in survivors}
        killed, ran = counts.get("killed", 0), sum(counts.get(s, 0) for s in ("killed", "survived", "timeout"))
        return {"module": name, "files": files, "tests": tests, "seconds": round(seconds, 1),
                "exit_code": run.returncode, "counts": counts, "mutants": len(statuses),
                "score": round(killed / ran, 4) if ran else None, "survivors": diffs,
                "log_tail": (run.stdout + run.stderr)[-2000:] if run.returncode else ""}
    finally:
        if keep:
            print(f"kept {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    """Run the chosen modules one after another and print the table."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("modules", nargs="*", help=f"any of {', '.join(MODULES)} (default: all)")
    ap.add_argument("--jobs", type=int, default=1, help="mutants tested at once (default 1: a shared machine)")
    ap.add_argument("--json", type=Path, default=None, help="write every module's result (survivor diffs too)")
    ap.add_argument("--keep", action="store_true", help="keep the scratch copies (to inspect with mutmut browse)")
    ap.add_argument("--work", type=Path, default=None,
                    help="keep each module's scratch copy in WORK/<module>; when one is there already, refresh its "
                         "tests, run the mutants not yet tested and run the earlier survivors again")
    args = ap.parse_args(argv)
    unknown = [m for m in args.modules if m not in MODULES]
    if unknown:
        ap.error(f"unknown module(s) {', '.join(unknown)}; choose from {', '.join(MODULES)}")
    results = []
    for name in args.modules or list(MODULES):
        result = run_module(name, args.jobs, Path(sys.executable), args.keep,
                            args.work / name if args.work else None)
        results.append(result)
        c = result["counts"]
        print(f"{name:13s} mutants {result['mutants']:4d}  killed {c.get('killed', 0):4d}  survived "
              f"{c.get('survived', 0):3d}  timeout {c.get('timeout', 0):3d}  no tests {c.get('no tests', 0):3d}  "
              f"score {result['score']}  ({result['seconds']:.0f} s)", flush=True)
        for survivor in result["survivors"]:
            print(f"    survived: {survivor}")
        if result["exit_code"]:
            print(f"    mutmut exited {result['exit_code']}:\n{result['log_tail']}")
        if args.json:
            args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
