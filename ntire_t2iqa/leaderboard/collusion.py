"""Collusion: near-identical predictions submitted by different teams.

Two submissions of different teams *match* when their per-image total scores correlate at
``min_correlation`` or more (Pearson, or Spearman so that a monotone rescaling does not hide
a copy) and their other predictions agree at ``min_agreement`` or more: Track 1, the share of
element decisions (0.5 threshold) that are equal; Track 2, the overlap (intersection over
union) of the set cells of the 32 x 32 mask grids, pooled over images (1 when neither marks
anything). Files with identical predictions always match.

A ``baseline:`` entry is never matched with another ``baseline:`` entry; a team matching one
is listed apart as having submitted that baseline (unchanged, or nearly), and two teams whose
matching files both match a baseline are not listed as copying each other.

Cost: one float32 matrix product of the standardised totals (all pairs at once), one of
ranks on a fixed sample of 1,024 images to screen for Spearman, then exact figures for the
few pairs that pass a loose screen.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .collect import BASELINE_PREFIX
from .integrity_data import Dataset, Sub

#: Pairs below these loose screens are never looked at closely.
SCREEN_PEARSON = 0.9
SCREEN_SPEARMAN = 0.95
SAMPLE = 1024


@dataclass
class Match:
    """Evidence for one pair of submissions of two teams."""

    a: Sub
    b: Sub
    pearson: float
    spearman: float
    agreement: float | None
    identical_images: int
    identical: bool

    def to_dict(self, agreement_of: str) -> dict[str, Any]:
        """JSON form."""
        return {"a": self.a.to_dict(), "b": self.b.to_dict(), "pearson": round(self.pearson, 6),
                "spearman": round(self.spearman, 6), agreement_of: None if self.agreement is None else
                round(self.agreement, 6), "identical_images": self.identical_images, "identical": self.identical}


@dataclass
class TeamPair:
    """Two teams with matching submissions (``baseline``: ``b`` is a ``baseline:`` entry)."""

    team_a: str
    team_b: str
    matches: list[Match] = field(default_factory=list)
    baseline: bool = False

    @property
    def first(self) -> str:
        """The team whose matching submission came first."""
        m = min(self.matches, key=lambda m: min(m.a.submitted_at, m.b.submitted_at))
        return m.a.team if m.a.submitted_at <= m.b.submitted_at else m.b.team

    def to_dict(self, agreement_of: str) -> dict[str, Any]:
        """JSON form: the teams, who was first, and every matching pair."""
        return {"team_a": self.team_a, "team_b": self.team_b, "baseline": self.baseline, "first": self.first,
                "matching_pairs": len(self.matches), "identical_pairs": sum(m.identical for m in self.matches),
                "matches": [m.to_dict(agreement_of) for m in self.matches]}


def agreement_name(track: str) -> str:
    """What the agreement figure measures, as a JSON key."""
    return "decision_agreement" if track == "align" else "mask_agreement"


def _standardised(x: np.ndarray) -> np.ndarray:
    x = x - x.mean(axis=1, keepdims=True)
    norm = np.linalg.norm(x, axis=1, keepdims=True)
    return np.divide(x, norm, out=np.zeros_like(x), where=norm > 0)


def _ranks(x: np.ndarray) -> np.ndarray:
    """Ranks along each row (ties broken by position: the screen only needs an estimate)."""
    order = np.argsort(x, axis=1, kind="stable")
    ranks = np.empty_like(order, dtype=np.float32)
    np.put_along_axis(ranks, order, np.arange(x.shape[1], dtype=np.float32)[None, :].repeat(len(x), 0), axis=1)
    return ranks


def _average_ranks(x: np.ndarray) -> np.ndarray:
    """Ranks with ties averaged (as Spearman's correlation uses them)."""
    from scipy.stats import rankdata

    return rankdata(x).astype(np.float64)


def _candidates(data: Dataset) -> set[tuple[int, int]]:
    """Row pairs (a < b) that pass the loose Pearson or sample-Spearman screen."""
    totals = data.totals
    z = _standardised(totals.astype(np.float32))  # a screen: single precision is plenty
    close = np.argwhere(np.triu(z @ z.T, 1) >= SCREEN_PEARSON)
    found = {(int(a), int(b)) for a, b in close}
    n = totals.shape[1]
    cols = np.sort(np.random.default_rng(0).choice(n, SAMPLE, replace=False)) if n > SAMPLE else np.arange(n)
    r = _standardised(_ranks(totals[:, cols]))
    close = np.argwhere(np.triu(r @ r.T, 1) >= SCREEN_SPEARMAN)
    found.update((int(a), int(b)) for a, b in close)
    return found


def _content_digests(data: Dataset) -> list[bytes]:
    out = []
    for i in range(len(data.totals)):
        h = hashlib.blake2b(np.ascontiguousarray(data.totals[i]).tobytes(), digest_size=16)
        for extra in (data.decisions, data.mask_hash):
            if extra is not None:
                h.update(np.ascontiguousarray(extra[i]).tobytes())
        out.append(h.digest())
    return out


class _Measures:
    """Exact figures for a row pair, with per-row ranks and z-scores computed once."""

    def __init__(self, data: Dataset):
        self.data = data
        self._z: dict[int, np.ndarray] = {}
        self._r: dict[int, np.ndarray] = {}

    def _zs(self, i: int) -> np.ndarray:
        if i not in self._z:
            self._z[i] = _standardised(self.data.totals[i][None, :])[0]
        return self._z[i]

    def _rank(self, i: int) -> np.ndarray:
        if i not in self._r:
            self._r[i] = _standardised(_average_ranks(self.data.totals[i])[None, :])[0]
        return self._r[i]

    def correlations(self, a: int, b: int) -> tuple[float, float]:
        return float(self._zs(a) @ self._zs(b)), float(self._rank(a) @ self._rank(b))

    def agreement(self, a: int, b: int) -> float | None:
        d = self.data
        if d.decisions is not None:
            if not d.n_decisions:
                return 1.0
            flips = int(np.bitwise_count(d.decisions[a] ^ d.decisions[b]).sum())
            return 1.0 - flips / d.n_decisions
        if d.mask_grid is not None and d.has_masks is not None and d.has_masks[a] and d.has_masks[b]:
            both = int(np.bitwise_count(d.mask_grid[a] & d.mask_grid[b]).sum())
            either = int(np.bitwise_count(d.mask_grid[a] | d.mask_grid[b]).sum())
            return both / either if either else 1.0
        return None

    def identical_images(self, a: int, b: int) -> int:
        return self.data.n_images - int(self.data.changed_images(a, b).size)


def find_collusion(data: Dataset, min_correlation: float, min_agreement: float) -> list[TeamPair]:
    """Team pairs with matching submissions; baseline pairs last. See the module docstring."""
    if len(data.totals) == 0:
        return []
    subs_of: dict[int, list[Sub]] = {}
    for s in data.subs:
        subs_of.setdefault(s.row, []).append(s)
    digests = _content_digests(data)
    same_content: dict[bytes, list[int]] = {}
    for i, dg in enumerate(digests):
        same_content.setdefault(dg, []).append(i)
    pairs = _candidates(data)
    pairs.update((a, b) for rows in same_content.values() for k, a in enumerate(rows) for b in rows[k + 1:])
    measures = _Measures(data)
    found: dict[tuple[str, str], TeamPair] = {}

    def add(a: Sub, b: Sub, m: tuple[float, float, float | None, int, bool]) -> None:
        base_a, base_b = a.team.startswith(BASELINE_PREFIX), b.team.startswith(BASELINE_PREFIX)
        if a.team == b.team or (base_a and base_b):
            return
        if base_a or (not base_b and b.team < a.team):
            a, b = b, a
        pair = found.setdefault((a.team, b.team), TeamPair(a.team, b.team, baseline=b.team.startswith(
            BASELINE_PREFIX)))
        pair.matches.append(Match(a, b, *m))

    for subs in subs_of.values():  # one file under two teams
        for k, a in enumerate(subs):
            for b in subs[k + 1:]:
                add(a, b, (1.0, 1.0, 1.0, data.n_images, True))
    for a, b in sorted(pairs):
        teams_a = {s.team for s in subs_of.get(a, [])}
        teams_b = {s.team for s in subs_of.get(b, [])}
        if not teams_a or not teams_b or (len(teams_a | teams_b) < 2):
            continue
        identical = digests[a] == digests[b]
        pearson, spearman = (1.0, 1.0) if identical else measures.correlations(a, b)
        agreement = 1.0 if identical else measures.agreement(a, b)
        if not identical and (max(pearson, spearman) < min_correlation or
                              (agreement is not None and agreement < min_agreement)):
            continue
        evidence = (pearson, spearman, agreement, measures.identical_images(a, b), identical)
        for sa in subs_of[a]:
            for sb in subs_of[b]:
                add(sa, sb, evidence)
    like_baseline = {m.a.row for p in found.values() if p.baseline for m in p.matches}
    for key, pair in list(found.items()):  # two teams that both took the baseline did not copy each other
        if not pair.baseline:
            pair.matches = [m for m in pair.matches if not (m.a.row in like_baseline and m.b.row in like_baseline)]
            if not pair.matches:
                del found[key]
        pair.matches.sort(key=lambda m: (max(m.a.submitted_at, m.b.submitted_at), m.a.id, m.b.id))
    return sorted(found.values(), key=lambda p: (p.baseline, -len(p.matches), p.team_a, p.team_b))
