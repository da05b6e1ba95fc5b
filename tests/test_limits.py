"""Submission limits in `rank`: counted as Codabench counts, refused files never scored or ranked."""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from helpers import align_zip, random_align

from ntire_t2iqa import cli_common, score
from ntire_t2iqa.cli import main
from ntire_t2iqa.leaderboard import FORMATS, SubmissionLimits, rank, render
from ntire_t2iqa.leaderboard.integrity import analyse
from ntire_t2iqa.leaderboard.limits import refusals


def _noisy(ref: list[dict], noise: float, seed: int) -> list[dict]:
    rng = np.random.default_rng(seed)
    return [{"img_path": r["img_path"], "total_score": r["total_score"] + float(rng.normal(0, noise)),
             "element_score": {k: float(np.clip(v + rng.normal(0, 0.3), 0, 1)) for k, v in r["element_score"].items()}}
            for r in ref]


def _challenge(tmp: Path, plan: list[tuple[str, str, str, str]]) -> tuple[Path, Path, list[dict]]:
    """Manifest rows (team, file, time, kind): kind 'noisy<seed>', 'perfect' or 'invalid'."""
    _, ref = random_align(60, seed=21)
    (tmp / "eval.json").write_text(json.dumps(ref))
    lines = ["path,team,leader,submitted_at,phase"]
    for team, file, when, kind in plan:
        (tmp / team).mkdir(exist_ok=True)
        recs = ref if kind == "perfect" else ref[:-1] if kind == "invalid" else _noisy(ref, 0.9, int(kind[5:]))
        align_zip(tmp / team / file, recs)
        lines.append(f"{team}/{file},{team},,{when},test")
    (tmp / "m.csv").write_text("\n".join(lines) + "\n")
    return tmp / "m.csv", tmp / "eval.json", ref


def _day(d: int, h: int) -> str:
    return f"2025-03-{d:02d}T{h:02d}:00:00Z"


EAGER = [("eager", f"e{k}.zip", _day(1, 8 + k), "perfect" if k == 3 else f"noisy{k}") for k in range(5)] + \
    [("eager", f"f{k}.zip", _day(2, 8 + k), f"noisy{10 + k}") for k in range(2)] + \
    [("eager", "e5.zip", _day(1, 14), "noisy0")] + \
    [("calm", f"c{k}.zip", _day(1, 9 + k), f"noisy{20 + k}") for k in range(2)] + \
    [("baseline:B", "b.zip", _day(1, 1), "noisy30")]


def _results(db: Path) -> set[str]:
    with sqlite3.connect(db) as con:
        out = {r[0] for r in con.execute("SELECT s.path FROM submissions s JOIN results r ON r.sha256 = s.sha256")}
    con.close()
    return {Path(p).name for p in out}


def test_refusals_by_hand() -> None:
    rows = [{"id": i, "team": team, "phase": phase, "submitted_at": when, "status": status}
            for i, (team, phase, when, status) in enumerate([
                ("a", "", _day(1, 1), "ok"), ("a", "", _day(1, 2), "invalid"), ("a", "", _day(1, 3), None),
                ("a", "", _day(1, 4), "ok"), ("a", "", _day(2, 1), "ok"), ("a", "", _day(2, 2), "ok"),
                ("b", "", _day(1, 5), "ok"), ("baseline:x", "", _day(1, 6), "ok"),
                ("baseline:x", "", _day(1, 7), "ok")])]
    # 2 a day: a's invalid one does not count, so its third valid one on day 1 is refused; day 2 starts afresh
    assert set(refusals(rows, SubmissionLimits(per_day=2))) == {3}
    assert set(refusals(rows, SubmissionLimits(per_day=2, count_invalid=True))) == {2, 3}
    # 3 a phase: days do not matter; baselines are never limited
    assert set(refusals(rows, SubmissionLimits(per_phase=3))) == {4, 5}
    # a submission that finds its team at a limit is refused before anyone knows it is invalid
    assert set(refusals(rows, SubmissionLimits(per_phase=1, per_day=1))) == {1, 2, 3, 4, 5}
    starts = (("dev", "2025-01-01T00:00:00.000000Z"), ("test", _day(2, 0)[:-1] + ".000000Z"))
    assert set(refusals(rows, SubmissionLimits(per_phase=2, phase_starts=starts))) == {3}
    assert refusals(rows, SubmissionLimits()) == {}
    assert "2025-03-01 (UTC)" in refusals(rows, SubmissionLimits(per_day=2))[3]


def test_over_the_daily_limit_is_refused_never_scored_and_never_ranked(tmp_path) -> None:
    manifest, ref, _ = _challenge(tmp_path, EAGER)
    db = tmp_path / "lb.db"
    board, summary = rank(None, "align", ref, db, manifest=manifest, limits=SubmissionLimits(per_day=3))
    assert len(summary.refused) == 3
    assert [line.split(": ")[1].split(" ")[0] for line in summary.refused] == ["e3.zip", "e4.zip", "e5.zip"]
    assert all("limit of 3 submission(s) per day" in line and "2025-03-01" in line for line in summary.refused)
    assert not {"e3.zip", "e4.zip"} & _results(db)  # never scored: their scores cannot leak
    report = analyse(db, "align")  # e5.zip is e0.zip's very file: scored, but as e0.zip only
    assert [r.file for r in report.refused] == ["e3.zip", "e4.zip", "e5.zip"]
    assert {s.file for s in report.data.subs if s.team == "eager"} == {"e0.zip", "e1.zip", "e2.zip", "f0.zip",
                                                                        "f1.zip"}
    eager = next(r for r in board.rows if r.team == "eager")
    admitted = ["e0", "e1", "e2", "f0", "f1"]
    best = max(score(tmp_path / "eager" / f"{n}.zip", ref, track="align").main_score for n in admitted)
    assert eager.main_score == best and eager.n_submissions == 5 and eager.main_score < 0.99  # the perfect file is out
    for fmt in FORMATS:
        if fmt != "table":
            text = render(db, "align", fmt)
            assert "e3.zip" not in text and "e4.zip" not in text and "refused" not in text.lower()
    assert (summary.scored, summary.total, summary.already_scored) == (8, 11, 0)


