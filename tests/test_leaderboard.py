"""Ranking: store, picking, ordering, re-runs, crash safety, bootstrap and exports."""

from __future__ import annotations

import csv
import io
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time

import pytest
from helpers import align_zip, noisy_align, random_align

from ntire_t2iqa import score
from ntire_t2iqa.leaderboard import rank, render


@pytest.fixture()
def challenge(tmp_path):
    """Four teams with several zips each, one invalid zip; returns (folder, ref)."""
    sub, ref = random_align(60, seed=11)
    (tmp_path / "eval.json").write_text(json.dumps(ref))
    root = tmp_path / "subs"
    plan = {"alpha": [0.2, 1.5], "beta": [0.8, 0.4, 2.0], "gamma": [3.0], "delta": [1.0]}
    t0 = 1_700_000_000
    for t, (team, noises) in enumerate(plan.items()):
        (root / team).mkdir(parents=True)
        for k, noise in enumerate(noises):
            z = align_zip(root / team / f"s{k}.zip", noisy_align(sub, noise, seed=10 * t + k))
            os.utime(z, (t0 + 100 * k + t, t0 + 100 * k + t))
    bad = align_zip(root / "delta" / "broken.zip", sub[:-1])
    os.utime(bad, (t0 + 999, t0 + 999))
    return root, tmp_path / "eval.json"


def test_rank_picks_best_orders_and_lists_invalid(challenge, tmp_path) -> None:
    root, ref = challenge
    board, summary = rank(root, "align", ref, tmp_path / "lb.db")
    assert (summary.total, summary.scored, summary.invalid) == (8, 8, 1)
    best = {}
    for team_dir in root.iterdir():
        for z in team_dir.glob("s*.zip"):
            best[team_dir.name] = max(best.get(team_dir.name, -9), score(z, ref, track="align").main_score)
    expected = sorted(best, key=lambda t: -best[t])
    assert [r.team for r in board.rows] == expected
    assert [r.main_score for r in board.rows] == [best[t] for t in expected]
    assert [r.rank for r in board.rows] == [1, 2, 3, 4]
    assert len(board.invalid) == 1 and board.invalid[0]["team"] == "delta"
    assert "misses 1 image(s)" in board.invalid[0]["reason"][0]["what"]


def test_pick_last_takes_the_latest_valid(challenge, tmp_path) -> None:
    root, ref = challenge
    board, _ = rank(root, "align", ref, tmp_path / "lb.db", pick="last")
    beta = next(r for r in board.rows if r.team == "beta")
    assert beta.path.endswith("s2.zip")
    delta = next(r for r in board.rows if r.team == "delta")
    assert delta.path.endswith("s0.zip")  # its later zip is invalid


def test_rerun_scores_only_new_files(challenge, tmp_path) -> None:
    root, ref = challenge
    rank(root, "align", ref, tmp_path / "lb.db")
    _, again = rank(root, "align", ref, tmp_path / "lb.db")
    assert (again.scored, again.already_scored) == (0, 8)
    _, ref_records = random_align(60, seed=11)
    align_zip(root / "gamma" / "s9.zip", ref_records)  # a perfect submission
    board, third = rank(root, "align", ref, tmp_path / "lb.db")
    assert third.scored == 1 and board.rows[0].team == "gamma"


def test_ties_go_to_the_earlier_submission(tmp_path) -> None:
    sub, ref = random_align(30, seed=12)
    (tmp_path / "eval.json").write_text(json.dumps(ref))
    manifest = tmp_path / "m.csv"
    for name in ("late", "early"):
        (tmp_path / name).mkdir()
        align_zip(tmp_path / name / "a.zip", noisy_align(sub, 0.5, seed=1))  # identical content
    manifest.write_text("path,team,leader,submitted_at,phase\n"
                        "late/a.zip,late,L,2025-03-21T10:00:00Z,test\n"
                        "early/a.zip,early,E,2025-03-20T10:00:00Z,test\n"
                        "late/a.zip,baseline:FGA-BLIP2,Org,2025-01-01T00:00:00Z,test\n")
    board, summary = rank(None, "align", tmp_path / "eval.json", tmp_path / "lb.db", manifest=manifest,
                          resamples=20)
    assert summary.scored == 1  # one distinct file, scored once
    assert [r.team for r in board.rows] == ["early", "late"]
    assert [r.display_team for r in board.baselines] == ["FGA-BLIP2"] and board.baselines[0].rank is None
    assert board.rows[0].flip_next == 0.0  # identical predictions never flip under paired resampling


