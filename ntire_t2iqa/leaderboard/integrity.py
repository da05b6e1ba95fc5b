"""Challenge integrity for organizers: submission limits, label probing and collusion, from the store.

Everything here is for the organizers' eyes only and never part of a public leaderboard:
it names teams suspected of probing the hidden labels or of sharing predictions. It reads
the per-image predictions that ``rank`` stored while scoring (:mod:`.predictions`), so it
never opens a submission file again.

Example:
    >>> from ntire_t2iqa.leaderboard.integrity import IntegrityOptions, analyse   # doctest: +SKIP
    >>> report = analyse("leaderboard.db", "align", IntegrityOptions(probe_max_images=10))  # doctest: +SKIP
    >>> [t.team for t in report.probing if t.flagged]                              # doctest: +SKIP
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path, PurePath
from typing import Any

from . import stored_scope
from .collusion import TeamPair, agreement_name, find_collusion
from .integrity_data import Dataset, load
from .limits import SubmissionLimits
from .probing import TeamProbing, change_limit, find_probing
from .store import Store


@dataclass(frozen=True)
class IntegrityOptions:
    """Thresholds of the checks (the ``integrity`` command's options).

    * ``probe_max_images`` / ``probe_max_share``: two submissions of a team form a probe pair
      when they differ on at least one image and at most the larger of these (a count, and a
      share of the test images);
    * ``min_probes``: a team is flagged from this many probe submissions on;
    * ``min_correlation``: per-image correlation of total scores (Pearson or Spearman) from
      which two teams' submissions may match ...
    * ``min_agreement`` / ``min_mask_agreement``: ... when their element decisions (Track 1)
      or mask grids (Track 2) agree at least this much.
    """

    probe_max_images: int = 20
    probe_max_share: float = 0.01
    min_probes: int = 2
    min_correlation: float = 0.99
    min_agreement: float = 0.95
    min_mask_agreement: float = 0.9

    def __post_init__(self) -> None:
        if self.probe_max_images < 1 or not 0 <= self.probe_max_share < 1 or self.min_probes < 1:
            raise ValueError("probe_max_images and min_probes must be at least 1, probe_max_share in [0, 1)")
        for name in ("min_correlation", "min_agreement", "min_mask_agreement"):
            if not 0 < getattr(self, name) <= 1:
                raise ValueError(f"{name} must lie in (0, 1]")


@dataclass
class Refusal:
    """A submission refused by a submission limit."""

    team: str
    file: str
    submitted_at: str
    reason: str


@dataclass
class IntegrityReport:
    """What :func:`analyse` found."""

    track: str
    options: IntegrityOptions
    data: Dataset
    probing: list[TeamProbing]
    collusion: list[TeamPair]
    limits: SubmissionLimits
    refused: list[Refusal] = field(default_factory=list)
    phase: str | None = None

    @property
    def copies(self) -> list[TeamPair]:
        """Team pairs whose predictions match (baselines apart)."""
        return [p for p in self.collusion if not p.baseline]

    @property
    def baseline_copies(self) -> list[TeamPair]:
        """Teams whose predictions match a ``baseline:`` entry."""
        return [p for p in self.collusion if p.baseline]

    @property
    def probe_limit(self) -> int:
        """Most images a probe pair may differ on, for this test set."""
        return change_limit(self.data.n_images, self.options.probe_max_images, self.options.probe_max_share)

    def teams(self) -> int:
        """Teams with at least one analysed submission."""
        return len({s.team for s in self.data.subs})

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: every finding with its evidence (file names only, never the organizer's folders)."""
        agreement = agreement_name(self.track)
        return {
            "private": "ORGANIZERS ONLY - DO NOT PUBLISH",
            "track": self.track, "phase": self.phase, "options": asdict(self.options),
            "probe_limit_images": self.probe_limit,
            "submissions": len(self.data.subs), "distinct_files": int(self.data.totals.shape[0]),
            "teams": self.teams(), "images": self.data.n_images,
            "limits": {**self.limits.to_dict(), "description": self.limits.describe()},
            "refused": [asdict(r) for r in self.refused],
            "probing": [t.to_dict(self.data) for t in self.probing],
            "collusion": [p.to_dict(agreement) for p in self.copies],
            "baseline_copies": [p.to_dict(agreement) for p in self.baseline_copies],
            "notes": self.data.notes,
        }

    def to_json(self) -> str:
        """:meth:`to_dict` as indented JSON."""
        return json.dumps(self.to_dict(), indent=2)


def analyse(db: str | Path, track: str, options: IntegrityOptions | None = None,
            phase: str | None = None) -> IntegrityReport:
    """Read the store at ``db`` (read-only) and look for probing and collusion in ``track``.

    Uses the scope of the track's latest ``rank`` run; ``phase`` restricts to one manifest phase.
    """
    options = options or IntegrityOptions()
    with Store(db, readonly=True) as store:
        scope = stored_scope(store, track)
        data = load(store, scope, phase)
        limits = SubmissionLimits.from_dict(store.get_meta(f"limits:{track}"))
        refused = [Refusal(r["team"], PurePath(r["path"]).name, r["submitted_at"], r["refused"])
                   for r in store.rows(scope, phase) if r["refused"]]
    limit = change_limit(data.n_images, options.probe_max_images, options.probe_max_share)
    probing = find_probing(data, limit, options.min_probes)
    agreement = options.min_agreement if track == "align" else options.min_mask_agreement
    collusion = find_collusion(data, options.min_correlation, agreement)
    return IntegrityReport(track, options, data, probing, collusion, limits, refused, phase)
