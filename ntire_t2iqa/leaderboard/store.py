"""The results store: one SQLite file (WAL) holding submissions, their scores and failures.

Crash safety: every scored submission is written in its own transaction, and a
submission row is inserted (idempotently) before it is scored, so a run killed at any
moment leaves only whole rows; running again scores exactly what is missing.
"""

from __future__ import annotations

import io
import json
import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS submissions (
    id INTEGER PRIMARY KEY,
    track TEXT NOT NULL,
    phase TEXT NOT NULL DEFAULT '',
    team TEXT NOT NULL,
    leader TEXT NOT NULL DEFAULT '',
    path TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    submitted_at TEXT NOT NULL,
    UNIQUE (track, phase, team, path, sha256)
);
CREATE INDEX IF NOT EXISTS submissions_path ON submissions (path, size, mtime_ns);
CREATE TABLE IF NOT EXISTS results (
    sha256 TEXT NOT NULL,
    track TEXT NOT NULL,
    ref_sha256 TEXT NOT NULL,
    plcc_fit TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('ok', 'invalid')),
    main_score REAL,
    metrics TEXT,
    reason TEXT,
    details BLOB,
    scored_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    PRIMARY KEY (sha256, track, ref_sha256, plcc_fit)
);
CREATE TABLE IF NOT EXISTS confidence (
    track TEXT NOT NULL,
    ref_sha256 TEXT NOT NULL,
    plcc_fit TEXT NOT NULL,
    team TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    ci_low REAL NOT NULL,
    ci_high REAL NOT NULL,
    flip_next REAL,
    resamples INTEGER NOT NULL,
    PRIMARY KEY (track, ref_sha256, plcc_fit, team)
);
"""


@dataclass(frozen=True)
class Entry:
    """One submitted file: who sent it, when, and its content hash."""

    track: str
    team: str
    path: str
    sha256: str
    size: int
    mtime_ns: int
    submitted_at: str
    leader: str = ""
    phase: str = ""


@dataclass(frozen=True)
class Scope:
    """What a leaderboard is computed against: track, reference fingerprint and PLCC fit."""

    track: str
    ref_sha256: str
    plcc_fit: str


def pack_details(details: dict[str, Any]) -> bytes:
    """Per-image arrays as a compressed ``.npz`` blob (numeric arrays only)."""
    buf = io.BytesIO()
    arrays = {k: np.asarray(v) for k, v in details.items() if isinstance(v, np.ndarray)}
    np.savez_compressed(buf, **arrays)
    return buf.getvalue()


def unpack_details(blob: bytes | None) -> dict[str, np.ndarray]:
    """Inverse of :func:`pack_details` (never unpickles: ``allow_pickle=False``)."""
    if not blob:
        return {}
    with np.load(io.BytesIO(blob), allow_pickle=False) as npz:
        return {k: npz[k] for k in npz.files}


class Store:
    """A results store in one SQLite file."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(self.path, timeout=60, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.execute("PRAGMA foreign_keys=ON")
        self.db.executescript(_SCHEMA)  # idempotent CREATE ... IF NOT EXISTS statements
        self.db.execute("INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)", (json.dumps(SCHEMA_VERSION),))

    def close(self) -> None:
        """Close the connection."""
        self.db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One atomic transaction (``BEGIN IMMEDIATE`` ... ``COMMIT``, rolled back on error)."""
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield self.db
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    # ----------------------------------------------------------------- meta

    def set_meta(self, key: str, value: Any) -> None:
        """Store a JSON value under a key."""
        with self.transaction():
            self.db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, json.dumps(value)))

    def get_meta(self, key: str, default: Any = None) -> Any:
        """Read a JSON value stored with :meth:`set_meta`."""
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return json.loads(row[0]) if row else default

    # ----------------------------------------------------------------- submissions

    def known_hash(self, path: str, size: int, mtime_ns: int) -> str | None:
        """The sha256 recorded for a file with this path, size and mtime (saves re-hashing)."""
        row = self.db.execute("SELECT sha256 FROM submissions WHERE path = ? AND size = ? AND mtime_ns = ? LIMIT 1",
                              (path, size, mtime_ns)).fetchone()
        return row[0] if row else None

    def add_entries(self, entries: Iterable[Entry]) -> None:
        """Record submitted files (idempotent), all in one transaction."""
        with self.transaction():
            self.db.executemany(
                "INSERT OR IGNORE INTO submissions (track, phase, team, leader, path, sha256, size, mtime_ns, "
                "submitted_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [(e.track, e.phase, e.team, e.leader, e.path, e.sha256, e.size, e.mtime_ns, e.submitted_at)
                 for e in entries])

    def scored(self, scope: Scope) -> set[str]:
        """Hashes that already have a result in this scope."""
        rows = self.db.execute("SELECT sha256 FROM results WHERE track = ? AND ref_sha256 = ? AND plcc_fit = ?",
                               (scope.track, scope.ref_sha256, scope.plcc_fit))
        return {r[0] for r in rows}

    def add_result(self, scope: Scope, sha256: str, status: str, main_score: float | None,
                   metrics: dict[str, Any] | None, reason: list[dict[str, str]] | None,
                   details: bytes | None) -> None:
        """Write one result in its own transaction (a repeat of the same key is ignored)."""
        with self.transaction():
            self.db.execute(
                "INSERT OR IGNORE INTO results (sha256, track, ref_sha256, plcc_fit, status, main_score, metrics, "
                "reason, details) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (sha256, scope.track, scope.ref_sha256, scope.plcc_fit, status, main_score,
                 json.dumps(metrics) if metrics is not None else None,
                 json.dumps(reason) if reason is not None else None, details))

    def rows(self, scope: Scope, phase: str | None = None) -> list[dict[str, Any]]:
        """Every submission of the track joined with its result in this scope (``status`` None: not scored)."""
        sql = ("SELECT s.id, s.team, s.leader, s.phase, s.path, s.sha256, s.submitted_at, r.status, r.main_score, "
               "r.metrics, r.reason FROM submissions s LEFT JOIN results r ON r.sha256 = s.sha256 "
               "AND r.track = s.track AND r.ref_sha256 = ? AND r.plcc_fit = ? WHERE s.track = ?")
        args: list[Any] = [scope.ref_sha256, scope.plcc_fit, scope.track]
        if phase is not None:
            sql += " AND s.phase = ?"
            args.append(phase)
        sql += " ORDER BY s.submitted_at, s.id"
        keys = ("id", "team", "leader", "phase", "path", "sha256", "submitted_at", "status", "main_score",
                "metrics", "reason")
        out = []
        for row in self.db.execute(sql, args):
            rec = dict(zip(keys, row))
            rec["metrics"] = json.loads(rec["metrics"]) if rec["metrics"] else None
            rec["reason"] = json.loads(rec["reason"]) if rec["reason"] else None
            out.append(rec)
        return out

    def details(self, scope: Scope, sha256: str) -> dict[str, np.ndarray]:
        """Per-image arrays of one scored submission."""
        row = self.db.execute("SELECT details FROM results WHERE sha256 = ? AND track = ? AND ref_sha256 = ? "
                              "AND plcc_fit = ?", (sha256, scope.track, scope.ref_sha256, scope.plcc_fit)).fetchone()
        return unpack_details(row[0] if row else None)

    # ----------------------------------------------------------------- confidence

    def set_confidence(self, scope: Scope, rows: list[tuple[str, str, float, float, float | None]],
                       resamples: int) -> None:
        """Replace a scope's bootstrap results: (team, sha256, low, high, flip probability with the next rank)."""
        with self.transaction():
            self.db.execute("DELETE FROM confidence WHERE track = ? AND ref_sha256 = ? AND plcc_fit = ?",
                            (scope.track, scope.ref_sha256, scope.plcc_fit))
            self.db.executemany("INSERT INTO confidence VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                                [(scope.track, scope.ref_sha256, scope.plcc_fit, team, sha, lo, hi, flip, resamples)
                                 for team, sha, lo, hi, flip in rows])

    def confidence(self, scope: Scope) -> dict[str, tuple[str, float, float, float | None, int]]:
        """Bootstrap results by team: (sha256, low, high, flip, resamples)."""
        rows = self.db.execute("SELECT team, sha256, ci_low, ci_high, flip_next, resamples FROM confidence WHERE "
                               "track = ? AND ref_sha256 = ? AND plcc_fit = ?",
                               (scope.track, scope.ref_sha256, scope.plcc_fit))
        return {r[0]: (r[1], r[2], r[3], r[4], r[5]) for r in rows}
