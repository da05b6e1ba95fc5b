"""The results store: one SQLite file holding submissions, their scores and failures.

Crash safety: every scored submission is written in its own transaction, and a
submission row is inserted (idempotently) before it is scored, so a run killed at any
moment leaves only whole rows; running again scores exactly what is missing.

The store knows its own files: one is created whole (in a temporary file, then linked
into place) with ``PRAGMA application_id`` = :data:`APPLICATION_ID` and ``user_version`` =
:data:`SCHEMA_VERSION`. An existing file that is not SQLite, is truncated or damaged, or
carries another program's id is refused before anything is written to it. Stores of the
first version carry no id: one holding our tables is accepted, and stamped on the next write.
A writer upgrades an older store to the current schema (:mod:`.migrate`).

A writer works in WAL mode (readers never wait for it) and turns the file back to a
rollback journal when it closes, so a read-only open (``mode=ro``: ``leaderboard``,
``render``) reads the one file and creates nothing next to it.
"""

from __future__ import annotations

import io
import json
import os
import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import StoreError
from ..safetext import clip, unicode_safe
from . import migrate
from . import storefile as sf
from .predictions import Predictions
from .storefile import APPLICATION_ID, SCHEMA_VERSION, store_error

__all__ = ["APPLICATION_ID", "SCHEMA_VERSION", "Entry", "Scope", "Store", "bounded_reason", "pack_details",
           "unpack_details"]

#: At most this many problems of an invalid submission are stored (then one line counts the rest) ...
MAX_PROBLEMS = 20
#: ... and each of their text fields is clipped to this many characters.
MAX_FIELD = 500


@dataclass(frozen=True)
class Entry:
    """One submitted file: who sent it, when, and its content hash.

    ``path`` is the file's UTF-8-safe text form (the store's key and what is shown);
    ``source`` the real file-system path to open (it may hold undecodable bytes), when it
    differs. ``rejected`` says why the path is not a submission file at all (a folder, a
    pipe, a link leading elsewhere): such an entry is never opened and is stored invalid.
    """

    track: str
    team: str
    path: str
    sha256: str
    size: int
    mtime_ns: int
    submitted_at: str
    leader: str = ""
    phase: str = ""
    source: str = ""
    rejected: str = ""

    @property
    def file(self) -> str:
        """The path to open."""
        return self.source or self.path


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


# --------------------------------------------------------------------------- bounds


def _field(value: Any) -> str:
    return unicode_safe(clip(value if isinstance(value, str) else f"<{type(value).__name__}>", MAX_FIELD))


def bounded_reason(reason: list[dict[str, str]]) -> list[dict[str, str]]:
    """At most :data:`MAX_PROBLEMS` problems, every field clipped, then one line counting the rest."""
    out = []
    for problem in reason[:MAX_PROBLEMS]:
        get = problem.get if isinstance(problem, dict) else (lambda key, default="": default)
        severity = get("severity", "error")
        out.append({"severity": severity if severity in ("error", "warning") else "error",
                    "where": _field(get("where", "")), "what": _field(get("what", "")), "fix": _field(get("fix", ""))})
    if len(reason) > MAX_PROBLEMS:
        out.append({"severity": "error", "where": "", "fix": "",
                    "what": f"... and {len(reason) - MAX_PROBLEMS:,} more problem(s) not kept here"})
    return out


