"""Submission limits in ``rank``: per team, at most N submissions a day and M a phase.

Counted as Codabench counts them: in submission-time order, per team and phase, a day being
a UTC calendar day; a submission that finds its team at a limit is refused and never
scored, so its score cannot leak. Invalid submissions do not count toward a limit (as
Codabench leaves failed submissions out) unless ``count_invalid``; one not scored yet
counts until it is found invalid, and the slot it frees goes to the team's next refused
submission in the same run. Organizer entries (``baseline:`` teams) have no limit.

A submission's phase is its manifest ``phase``; without one, the latest of the organizer's
``phase_starts`` at or before its time (file times of a ``<team>/<file>.zip`` folder);
without either, the whole track is one phase.

The limits of a track are kept in the store (``meta``), so a later ``rank`` that names none
applies the same ones; a refused file is never scored by a run that forgets a flag.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, replace
from pathlib import PurePath
from typing import Any

from ..errors import ReferenceDataError
from ..safetext import clip, quote, unicode_safe
from .collect import BASELINE_PREFIX, _normalise_time
from .runner import RunSummary
from .store import Entry, Scope, Store

#: How many refused submissions a summary lists by name (the rest are counted).
MAX_LISTED = 50


@dataclass(frozen=True)
class SubmissionLimits:
    """``per_day``/``per_phase``: most submissions per team (0: no limit); see the module docstring."""

    per_day: int = 0
    per_phase: int = 0
    count_invalid: bool = False
    phase_starts: tuple[tuple[str, str], ...] = ()

    @property
    def active(self) -> bool:
        """Whether any limit applies."""
        return bool(self.per_day or self.per_phase)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (as stored in the store's meta)."""
        return {**asdict(self), "phase_starts": [list(p) for p in self.phase_starts]}

    @classmethod
    def from_dict(cls, value: Mapping[str, Any] | None) -> SubmissionLimits:
        """Inverse of :meth:`to_dict` (``None``: no limits)."""
        if not value:
            return cls()
        return cls(int(value.get("per_day", 0)), int(value.get("per_phase", 0)), bool(value.get("count_invalid")),
                   tuple((str(n), str(t)) for n, t in value.get("phase_starts", ())))

    def updated(self, changes: Mapping[str, Any]) -> SubmissionLimits:
        """These limits with the given fields replaced (the options an organizer passed)."""
        fields = {k: v for k, v in changes.items() if v is not None}
        if "phase_starts" in fields:
            fields["phase_starts"] = tuple(parse_phase_start(p) if isinstance(p, str) else tuple(p)
                                           for p in fields["phase_starts"])
        return replace(self, **fields)

    def describe(self) -> str:
        """One line: what is limited, and whether invalid submissions count."""
        if not self.active:
            return "no submission limits"
        parts = [f"{self.per_day} per day (UTC)" if self.per_day else "", f"{self.per_phase} per phase"
                 if self.per_phase else ""]
        counted = "invalid submissions count" if self.count_invalid else "invalid submissions do not count"
        phases = f"; phases from {len(self.phase_starts)} start time(s)" if self.phase_starts else ""
        return f"at most {' and '.join(p for p in parts if p)} per team; {counted}{phases}"


def parse_phase_start(text: str) -> tuple[str, str]:
    """``NAME=TIME`` (ISO 8601, UTC when no zone is given) as (name, normalised UTC time)."""
    name, sep, when = text.partition("=")
    if not sep or not name.strip() or not when.strip():
        raise ReferenceDataError("--phase-start", f"{quote(text)} is not NAME=TIME.",
                                 "Write e.g. --phase-start test=2025-03-10T00:00:00Z.")
    return name.strip(), _normalise_time(when, "--phase-start")


def phase_of(manifest_phase: str, submitted_at: str, starts: tuple[tuple[str, str], ...]) -> str:
    """The phase a submission counts in (see the module docstring)."""
    if manifest_phase or not starts:
        return manifest_phase
    current = ""
    for name, start in sorted(starts, key=lambda p: p[1]):
        if start <= submitted_at:
            current = name
    return current


