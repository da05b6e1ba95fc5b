"""leaderboard.ranking on a store filled directly: picking, ordering, counts, baselines, phases and the
paired bootstrap, each against an independent computation (sorted by hand, scipy, numpy percentiles).
"""

from __future__ import annotations

import hashlib
import json
import warnings
from pathlib import Path

import numpy as np
import pytest
from scipy import stats
from scipy.optimize import curve_fit

from ntire_t2iqa.leaderboard import ranking
from ntire_t2iqa.leaderboard.store import Entry, Scope, Store, pack_details

ALIGN = Scope("align", "r" * 64, "none")
STRUCTURE = Scope("structure", "s" * 64, "none")


def _sha(name: str) -> str:
    return hashlib.sha256(name.encode()).hexdigest()


def _fill(store: Store, scope: Scope, subs: list[tuple], details: dict[str, dict] | None = None) -> None:
    """subs: (team, file, submitted_at, status, main, phase); one result per distinct file."""
    entries, done = [], set()
    for team, name, at, _status, _main, phase in subs:
        entries.append(Entry(scope.track, team, f"{team}/{name}", _sha(name), 1, 1, at, leader=f"L-{team}",
                             phase=phase))
    store.add_entries(entries)
    for _team, name, _at, status, main, _phase in subs:
        if status is None or name in done:
            continue
        done.add(name)
        comps = {k: round(main + 0.01 * i, 6) for i, k in enumerate(ranking.COMPONENTS[scope.track])} if main else {}
        store.add_result(scope, _sha(name), status, main if status == "ok" else None,
                         {**comps, "main_score": main} if status == "ok" else None,
                         [{"what": "bad"}] if status == "invalid" else None,
                         pack_details((details or {}).get(name, {})) if status == "ok" else None)


def test_build_picks_orders_counts_and_sets_baselines_apart(tmp_path: Path) -> None:
    with Store(tmp_path / "lb.db") as store:
        _fill(store, ALIGN, [
            ("ann", "a1", "2025-01-01T00:00:01Z", "ok", 0.50, "dev"),
            ("ann", "a2", "2025-01-02T00:00:00Z", "ok", 0.70, "test"),
            ("ann", "a3", "2025-01-03T00:00:00Z", "ok", 0.60, "test"),   # last, not best
            ("bob", "b1", "2025-01-01T00:00:00Z", "ok", 0.70, "test"),   # ties ann's best, earlier: ahead
            ("bob", "b2", "2025-01-04T00:00:00Z", "invalid", None, "test"),
            ("cy", "c1", "2025-01-05T00:00:00Z", None, None, "test"),     # not scored yet
            ("cy", "c3", "2025-01-06T00:00:00Z", None, None, "test"),     # nor this one
            ("cy", "c2", "2025-01-02T00:00:00Z", "ok", 0.65, "dev"),
            ("baseline:Zero", "z1", "2025-01-01T00:00:00Z", "ok", 0.99, "test"),
        ])
        best = ranking.build(store, ALIGN)
        assert [(r.rank, r.team, r.main_score) for r in best.rows] == [
            (1, "bob", 0.70), (2, "ann", 0.70), (3, "cy", 0.65)]
        assert [(r.rank, r.team, r.display_team, r.is_baseline) for r in best.baselines] == [
            (None, "baseline:Zero", "Zero", True)]
        assert [r.is_baseline for r in best.rows] == [False] * 3 and best.rows[0].display_team == "bob"
        assert [r.n_submissions for r in best.rows] == [2, 3, 3]  # every admitted file, any status
        ann = best.rows[1]
        assert (ann.leader, ann.path, ann.sha256, ann.submitted_at) == ("L-ann", "ann/a2", _sha("a2"),
                                                                        "2025-01-02T00:00:00Z")
        assert ann.components == {"srcc": 0.7, "plcc": 0.71, "acc": 0.72} and ann.ci is None
        assert [r["path"] for r in best.invalid] == ["bob/b2"] and best.pending == 2
        assert (best.track, best.resamples, best.notes) == ("align", 0, [])
        last = ranking.build(store, ALIGN, pick="last")
        assert [(r.team, r.main_score, r.path) for r in last.rows] == [  # the latest valid file of each team
            ("bob", 0.70, "bob/b1"), ("cy", 0.65, "cy/c2"), ("ann", 0.60, "ann/a3")]
        dev = ranking.build(store, ALIGN, phase="dev")
        assert [(r.rank, r.team, r.main_score, r.n_submissions) for r in dev.rows] == [
            (1, "cy", 0.65, 1), (2, "ann", 0.50, 1)]
        assert dev.invalid == [] and dev.pending == 0 and dev.baselines == []
        with pytest.raises(ValueError, match=r"^pick must be 'best' or 'last'$"):
            ranking.build(store, ALIGN, pick="first")