def test_public_outputs_are_unchanged_when_no_limit_bites(tmp_path) -> None:
    manifest, ref, _ = _challenge(tmp_path, EAGER)
    rank(None, "align", ref, tmp_path / "a.db", manifest=manifest)
    rank(None, "align", ref, tmp_path / "b.db", manifest=manifest, limits=SubmissionLimits(per_day=50, per_phase=99))
    for fmt in FORMATS:
        if fmt != "table":
            assert render(tmp_path / "a.db", "align", fmt) == render(tmp_path / "b.db", "align", fmt)


@pytest.mark.parametrize("count_invalid", [False, True])
def test_an_invalid_submission_frees_its_slot_in_the_same_run(tmp_path, count_invalid) -> None:
    plan = [("fixer", "a.zip", _day(1, 8), "invalid"), ("fixer", "b.zip", _day(1, 9), "noisy1"),
            ("fixer", "c.zip", _day(1, 10), "noisy2")]
    manifest, ref, _ = _challenge(tmp_path, plan)
    db = tmp_path / "lb.db"
    board, summary = rank(None, "align", ref, db, manifest=manifest,
                          limits=SubmissionLimits(per_day=2, count_invalid=count_invalid))
    if count_invalid:
        assert len(summary.refused) == 1 and "c.zip" in summary.refused[0] and _results(db) == {"a.zip", "b.zip"}
    else:  # a.zip counted until it was found invalid; then c.zip took its slot
        assert summary.refused == [] and _results(db) == {"a.zip", "b.zip", "c.zip"}
        assert summary.scored == 3 and summary.invalid == 1
    assert len(board.invalid) == 1 and board.rows[0].n_submissions == (2 if count_invalid else 3)


def test_limits_are_kept_in_the_store_and_dropped_only_on_request(tmp_path, monkeypatch) -> None:
    manifest, ref, _ = _challenge(tmp_path, EAGER)
    db = tmp_path / "lb.db"
    monkeypatch.setattr(cli_common.err, "_width", 1000)
    base = ["rank", "--manifest", str(manifest), "--track", "align", "--ref", str(ref), "--db", str(db)]
    res = CliRunner().invoke(main, [*base, "--max-per-day", "3"])
    assert res.exit_code == 0, res.output
    assert res.stderr.count("refused:") == 3 and "eager: e3.zip (2025-03-01T11:00:00.000000Z): over the limit" \
        in res.stderr
    res = CliRunner().invoke(main, base)  # no limit option: the stored limits still apply
    assert res.exit_code == 0 and res.stderr.count("refused:") == 3 and "e3.zip" not in _results(db)
    res = CliRunner().invoke(main, [*base, "--max-per-phase", "4"])  # adds a limit, keeps the daily one
    assert res.exit_code == 0 and res.stderr.count("refused:") == 4  # eager's f1.zip is its fifth in the phase
    res = CliRunner().invoke(main, [*base, "--no-limits", "--max-per-day", "2"])
    assert res.exit_code == 2 and "--no-limits" in res.output
    res = CliRunner().invoke(main, [*base, "--no-limits"])
    assert res.exit_code == 0 and "refused" not in res.stderr and {"e3.zip", "e4.zip"} <= _results(db)
    assert render(db, "align", "table").rows[0].main_score > 0.99  # the perfect file, now admitted
    res = CliRunner().invoke(main, [*base, "--phase-start", "not-a-time"])
    assert res.exit_code == 2 and "NAME=TIME" in res.output


def test_phases_from_file_times(tmp_path) -> None:
    _, ref = random_align(40, seed=22)
    (tmp_path / "eval.json").write_text(json.dumps(ref))
    (tmp_path / "subs" / "t").mkdir(parents=True)
    times = {"a.zip": "2025-02-01", "b.zip": "2025-02-02", "c.zip": "2025-03-11", "d.zip": "2025-03-12"}
    for k, (name, day) in enumerate(times.items()):
        z = align_zip(tmp_path / "subs" / "t" / name, _noisy(ref, 0.8, k))
        stamp = int(np.datetime64(f"{day}T12:00:00", "s").astype(np.int64))
        os.utime(z, (stamp, stamp))
    limits = SubmissionLimits().updated({"per_phase": 1, "phase_starts": ["dev=2025-01-01", "test=2025-03-10T00:00Z"]})
    _, summary = rank(tmp_path / "subs", "align", tmp_path / "eval.json", tmp_path / "lb.db", limits=limits)
    assert sorted(line.split(": ")[1].split(" ")[0] for line in summary.refused) == ["b.zip", "d.zip"]
    assert "of phase 'test'" in next(line for line in summary.refused if "d.zip" in line)
