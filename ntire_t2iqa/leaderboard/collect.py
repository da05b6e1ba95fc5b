"""Find submitted files: a ``SUBMISSIONS/<team>/<file>.zip`` folder or a manifest CSV."""

from __future__ import annotations

import csv
import hashlib
import os
from datetime import datetime, timezone
from pathlib import Path

from ..errors import ReferenceDataError
from .store import Entry, Store

MANIFEST_COLUMNS = ("path", "team", "leader", "submitted_at", "phase")
BASELINE_PREFIX = "baseline:"


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file's content, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _normalise_time(text: str, where: str) -> str:
    try:
        when = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ReferenceDataError(where, f"submitted_at {text!r} is not an ISO 8601 time.",
                                 "Write e.g. 2025-03-21T14:05:00Z.") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return when.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _entry(track: str, file: Path, team: str, submitted_at: str | None, leader: str, phase: str,
           store: Store | None) -> Entry:
    st = file.stat()
    key = str(file.resolve())
    sha = store.known_hash(key, st.st_size, st.st_mtime_ns) if store is not None else None
    return Entry(track, team, key, sha or sha256_file(file), st.st_size, st.st_mtime_ns,
                 submitted_at or _iso(st.st_mtime), leader, phase)


def from_folder(root: Path, track: str, store: Store | None = None) -> list[Entry]:
    """Entries of ``root/<team>/<file>.zip``; the submission time is the file's mtime."""
    if not root.is_dir():
        raise ReferenceDataError(str(root), "is not a folder.", "Pass SUBMISSIONS/ laid out as <team>/<file>.zip.")
    entries = []
    for team_dir in sorted(p for p in root.iterdir() if p.is_dir()):
        for file in sorted(team_dir.glob("*.zip")):
            entries.append(_entry(track, file, team_dir.name, None, "", "", store))
    return entries


def from_manifest(manifest: Path, track: str, store: Store | None = None) -> list[Entry]:
    """Entries of a manifest CSV with columns ``path, team, leader, submitted_at, phase``.

    Relative paths are taken from the manifest's folder.
    """
    try:
        with open(manifest, newline="", encoding="utf-8-sig") as fh:
            reader = csv.DictReader(fh)
            missing = [c for c in ("path", "team") if c not in (reader.fieldnames or [])]
            if missing:
                raise ReferenceDataError(manifest.name, f"has no column(s) {', '.join(missing)}.",
                                         f"Write a header line: {','.join(MANIFEST_COLUMNS)}.")
            rows = list(reader)
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise ReferenceDataError(str(manifest), f"cannot be read as CSV ({exc}).") from None
    entries = []
    for i, row in enumerate(rows, start=2):
        where = f"{manifest.name}, line {i}"
        raw_path, team = (row.get("path") or "").strip(), (row.get("team") or "").strip()
        if not raw_path or not team:
            raise ReferenceDataError(where, "needs both 'path' and 'team'.")
        file = Path(raw_path) if os.path.isabs(raw_path) else manifest.parent / raw_path
        if not file.is_file():
            raise ReferenceDataError(where, f"file {raw_path!r} does not exist.")
        when = (row.get("submitted_at") or "").strip()
        entries.append(_entry(track, file, team, _normalise_time(when, where) if when else None,
                              (row.get("leader") or "").strip(), (row.get("phase") or "").strip(), store))
    return entries