def test_ties_at_the_same_time_go_to_the_file_listed_first(tmp_path: Path) -> None:
    with Store(tmp_path / "lb.db") as store:
        _fill(store, STRUCTURE, [
            ("zed", "z1", "2025-01-01T00:00:00Z", "ok", 0.4, ""),
            ("amy", "a1", "2025-01-01T00:00:00Z", "ok", 0.4, ""),
            ("amy", "a2", "2025-01-01T00:00:00Z", "ok", 0.4, ""),
        ])
        board = ranking.build(store, STRUCTURE)
        assert [(r.team, r.path) for r in board.rows] == [("zed", "zed/z1"), ("amy", "amy/a1")]
        assert board.rows[0].components == {"f1": 0.4, "srcc": 0.41, "plcc": 0.42}
        assert [(r.team, r.path) for r in ranking.build(store, STRUCTURE, pick="last").rows] == [
            ("zed", "zed/z1"), ("amy", "amy/a2")]


def test_refused_submissions_are_left_out_altogether(tmp_path: Path) -> None:
    with Store(tmp_path / "lb.db") as store:
        _fill(store, ALIGN, [("ann", "a1", "2025-01-01T00:00:00Z", "ok", 0.5, ""),
                             ("ann", "a2", "2025-01-02T00:00:00Z", "ok", 0.9, ""),
                             ("ann", "a3", "2025-01-03T00:00:00Z", "invalid", None, "")])
        ids = {r["path"]: r["id"] for r in store.rows(ALIGN)}
        store.set_refused("align", {ids["ann/a2"]: "over the daily limit", ids["ann/a3"]: "over the daily limit"})
        board = ranking.build(store, ALIGN)
        assert [(r.team, r.main_score, r.n_submissions) for r in board.rows] == [("ann", 0.5, 1)]
        assert board.invalid == []


def test_board_key_is_the_sha256_of_the_ordered_team_and_file_list() -> None:
    rows = [ranking.Row(1, "a", "", 0.5, {}, "s1", "", "", 1), ranking.Row(2, "b", "", 0.4, {}, "s2", "", "", 1)]
    assert ranking.board_key(rows) == hashlib.sha256(b'[["a", "s1"], ["b", "s2"]]').hexdigest()
    assert ranking.board_key(rows[::-1]) != ranking.board_key(rows)


def _align_details(rng: np.random.Generator, gt: np.ndarray, noise: float) -> dict[str, np.ndarray]:
    n = gt.size
    elements = rng.integers(0, 4, n)  # some images have no elements
    return {"gt_total": gt, "pred_total": gt + rng.normal(0, noise, n),
            "elements_per_image": elements, "correct_per_image": rng.binomial(elements, 0.8)}


def _align_main(d: dict[str, np.ndarray], idx: np.ndarray, fit: str) -> float:
    gt, pred = d["gt_total"][idx], d["pred_total"][idx]
    srcc = stats.spearmanr(gt, pred)[0]
    if fit == "none":
        plcc = stats.pearsonr(gt, pred)[0]
    else:  # the official Track 1 fit: reference -> prediction, the 4-parameter logistic
        def f(x, b1, b2, b3, b4):
            return b2 + (b1 - b2) / (1 + np.exp(-(x - b3) / np.abs(b4)))
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")  # overflow in trial steps, covariance not estimated: not returned
            popt, _ = curve_fit(f, gt, pred, p0=[pred.max(), pred.min(), gt.mean(), gt.std()], maxfev=100_000_000)
            plcc = stats.pearsonr(pred, f(gt, *popt))[0]
    acc = d["correct_per_image"][idx].sum() / d["elements_per_image"][idx].sum()
    return 0.25 * srcc + 0.25 * plcc + 0.5 * acc


@pytest.mark.parametrize("fit", ["none", "official"])
def test_align_bootstrap_is_the_percentile_of_paired_resamples(tmp_path: Path, fit: str) -> None:
    rng = np.random.default_rng(7)
    gt = rng.uniform(1, 5, 25)
    details = {name: _align_details(rng, gt, noise) for name, noise in (("a", 0.5), ("b", 0.6), ("z", 3.0))}
    scope = Scope("align", "r" * 64, fit)
    with Store(tmp_path / "lb.db") as store:
        _fill(store, scope, [("ann", "a", "2025-01-01T00:00:00Z", "ok", 0.8, ""),
                             ("bob", "b", "2025-01-01T00:00:00Z", "ok", 0.7, ""),
                             ("baseline:Z", "z", "2025-01-01T00:00:00Z", "ok", 0.1, "")], details)
        board = ranking.build(store, scope)
        resamples, seed, seen = 12, 4, []
        draws = ranking.bootstrap(store, scope, board, resamples, seed=seed, progress=lambda i, n: seen.append((i, n)))
        assert seen == [(i, resamples) for i in range(1, resamples + 1)]
        picks = np.random.default_rng(seed)
        expected = np.empty((resamples, 3))
        for b in range(resamples):
            idx = picks.integers(0, 25, 25)
            expected[b] = [_align_main(details[k], idx, fit) for k in ("a", "b", "z")]
        assert draws.shape == (resamples, 3)
        assert np.allclose(draws, expected, rtol=0, atol=1e-9)
        rows = board.rows + board.baselines
        for t, row in enumerate(rows):
            lo, hi = np.percentile(expected[:, t], [2.5, 97.5])
            assert row.ci == pytest.approx((lo, hi), abs=1e-9)
        assert board.rows[0].flip_next == float(np.mean(draws[:, 0] < draws[:, 1]))
        assert board.rows[1].flip_next is None and board.baselines[0].flip_next is None  # no ranked row below
        assert board.resamples == resamples
        again = ranking.build(store, scope)  # stored for this very board: shown again
        assert [(r.ci, r.flip_next) for r in again.rows + again.baselines] == [(r.ci, r.flip_next) for r in rows]
        assert again.resamples == resamples