def _bounded_metrics(metrics: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in metrics.items():
        if isinstance(value, str):
            value = _field(value)
        elif isinstance(value, list):
            value = [_field(v) for v in value[:MAX_PROBLEMS]] + \
                ([f"... and {len(value) - MAX_PROBLEMS:,} more"] if len(value) > MAX_PROBLEMS else [])
        out[_field(key)] = value
    return out


class Store:
    """A results store in one SQLite file; ``readonly`` opens it with ``mode=ro`` and writes nothing."""

    def __init__(self, path: str | Path, readonly: bool = False):
        self.path = Path(path)
        self.readonly = readonly
        self.db: sqlite3.Connection | None = None
        #: Tables the file holds (a read-only open of an older store lacks the newer ones).
        self.tables: set[str] = set()
        try:
            kind = sf.inspect_file(self.path, readonly)
            if kind == "new":
                sf.create_file(self.path)
                kind = sf.inspect_file(self.path, readonly)
            if readonly:
                immutable = sf.is_wal(self.path) and not os.path.exists(f"{self.path}-wal") and \
                    not os.access(self.path.parent, os.W_OK)  # nobody can write there: nothing changes under us
                self.db = sqlite3.connect(sf.sqlite_uri(self.path, "ro", immutable), uri=True, timeout=60,
                                          isolation_level=None)
            else:
                self.db = sqlite3.connect(sf.sqlite_uri(self.path, "rw"), uri=True, timeout=60, isolation_level=None)
            if kind == "unstamped":
                self._check_tables()
            if not readonly:
                if self.db.execute("PRAGMA quick_check(1)").fetchone()[0] != "ok":
                    raise StoreError(str(self.path), "is damaged (SQLite's quick_check fails).",
                                     "Restore it from a backup, or pass --db a new file and rank again; " + sf.KEPT)
                self.db.execute("PRAGMA journal_mode=WAL")
                self.db.execute("PRAGMA synchronous=NORMAL")
                migrate.upgrade(self.db)  # stamps an unstamped store; older versions gain the new tables
            self.tables = {r[0] for r in self.db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        except StoreError:
            self._drop()
            raise
        except (sqlite3.Error, OSError) as exc:
            self._drop()
            raise store_error(self.path, exc) from None

    def _check_tables(self) -> None:
        """Accept a file without our id only when it holds our tables and a schema version."""
        assert self.db is not None
        tables = {r[0] for r in self.db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        try:
            version = self.db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone() \
                if "meta" in tables else None
        except sqlite3.OperationalError:  # a table named meta with other columns
            version = None
        if not sf.TABLES <= tables or version is None:
            raise StoreError(str(self.path), "is an SQLite database of another program (it lacks the tables of a "
                             "results store).", "Pass --db a results store, or a new file name; " + sf.KEPT)

    def _drop(self) -> None:
        if self.db is not None:
            self.db.close()
            self.db = None

    def close(self) -> None:
        """Close the connection; a writer first turns the file back to a rollback journal when it is alone."""
        if self.db is None:
            return
        try:
            if not self.readonly and not self.db.in_transaction:
                self.db.execute("PRAGMA busy_timeout = 100")
                self.db.execute("PRAGMA journal_mode = DELETE")  # fails while another connection is open: fine
        except sqlite3.Error:
            pass
        finally:
            self._drop()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def _con(self) -> sqlite3.Connection:
        if self.db is None:
            raise StoreError(str(self.path), "is closed.")
        return self.db

    @contextmanager
    def _guard(self) -> Iterator[None]:
        """SQLite failures and damaged stored values as a :class:`StoreError`."""
        try:
            yield
        except sqlite3.Error as exc:
            raise store_error(self.path, exc) from None
        except (ValueError, KeyError, OSError) as exc:  # a stored JSON text or array blob that does not decode
            raise StoreError(str(self.path), f"holds a damaged record ({type(exc).__name__}).",
                             "Restore it from a backup, or pass --db a new file and rank again.") from None

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One atomic transaction (``BEGIN IMMEDIATE`` ... ``COMMIT``, rolled back on error)."""
        con = self._con
        if self.readonly:
            raise StoreError(str(self.path), "was opened read-only.")
        with self._guard():
            con.execute("BEGIN IMMEDIATE")
        try:
            yield con
            con.execute("COMMIT")
        except BaseException as exc:
            if con.in_transaction:
                try:
                    con.execute("ROLLBACK")
                except sqlite3.Error:
                    pass  # closing the connection rolls back as well
            if isinstance(exc, sqlite3.Error):
                raise store_error(self.path, exc) from None
            raise

    # ----------------------------------------------------------------- meta

    def set_meta(self, key: str, value: Any) -> None:
        """Store a JSON value under a key."""
        with self.transaction() as con:
            con.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, json.dumps(value)))

    def get_meta(self, key: str, default: Any = None) -> Any:
        """Read a JSON value stored with :meth:`set_meta`."""
        with self._guard():
            row = self._con.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
            return json.loads(row[0]) if row else default

    # ----------------------------------------------------------------- submissions

    def known_hash(self, path: str, size: int, mtime_ns: int) -> str | None:
        """The sha256 recorded for a file with this path, size and mtime (saves re-hashing)."""
        with self._guard():
            row = self._con.execute("SELECT sha256 FROM submissions WHERE path = ? AND size = ? AND mtime_ns = ? "
                                    "LIMIT 1", (unicode_safe(path), size, mtime_ns)).fetchone()
        return row[0] if row else None

    def add_entries(self, entries: Iterable[Entry]) -> None:
        """Record submitted files (idempotent), all in one transaction."""
        rows = [(e.track, unicode_safe(e.phase), unicode_safe(e.team), unicode_safe(e.leader), unicode_safe(e.path),
                 e.sha256, e.size, e.mtime_ns, e.submitted_at) for e in entries]
        with self.transaction() as con:
            con.executemany(
                "INSERT OR IGNORE INTO submissions (track, phase, team, leader, path, sha256, size, mtime_ns, "
                "submitted_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)

    def scored(self, scope: Scope, toolkit: str | None = None) -> set[str]:
        """Hashes that already have a result in this scope.

        With ``toolkit`` (the scoring code's fingerprint), a file made invalid by an unexpected
        failure of a *different* scoring code does not count: the new code tries it again, so a
        bug in one version of the toolkit never condemns a participant's file for good.
        """
        with self._guard():
            rows = self._con.execute("SELECT sha256, json_extract(metrics, '$.toolkit') FROM results WHERE track = ? "
                                     "AND ref_sha256 = ? AND plcc_fit = ?",
                                     (scope.track, scope.ref_sha256, scope.plcc_fit))
            return {sha for sha, made_by in rows if made_by is None or toolkit is None or made_by == toolkit}

    def add_result(self, scope: Scope, sha256: str, status: str, main_score: float | None,
                   metrics: dict[str, Any] | None, reason: list[dict[str, str]] | None,
                   details: bytes | None, predictions: Predictions | None = None) -> None:
        """Write one result in its own transaction (a repeat of the same key is ignored).

        A reason is bounded (:func:`bounded_reason`) and metrics' texts are clipped, so no
        submission can make a row too big to store. ``predictions`` (per image, for
        ``integrity``) are written in the same transaction.
        """
        metrics_text = json.dumps(_bounded_metrics(metrics)) if metrics is not None else None
        reason_text = json.dumps(bounded_reason(reason)) if reason is not None else None
        with self.transaction() as con:
            con.execute(
                "INSERT INTO results (sha256, track, ref_sha256, plcc_fit, status, main_score, metrics, reason, "
                "details) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (sha256, track, ref_sha256, plcc_fit) "
                "DO UPDATE SET status = excluded.status, "
                "main_score = excluded.main_score, metrics = excluded.metrics, reason = excluded.reason, "
                "details = excluded.details, scored_at = excluded.scored_at "
                "WHERE json_extract(results.metrics, '$.toolkit') IS NOT NULL",  # only a scorer failure is replaced
                (sha256, scope.track, scope.ref_sha256, scope.plcc_fit, status, main_score, metrics_text,
                 reason_text, details))
            if predictions is not None:
                con.execute("INSERT OR IGNORE INTO predictions VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                            (sha256, scope.track, scope.ref_sha256, *predictions.row()))

    def rows(self, scope: Scope, phase: str | None = None) -> list[dict[str, Any]]:
        """Every submission of the track joined with its result in this scope (``status`` None: not scored).

        ``refused`` is the reason a submission is over a submission limit (None: admitted).
        """
        refused = "refused" in self.tables
        sql = ("SELECT s.id, s.team, s.leader, s.phase, s.path, s.sha256, s.submitted_at, r.status, r.main_score, "
               f"r.metrics, r.reason, {'f.reason' if refused else 'NULL'} FROM submissions s LEFT JOIN results r "
               "ON r.sha256 = s.sha256 AND r.track = s.track AND r.ref_sha256 = ? AND r.plcc_fit = ? "
               + ("LEFT JOIN refused f ON f.submission_id = s.id " if refused else "") + "WHERE s.track = ?")
        args: list[Any] = [scope.ref_sha256, scope.plcc_fit, scope.track]
        if phase is not None:
            sql += " AND s.phase = ?"
            args.append(phase)
        sql += " ORDER BY s.submitted_at, s.id"
        keys = ("id", "team", "leader", "phase", "path", "sha256", "submitted_at", "status", "main_score",
                "metrics", "reason", "refused")
        out = []
        with self._guard():
            for row in self._con.execute(sql, args):
                rec = dict(zip(keys, row))
                rec["metrics"] = json.loads(rec["metrics"]) if rec["metrics"] else None
                rec["reason"] = json.loads(rec["reason"]) if rec["reason"] else None
                out.append(rec)
        return out

    def details(self, scope: Scope, sha256: str) -> dict[str, np.ndarray]:
        """Per-image arrays of one scored submission."""
        with self._guard():
            row = self._con.execute("SELECT details FROM results WHERE sha256 = ? AND track = ? AND ref_sha256 = ? "
                                    "AND plcc_fit = ?",
                                    (sha256, scope.track, scope.ref_sha256, scope.plcc_fit)).fetchone()
            return unpack_details(row[0] if row else None)

    def predictions(self, scope: Scope) -> dict[str, Predictions]:
        """Stored per-image predictions of every scored submission in the scope's reference, by sha256.

        A row whose blobs do not decode is left out (the caller counts what is missing).
        """
        if "predictions" not in self.tables:
            return {}
        out = {}
        with self._guard():
            for row in self._con.execute("SELECT sha256, n_images, totals, decisions, n_decisions, mask_hash, "
                                         "mask_grid FROM predictions WHERE track = ? AND ref_sha256 = ?",
                                         (scope.track, scope.ref_sha256)):
                try:
                    out[row[0]] = Predictions.from_row(row[1:])
                except (ValueError, TypeError):
                    continue
        return out

    def set_refused(self, track: str, reasons: dict[int, str]) -> None:
        """Replace the track's refused submissions: submission id -> why (over which limit)."""
        with self.transaction() as con:
            con.execute("DELETE FROM refused WHERE submission_id IN (SELECT id FROM submissions WHERE track = ?)",
                        (track,))
            con.executemany("INSERT INTO refused VALUES (?, ?)",
                            [(i, _field(why)) for i, why in sorted(reasons.items())])

    # ----------------------------------------------------------------- confidence

    def _board_key(self, scope: Scope) -> str:
        return f"confidence:{scope.track}:{scope.ref_sha256}:{scope.plcc_fit}"

    def set_confidence(self, scope: Scope, board: str, rows: list[tuple[str, str, float, float, float | None]],
                       resamples: int) -> None:
        """Replace a scope's bootstrap results: (team, sha256, low, high, flip probability with the next rank).

        ``board`` identifies the whole leaderboard they were computed for (see
        :func:`~ntire_t2iqa.leaderboard.ranking.board_key`); :meth:`confidence` returns them
        for that board only.
        """
        with self.transaction() as con:
            con.execute("DELETE FROM confidence WHERE track = ? AND ref_sha256 = ? AND plcc_fit = ?",
                        (scope.track, scope.ref_sha256, scope.plcc_fit))
            con.executemany("INSERT INTO confidence VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                            [(scope.track, scope.ref_sha256, scope.plcc_fit, team, sha, lo, hi, flip, resamples)
                             for team, sha, lo, hi, flip in rows])
            con.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (self._board_key(scope), json.dumps(board)))

    def confidence(self, scope: Scope, board: str) -> dict[str, tuple[str, float, float, float | None, int]]:
        """Bootstrap results by team, (sha256, low, high, flip, resamples), if computed for ``board``; else empty."""
        if self.get_meta(self._board_key(scope)) != board:
            return {}
        with self._guard():
            rows = self._con.execute("SELECT team, sha256, ci_low, ci_high, flip_next, resamples FROM confidence "
                                     "WHERE track = ? AND ref_sha256 = ? AND plcc_fit = ?",
                                     (scope.track, scope.ref_sha256, scope.plcc_fit))
            return {r[0]: (r[1], r[2], r[3], r[4], r[5]) for r in rows}