def _phase_words(phase: str) -> str:
    return f" of phase {quote(phase)}" if phase else ""


def refusals(rows: list[dict[str, Any]], limits: SubmissionLimits) -> dict[int, str]:
    """Submission id -> why it is refused, for stored rows (``id, team, phase, submitted_at, status``).

    A pure function of the rows: the same store and limits always refuse the same submissions.
    """
    if not limits.active:
        return {}
    per_phase: Counter[tuple[str, str]] = Counter()
    per_day: Counter[tuple[str, str, str]] = Counter()
    out: dict[int, str] = {}
    for row in sorted(rows, key=lambda r: (r["submitted_at"], r["id"])):
        team = row["team"]
        if team.startswith(BASELINE_PREFIX):
            continue
        phase = phase_of(row["phase"], row["submitted_at"], limits.phase_starts)
        day = row["submitted_at"][:10]
        if limits.per_phase and per_phase[team, phase] >= limits.per_phase:
            out[row["id"]] = (f"over the limit of {limits.per_phase} submission(s) per phase: "
                              f"{per_phase[team, phase]} earlier submission(s){_phase_words(phase)} count.")
            continue
        if limits.per_day and per_day[team, phase, day] >= limits.per_day:
            out[row["id"]] = (f"over the limit of {limits.per_day} submission(s) per day: "
                              f"{per_day[team, phase, day]} earlier submission(s) on {day} (UTC)"
                              f"{_phase_words(phase)} count.")
            continue
        if row["status"] == "invalid" and not limits.count_invalid:
            continue
        per_phase[team, phase] += 1
        per_day[team, phase, day] += 1
    return out


def resolve(store: Store, track: str, limits: SubmissionLimits | Mapping[str, Any] | None) -> SubmissionLimits:
    """The limits this run applies: given ones replace, a mapping updates, None keeps the stored ones."""
    key = f"limits:{track}"
    stored = SubmissionLimits.from_dict(store.get_meta(key))
    if limits is None:
        return stored
    chosen = limits if isinstance(limits, SubmissionLimits) else stored.updated(limits)
    if chosen != stored:
        store.set_meta(key, chosen.to_dict())
    return chosen


def _key(e: Entry) -> tuple[str, str, str, str]:
    return unicode_safe(e.phase), unicode_safe(e.team), unicode_safe(e.path), e.sha256


def refused_line(row: dict[str, Any], reason: str) -> str:
    """``team: file (time): reason`` for an organizer's listing (sanitise it for the output)."""
    return f"{clip(row['team'])}: {clip(PurePath(row['path']).name)} ({row['submitted_at']}): {reason}"


def score_within(store: Store, scope: Scope, entries: list[Entry], limits: SubmissionLimits,
                 run: Callable[[list[Entry]], RunSummary]) -> RunSummary:
    """Store ``entries``, refuse those over ``limits`` and ``run`` the scoring of the others.

    Runs again while scoring frees slots (a submission found invalid, when invalid ones do
    not count); each round scores only what is new. Returns one summary for all rounds.
    """
    store.add_entries(entries)
    before = store.scored(scope)
    total = RunSummary(len(entries), 0, 0, 0, [])
    while True:
        rows = store.rows(scope)
        reasons = refusals(rows, limits)
        store.set_refused(scope.track, reasons)
        refused_keys = {(r["phase"], r["team"], r["path"], r["sha256"]) for r in rows if r["id"] in reasons}
        admitted = [e for e in entries if _key(e) not in refused_keys]
        summary = run(admitted)
        total.scored += summary.scored
        total.invalid += summary.invalid
        total.failed += summary.failed
        total.notes += summary.notes
        if not summary.scored or limits.count_invalid or not summary.invalid:
            break
    mine = {_key(e) for e in entries}
    listed = [(r, reasons[r["id"]]) for r in rows if r["id"] in reasons and
              (r["phase"], r["team"], r["path"], r["sha256"]) in mine]
    total.refused = [refused_line(r, why) for r, why in listed]
    total.already_scored = sum(1 for e in admitted if e.sha256 in before)
    return total