def test_structure_bootstrap_pools_region_counts_per_resample(tmp_path: Path) -> None:
    rng = np.random.default_rng(8)
    n = 20
    gt = rng.uniform(0, 1, n)

    def det(noise: float) -> dict[str, np.ndarray]:
        n_gt = rng.integers(0, 4, n)
        n_pred = rng.integers(0, 4, n)
        return {"gt_score": gt, "pred_score": gt + rng.normal(0, noise, n), "n_gt": n_gt,
                "n_gt_missed": rng.binomial(n_gt, 0.3), "n_pred": n_pred, "n_pred_hit": rng.binomial(n_pred, 0.6)}

    details = {"a": det(0.2), "b": det(0.4)}
    with Store(tmp_path / "lb.db") as store:
        _fill(store, STRUCTURE, [("ann", "a", "2025-01-01T00:00:00Z", "ok", 0.8, ""),
                                 ("bob", "b", "2025-01-01T00:00:00Z", "ok", 0.7, "")], details)
        board = ranking.build(store, STRUCTURE)
        draws = ranking.bootstrap(store, STRUCTURE, board, 10, seed=2)
    picks = np.random.default_rng(2)
    for b in range(10):
        idx = picks.integers(0, n, n)
        for t, k in enumerate(("a", "b")):
            d = {key: v[idx] for key, v in details[k].items()}
            p = d["n_pred_hit"].sum() / d["n_pred"].sum()
            r = 1 - d["n_gt_missed"].sum() / d["n_gt"].sum()
            f1 = 2 * p * r / (p + r + 1e-10)
            main = 0.7 * f1 + 0.15 * (stats.spearmanr(d["gt_score"], d["pred_score"])[0]
                                      + stats.pearsonr(d["gt_score"], d["pred_score"])[0])
            assert draws[b, t] == pytest.approx(main, abs=1e-9)


def test_no_bootstrap_without_teams_or_resamples(tmp_path: Path) -> None:
    with Store(tmp_path / "lb.db") as store:
        empty = ranking.build(store, ALIGN)
        assert ranking.bootstrap(store, ALIGN, empty, 10).shape == (0, 0)
        _fill(store, ALIGN, [("ann", "a", "2025-01-01T00:00:00Z", "ok", 0.8, "")],
              {"a": _align_details(np.random.default_rng(1), np.arange(6.0), 0.5)})
        board = ranking.build(store, ALIGN)
        assert ranking.bootstrap(store, ALIGN, board, 0).shape == (0, 0)
        assert board.rows[0].ci is None and board.resamples == 0
        assert json.loads(json.dumps(ranking.COMPONENTS)) == {"align": ["srcc", "plcc", "acc"],
                                                              "structure": ["f1", "srcc", "plcc"]}


def test_one_resample_with_the_default_seed_and_no_elements(tmp_path: Path) -> None:
    # no image has an element: ACC counts as 0 in every resample, as for the full set (docs/scoring.md)
    rng = np.random.default_rng(5)
    gt = rng.uniform(1, 5, 15)
    details = {k: {"gt_total": gt, "pred_total": gt + rng.normal(0, s, 15), "elements_per_image": np.zeros(15, int),
                   "correct_per_image": np.zeros(15, int)} for k, s in (("a", 0.3), ("b", 0.9))}
    with Store(tmp_path / "lb.db") as store:
        _fill(store, ALIGN, [("ann", "a", "2025-01-01T00:00:00Z", "ok", 0.5, ""),
                             ("bob", "b", "2025-01-01T00:00:00Z", "ok", 0.4, "")], details)
        board = ranking.build(store, ALIGN)
        draws = ranking.bootstrap(store, ALIGN, board, 1)  # seed 0 unless told
    idx = np.random.default_rng(0).integers(0, 15, 15)
    want = [0.25 * stats.spearmanr(gt[idx], details[k]["pred_total"][idx])[0]
            + 0.25 * stats.pearsonr(gt[idx], details[k]["pred_total"][idx])[0] for k in ("a", "b")]
    assert draws.shape == (1, 2) and draws[0] == pytest.approx(want, abs=1e-12)
    assert board.rows[0].ci == (draws[0, 0], draws[0, 0])
    assert board.rows[0].flip_next == float(draws[0, 0] < draws[0, 1])
