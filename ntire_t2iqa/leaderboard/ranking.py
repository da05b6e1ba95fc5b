"""From stored results to a leaderboard: one row per team, ordered, with bootstrap confidence."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .. import metrics
from .collect import BASELINE_PREFIX
from .store import Scope, Store

#: Component columns per track, in the report's order.
COMPONENTS = {"align": ("srcc", "plcc", "acc"), "structure": ("f1", "srcc", "plcc")}


@dataclass
class Row:
    """One leaderboard row: a team's chosen submission."""

    rank: int | None
    team: str
    leader: str
    main_score: float
    components: dict[str, float]
    sha256: str
    path: str
    submitted_at: str
    n_submissions: int
    ci: tuple[float, float] | None = None
    flip_next: float | None = None

    @property
    def is_baseline(self) -> bool:
        return self.team.startswith(BASELINE_PREFIX)

    @property
    def display_team(self) -> str:
        return self.team[len(BASELINE_PREFIX):] if self.is_baseline else self.team


@dataclass
class Leaderboard:
    """Ranked rows, unranked baselines, and invalid submissions with their reasons."""

    track: str
    rows: list[Row]
    baselines: list[Row]
    invalid: list[dict[str, Any]]
    pending: int = 0
    resamples: int = 0
    notes: list[str] = field(default_factory=list)


def build(store: Store, scope: Scope, pick: str = "best", phase: str | None = None) -> Leaderboard:
    """Pick each team's best (or last) valid submission and order by main score.

    Order: main score descending at full precision; ties go to the earlier submission.
    Teams named ``baseline:...`` are listed apart, unranked. Submissions refused by a
    submission limit are left out altogether.
    """
    if pick not in ("best", "last"):
        raise ValueError("pick must be 'best' or 'last'")
    records = [r for r in store.rows(scope, phase) if not r["refused"]]
    by_team: dict[str, list[dict[str, Any]]] = {}
    invalid, pending = [], 0
    for rec in records:
        if rec["status"] == "ok":
            by_team.setdefault(rec["team"], []).append(rec)
        elif rec["status"] == "invalid":
            invalid.append(rec)
        else:
            pending += 1
    counts: dict[str, int] = {}
    for rec in records:
        counts[rec["team"]] = counts.get(rec["team"], 0) + 1
    chosen = []
    for recs in by_team.values():
        if pick == "best":
            rec = min(recs, key=lambda r: (-r["main_score"], r["submitted_at"], r["id"]))
        else:
            rec = max(recs, key=lambda r: (r["submitted_at"], r["id"]))
        chosen.append(rec)
    chosen.sort(key=lambda r: (-r["main_score"], r["submitted_at"], r["id"]))
    rows, baselines = [], []
    for rec in chosen:
        row = Row(None, rec["team"], rec["leader"], rec["main_score"],
                  {k: rec["metrics"][k] for k in COMPONENTS[scope.track]}, rec["sha256"], rec["path"],
                  rec["submitted_at"], counts[rec["team"]])
        (baselines if row.is_baseline else rows).append(row)
    for i, row in enumerate(rows, start=1):
        row.rank = i
    conf = store.confidence(scope, board_key(rows + baselines))  # empty unless computed for this very board
    for row in rows + baselines:
        stored = conf.get(row.team)
        if stored is not None and stored[0] == row.sha256:
            row.ci, row.flip_next = (stored[1], stored[2]), stored[3]
    resamples = max((c[4] for c in conf.values()), default=0)
    return Leaderboard(scope.track, rows, baselines, invalid, pending, resamples)


def board_key(rows: list[Row]) -> str:
    """sha256 of the ordered (team, submission sha256) list of a whole board.

    Bootstrap intervals and flip odds are stored with the key of the board they were
    computed for and shown only next to that same board: a team added, dropped or moved,
    or a submission changed, makes them stale.
    """
    return hashlib.sha256(json.dumps([[r.team, r.sha256] for r in rows]).encode()).hexdigest()


# --------------------------------------------------------------------------- bootstrap


def _align_stat(d: dict[str, np.ndarray], idx: np.ndarray, fit: str) -> float:
    gt, pred = d["gt_total"][idx], d["pred_total"][idx]
    srcc, _ = metrics.srcc_with_notes(gt, pred)
    plcc, _, _ = metrics.plcc_with_notes(gt, pred, metrics.resolve_fit("align", fit))
    n_el = d["elements_per_image"][idx].sum()
    acc = d["correct_per_image"][idx].sum() / n_el if n_el else 0.0
    return metrics.align_main(srcc, plcc, acc)


def _structure_stat(d: dict[str, np.ndarray], idx: np.ndarray, fit: str) -> float:
    (f1, _, _), _ = metrics.region_scores_with_notes(int(d["n_pred"][idx].sum()), int(d["n_pred_hit"][idx].sum()),
                                                     int(d["n_gt"][idx].sum()), int(d["n_gt_missed"][idx].sum()))
    gt, pred = d["gt_score"][idx], d["pred_score"][idx]
    srcc, _ = metrics.srcc_with_notes(gt, pred)
    plcc, _, _ = metrics.plcc_with_notes(gt, pred, metrics.resolve_fit("structure", fit))
    return metrics.structure_main(f1, srcc, plcc)


STATISTICS: dict[str, Callable[[dict[str, np.ndarray], np.ndarray, str], float]] = {
    "align": _align_stat, "structure": _structure_stat}


def bootstrap(store: Store, scope: Scope, board: Leaderboard, resamples: int, seed: int = 0,
              progress: Callable[[int, int], None] | None = None) -> np.ndarray:
    """Paired bootstrap over images: the same resamples for every ranked team.

    Stores each team's 95% percentile interval and, for each pair of adjacent ranks, the
    share of resamples in which their order flips. Returns the (resamples, teams) matrix.
    """
    teams = board.rows + board.baselines
    if not teams or resamples <= 0:
        return np.zeros((0, 0))
    details = [store.details(scope, r.sha256) for r in teams]
    n = len(next(iter(details[0].values())))
    rng = np.random.default_rng(seed)
    draws = np.empty((resamples, len(teams)))
    stat = STATISTICS[scope.track]
    for b in range(resamples):
        idx = rng.integers(0, n, n)
        for t, d in enumerate(details):
            draws[b, t] = stat(d, idx, scope.plcc_fit)
        if progress:
            progress(b + 1, resamples)
    out = []
    ranked = len(board.rows)
    for t, row in enumerate(teams):
        lo, hi = np.percentile(draws[:, t], [2.5, 97.5])
        flip = float(np.mean(draws[:, t] < draws[:, t + 1])) if t + 1 < ranked else None
        out.append((row.team, row.sha256, float(lo), float(hi), flip))
        row.ci, row.flip_next = (float(lo), float(hi)), flip
    store.set_confidence(scope, board_key(teams), out, resamples)
    board.resamples = resamples
    return draws