def test_bootstrap_is_paired_and_deterministic(challenge, tmp_path) -> None:
    root, ref = challenge
    a, _ = rank(root, "align", ref, tmp_path / "a.db", resamples=40, seed=3)
    b, _ = rank(root, "align", ref, tmp_path / "b.db", resamples=40, seed=3)
    assert [(r.ci, r.flip_next) for r in a.rows] == [(r.ci, r.flip_next) for r in b.rows]
    for row in a.rows:
        lo, hi = row.ci
        assert lo < hi and lo - 0.1 < row.main_score < hi + 0.1
    assert all(0 <= r.flip_next <= 1 for r in a.rows[:-1]) and a.rows[-1].flip_next is None


def test_exports(challenge, tmp_path) -> None:
    root, ref = challenge
    db = tmp_path / "lb.db"
    board, _ = rank(root, "align", ref, db)
    rows = list(csv.DictReader(io.StringIO(render(db, "align", "csv"))))
    assert [r["team"] for r in rows] == [r.team for r in board.rows]
    assert float(rows[0]["main_score"]) == board.rows[0].main_score  # full precision
    latex = render(db, "align", "latex")
    assert r"Rank & Team & Leader & Main Score & SRCC & PLCC & ACC \\" in latex
    assert f"1 & {board.rows[0].team} &  & {board.rows[0].main_score:.4f}" in latex
    md = render(db, "align", "md")
    assert md.count("\n| ") == 1 + len(board.rows) and "Invalid submissions (1)" in md
    payload = json.loads(render(db, "align", "json"))
    assert payload["rows"][0]["main_score"] == board.rows[0].main_score and len(payload["invalid"]) == 1
    page = render(db, "align", "html")
    assert page.count('<tr class="ranked">') == 4 and 'data-plot="scatter"' not in page and "gamma" in page
    page = render(db, "align", "html", team="gamma", private=True)  # organizer-only: the scatter
    assert 'data-plot="scatter"' in page and "Predicted vs reference score: gamma" in page


def _results_count(db) -> int:
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1) as con:
            return con.execute("SELECT count(*) FROM results").fetchone()[0]
    except sqlite3.Error:
        return -1


@pytest.mark.parametrize("kill_after", [-1, 3, 12])
def test_killed_run_resumes_to_the_same_leaderboard(tmp_path, kill_after) -> None:
    """kill -9 a real `rank` process (with its workers) when the store holds ``kill_after`` results
    (-1: as soon as the store file appears), run again, and compare with an uninterrupted run."""
    sub, ref = random_align(400, seed=13)
    (tmp_path / "eval.json").write_text(json.dumps(ref))
    root = tmp_path / "subs"
    for t in range(6):
        (root / f"team{t}").mkdir(parents=True)
        for k in range(5):
            align_zip(root / f"team{t}" / f"s{k}.zip", noisy_align(sub, 0.3 + 0.2 * t + 0.1 * k, seed=100 * t + k))
    clean_db, killed_db = tmp_path / "clean.db", tmp_path / "killed.db"
    rank(root, "align", tmp_path / "eval.json", clean_db)
    cmd = [sys.executable, "-m", "ntire_t2iqa", "rank", str(root), "--track", "align",
           "--ref", str(tmp_path / "eval.json"), "--db", str(killed_db), "--workers", "2"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        if killed_db.exists() and (kill_after < 0 or _results_count(killed_db) >= kill_after):
            break
        time.sleep(0.005)
    assert proc.poll() is None, "the run finished before it could be killed"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert _results_count(killed_db) < 30
    subprocess.run(cmd, check=True, capture_output=True)
    with sqlite3.connect(killed_db) as con:
        assert con.execute("SELECT count(*) FROM results").fetchone()[0] == 30
        assert con.execute("SELECT count(DISTINCT sha256) FROM results").fetchone()[0] == 30
        assert con.execute("SELECT count(*) FROM submissions").fetchone()[0] == 30
    assert render(killed_db, "align", "json") == render(clean_db, "align", "json")
