"""Bring a results store written by an older ntire-t2iqa up to :data:`~.storefile.SCHEMA_VERSION`.

Runs when a writer (``rank``) opens a store; read-only opens never change a file, and read
what an older store holds. Each step runs in one ``BEGIN IMMEDIATE`` transaction together
with the new ``user_version``, so a store is always wholly of one version.

* 0 (first stores, no id) and 1 -> 2: the ``predictions`` and ``refused`` tables. Every result
  already stored gets the predictions its ``details`` still give: Track 1 totals and element
  decisions (all that ``integrity`` uses), Track 2 scores (mask evidence needs the file scored
  again).
"""

from __future__ import annotations

import json
import sqlite3

from .predictions import image_info, meta_key, of_details
from .storefile import APPLICATION_ID, SCHEMA, SCHEMA_VERSION


def _statements(script: str) -> list[str]:
    return [s.strip() for s in script.split(";") if s.strip()]


def _backfill(con: sqlite3.Connection) -> int:
    """Predictions of every stored result that has none, from its details; returns how many were added."""
    from .store import unpack_details  # the store imports this module

    added = 0
    rows = con.execute("SELECT r.sha256, r.track, r.ref_sha256, r.details FROM results r WHERE r.status = 'ok' "
                       "AND r.details IS NOT NULL AND NOT EXISTS (SELECT 1 FROM predictions p WHERE "
                       "p.sha256 = r.sha256 AND p.track = r.track AND p.ref_sha256 = r.ref_sha256)").fetchall()
    for sha, track, ref, blob in rows:
        try:
            details = unpack_details(blob)
        except (ValueError, OSError, KeyError):  # a damaged blob: integrity lists the submission as unusable
            continue
        preds = of_details(track, details)
        if preds is None:
            continue
        con.execute("INSERT OR IGNORE INTO predictions VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (sha, track, ref, *preds.row()))
        key = meta_key(track, ref)
        if con.execute("SELECT 1 FROM meta WHERE key = ?", (key,)).fetchone() is None:
            con.execute("INSERT INTO meta VALUES (?, ?)", (key, json.dumps(image_info(track, details))))
        added += 1
    return added


def upgrade(con: sqlite3.Connection) -> int:
    """Create missing tables, stamp the file, and migrate older versions; returns the version found.

    ``con`` is a writer's connection in autocommit mode, with no transaction open.
    """
    version = con.execute("PRAGMA user_version").fetchone()[0]
    app_id = con.execute("PRAGMA application_id").fetchone()[0]
    if version == SCHEMA_VERSION and app_id == APPLICATION_ID:
        con.executescript(SCHEMA)  # idempotent: a store created whole already has every table
        return version
    con.execute("BEGIN IMMEDIATE")
    try:
        found = con.execute("PRAGMA user_version").fetchone()[0]  # another writer may have upgraded meanwhile
        for statement in _statements(SCHEMA):
            con.execute(statement)
        if found < 2:
            _backfill(con)
        con.execute(f"PRAGMA application_id = {APPLICATION_ID}")
        con.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        con.execute("INSERT OR REPLACE INTO meta VALUES ('schema_version', ?)", (json.dumps(SCHEMA_VERSION),))
        con.execute("COMMIT")
    except BaseException:
        if con.in_transaction:
            con.execute("ROLLBACK")
        raise
    return version
