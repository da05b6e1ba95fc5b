"""Label probing: a team's submissions that differ from one another on only a few images.

Submitting a file, then copies with a few images changed, and reading each change off the
leaderboard's score tells a team about those images' hidden labels. Here, for every team,
two of its submissions form a *probe pair* when their predictions differ on at least one
and at most ``limit`` images (a total score, a Track 1 element decision on the 0.5
threshold, or a Track 2 submitted mask); a *chain* is a connected group of
such pairs. In a chain, each submission after the first is a *probe* of the earlier
member it differs least from (its parent); a submission with no earlier partner starts
the chain afresh.

Bits of label information, a rough count to compare teams (not a bound): a probe that
changed ``k`` images shows the team one score difference; read as "how many of the ``k``
changes helped", that is ``log2(k + 1)`` bits (1 bit for a single-image probe). A team's
estimate is the sum over its probes.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .collect import BASELINE_PREFIX
from .integrity_data import Dataset, Sub


@dataclass
class Probe:
    """One submission of a chain; ``parent`` and ``changed`` (image indices) are unset for a chain's start."""

    sub: Sub
    parent: Sub | None = None
    changed: list[int] = field(default_factory=list)

    @property
    def bits(self) -> float:
        """log2(k + 1) for a probe that changed k images; 0 for a chain's start."""
        return math.log2(len(self.changed) + 1) if self.parent is not None else 0.0


@dataclass
class Chain:
    """Submissions linked by probe pairs, in time order."""

    steps: list[Probe]

    @property
    def probes(self) -> list[Probe]:
        """The steps that are probes of an earlier submission."""
        return [s for s in self.steps if s.parent is not None]


@dataclass
class TeamProbing:
    """A team's chains and what they could have told it."""

    team: str
    submissions: int
    chains: list[Chain]
    repeats: int = 0
    flagged: bool = False

    @property
    def probes(self) -> int:
        """Probe submissions over all chains."""
        return sum(len(c.probes) for c in self.chains)

    @property
    def single_image_probes(self) -> int:
        """Probes that changed exactly one image."""
        return sum(1 for c in self.chains for p in c.probes if len(p.changed) == 1)

    @property
    def bits(self) -> float:
        """Estimated bits of label information (see the module docstring)."""
        return sum(p.bits for c in self.chains for p in c.probes)

    def images(self) -> Counter[int]:
        """Image index -> how many probes changed it."""
        return Counter(i for c in self.chains for p in c.probes for i in p.changed)

    def to_dict(self, data: Dataset) -> dict[str, Any]:
        """JSON form: counts, the bits estimate, each chain's steps and the probed images."""
        return {"team": self.team, "flagged": self.flagged, "submissions": self.submissions,
                "probes": self.probes, "single_image_probes": self.single_image_probes,
                "bits_estimate": round(self.bits, 3), "identical_resubmissions": self.repeats,
                "chains": [[{**s.sub.to_dict(), "parent": s.parent.file if s.parent else None,
                             "parent_sha256": s.parent.sha256 if s.parent else None,
                             "changed_images": [data.image_name(i) for i in s.changed]} for s in c.steps]
                           for c in self.chains],
                "probed_images": [{"image": data.image_name(i), "probes": k}
                                  for i, k in sorted(self.images().items(), key=lambda x: (-x[1], x[0]))]}


def change_limit(n_images: int, max_images: int, max_share: float) -> int:
    """Most images a probe pair may differ on: ``max_images`` or ``max_share`` of the images, the larger."""
    return max(max_images, int(math.floor(max_share * n_images)))


def _near_pairs(data: Dataset, rows: list[int], limit: int) -> dict[tuple[int, int], np.ndarray]:
    """(row a, row b) -> changed images, for rows a < b (in ``rows`` order) differing on at most ``limit``."""
    totals = data.totals[rows]
    hashes = data.mask_hash[rows] if data.mask_hash is not None else None
    with_masks = data.has_masks[rows] if data.has_masks is not None else None
    out: dict[tuple[int, int], np.ndarray] = {}
    for i in range(len(rows) - 1):
        diff = totals[i + 1:] != totals[i]
        if hashes is not None and with_masks is not None and with_masks[i]:
            diff |= (hashes[i + 1:] != hashes[i]) & with_masks[i + 1:, None]
        close = np.flatnonzero(diff.sum(axis=1) <= limit)  # decisions can only add changed images
        for j in close + i + 1:
            changed = data.changed_images(rows[i], rows[j])
            if changed.size <= limit:
                out[rows[i], rows[j]] = changed
    return out


def _components(nodes: list[int], edges: list[tuple[int, int]]) -> list[list[int]]:
    parent = {n: n for n in nodes}

    def find(n: int) -> int:
        while parent[n] != n:
            parent[n] = parent[parent[n]]
            n = parent[n]
        return n

    for a, b in edges:
        parent[find(a)] = find(b)
    groups: dict[int, list[int]] = {}
    for n in nodes:
        groups.setdefault(find(n), []).append(n)
    return [g for g in groups.values() if len(g) > 1]


def team_probing(data: Dataset, team: str, subs: list[Sub], limit: int) -> TeamProbing:
    """Probe pairs and chains among one team's submissions (``subs`` in any order)."""
    first: dict[int, Sub] = {}
    repeats = 0
    for s in sorted(subs, key=lambda s: (s.submitted_at, s.id)):
        if s.row in first:
            repeats += 1  # the very same file again: no new information
        else:
            first[s.row] = s
    rows = sorted(first, key=lambda r: (first[r].submitted_at, first[r].id))
    pairs = _near_pairs(data, rows, limit)
    edges = [p for p, changed in pairs.items() if changed.size]
    repeats += sum(1 for changed in pairs.values() if not changed.size)
    chains = []
    for group in _components(rows, edges):
        group.sort(key=lambda r: (first[r].submitted_at, first[r].id))
        steps = []
        for k, r in enumerate(group):
            earlier = [(pairs[q, r].size, -m, q) for m, q in enumerate(group[:k]) if (q, r) in pairs and
                       pairs[q, r].size]
            if not earlier:
                steps.append(Probe(first[r]))
                continue
            _, _, q = min(earlier)  # fewest changed images; ties: the latest
            steps.append(Probe(first[r], first[q], [int(i) for i in pairs[q, r]]))
        chains.append(Chain(steps))
    return TeamProbing(team, len(subs), chains, repeats)


def find_probing(data: Dataset, limit: int, min_probes: int) -> list[TeamProbing]:
    """Every team with at least one probe pair, flagged when it made ``min_probes`` probes or more.

    Ordered by estimated bits, most first. Organizer entries (``baseline:``) are skipped.
    """
    by_team: dict[str, list[Sub]] = {}
    for s in data.subs:
        if not s.team.startswith(BASELINE_PREFIX):
            by_team.setdefault(s.team, []).append(s)
    out = []
    for team, subs in by_team.items():
        found = team_probing(data, team, subs, limit)
        if found.chains:
            found.flagged = found.probes >= min_probes
            out.append(found)
    return sorted(out, key=lambda t: (-t.bits, t.team))
