"""The results store's file: recognising it, creating it whole, opening it, and its failures.

A store is created in a temporary file with ``PRAGMA application_id`` =
:data:`APPLICATION_ID` and ``user_version`` = :data:`SCHEMA_VERSION`, then linked into
place, so it never exists half made. :func:`inspect_file` reads only a file's first 100
bytes to refuse, before anything is written, a file that is not SQLite, is truncated, or
carries another program's id (the caller checks the tables of a file without an id).
"""

from __future__ import annotations

import errno
import json
import os
import sqlite3
import stat
import urllib.parse
from pathlib import Path

from ..errors import StoreError
from ..safetext import clip, plain

#: ``PRAGMA user_version`` of a store this code writes. 1: submissions, results, confidence;
#: 2: adds ``predictions`` (compact per-image predictions for ``integrity``) and ``refused``
#: (submissions over a limit). Older stores are upgraded by :mod:`.migrate` on a writer's open.
SCHEMA_VERSION = 2
#: ``PRAGMA application_id`` of every results store ("NT2Q").
APPLICATION_ID = 0x4E543251

#: The tables every store holds since the first version (how a store without our id is recognised).
TABLES = frozenset({"meta", "submissions", "results", "confidence"})
_SQLITE_MAGIC = b"SQLite format 3\x00"
KEPT = "the file was left unchanged."

SCHEMA = """
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
CREATE TABLE IF NOT EXISTS predictions (
    sha256 TEXT NOT NULL,
    track TEXT NOT NULL,
    ref_sha256 TEXT NOT NULL,
    n_images INTEGER NOT NULL,
    totals BLOB NOT NULL,
    decisions BLOB,
    n_decisions INTEGER,
    mask_hash BLOB,
    mask_grid BLOB,
    PRIMARY KEY (sha256, track, ref_sha256)
);
CREATE TABLE IF NOT EXISTS refused (
    submission_id INTEGER PRIMARY KEY,
    reason TEXT NOT NULL
);
"""


# --------------------------------------------------------------------------- errors


def store_error(path: str | Path, exc: BaseException) -> StoreError:
    """An SQLite or file-system failure on the store as an organizer-facing :class:`StoreError`."""
    where = str(path)
    name = str(getattr(exc, "sqlite_errorname", "") or "")
    text = str(exc).lower()
    os_errno = exc.errno if isinstance(exc, OSError) else None
    if name.startswith("SQLITE_FULL") or "disk is full" in text or os_errno in (errno.ENOSPC, errno.EDQUOT):
        return StoreError(where, "cannot be written: the disk is full.",
                          "Free space on the disk that holds it and run the same command again: what was "
                          "stored so far is kept.")
    if name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")) or "locked" in text:
        return StoreError(where, "is locked by another process (another `rank` writing to it).",
                          "Wait until it finishes, then run again.")
    if name.startswith("SQLITE_READONLY") or "readonly" in text or os_errno in (errno.EROFS, errno.EACCES,
                                                                                errno.EPERM):
        return StoreError(where, "cannot be written (read-only file, folder or disk).",
                          "Make it writable, or pass --db a path on a writable disk.")
    if name.startswith(("SQLITE_CORRUPT", "SQLITE_NOTADB")) or "not a database" in text or "malformed" in text:
        return StoreError(where, f"is damaged ({plain(clip(str(exc)))}).",
                          "Restore it from a backup, or pass --db a new file and rank again; " + KEPT)
    if os_errno in (errno.ENOTDIR, errno.ENOENT):
        return StoreError(where, "cannot be opened: a folder on its path is missing or is a file.",
                          "Pass --db a path in an existing folder.")
    if name.startswith("SQLITE_CANTOPEN") or "unable to open" in text:
        return StoreError(where, "cannot be opened.", "Check the path and the permissions of the file and its folder.")
    return StoreError(where, f"failed: {type(exc).__name__}: {plain(clip(str(exc)))}.",
                      "Check the disk that holds it, then run again.")


# --------------------------------------------------------------------------- recognising our files


def sqlite_uri(path: Path, mode: str, immutable: bool = False) -> str:
    """An SQLite ``file:`` URI for ``path`` (any bytes in the name percent-encoded) with ``mode``."""
    quoted = urllib.parse.quote(os.fsencode(os.path.abspath(path)))
    return f"file:{quoted}?mode={mode}" + ("&immutable=1" if immutable else "")


def _read_head(path: Path) -> bytes:
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise StoreError(str(path), "is not a regular file.", "Pass --db the path of a results store file.")
        return os.read(fd, 100)
    finally:
        os.close(fd)


def inspect_file(path: Path, readonly: bool) -> str:
    """``new`` (missing or empty), ``ours`` (our id) or ``unstamped`` (no id: first-version store?).

    Reads nothing but the file's first 100 bytes; raises :class:`StoreError` for a file that
    is not a results store.
    """
    where = str(path)
    try:
        st = os.stat(path)
        if not stat.S_ISREG(st.st_mode):
            raise StoreError(where, "is not a regular file.", "Pass --db the path of a results store file.")
        head = _read_head(path) if st.st_size else b""
    except PermissionError:
        raise StoreError(where, "cannot be read (permission denied).",
                         "Check the permissions of the file and its folder.") from None
    except FileNotFoundError:
        if readonly:
            raise StoreError(where, "does not exist.", "Run `ntire-t2iqa rank` first, or check --db.") from None
        return "new"
    except OSError as exc:
        raise store_error(path, exc) from None
    if not head:
        if readonly:
            raise StoreError(where, "is empty: no ranking run is stored in it.", "Run `ntire-t2iqa rank` first.")
        return "new"
    if len(head) < 100 or not head.startswith(_SQLITE_MAGIC):
        raise StoreError(where, "is not an SQLite database, so not a results store.",
                         "Pass --db a results store, or a new file name; " + KEPT)
    page_size = int.from_bytes(head[16:18], "big")
    page_size = 65536 if page_size == 1 else page_size
    n_pages = int.from_bytes(head[28:32], "big")
    complete = n_pages * page_size
    if head[92:96] == head[24:28] and st.st_size < complete and not os.path.exists(f"{path}-wal"):
        raise StoreError(where, f"is truncated ({st.st_size:,} of {complete:,} bytes).",
                         "Restore it from a backup, or pass --db a new file and rank again; " + KEPT)
    app_id = int.from_bytes(head[68:72], "big", signed=True)
    if app_id == APPLICATION_ID:
        version = int.from_bytes(head[60:64], "big", signed=True)
        if version > SCHEMA_VERSION:
            raise StoreError(where, f"was written by a newer ntire-t2iqa (store schema {version}; this one "
                                    f"knows {SCHEMA_VERSION}).", "Upgrade ntire-t2iqa; " + KEPT)
        return "ours"
    if app_id != 0:
        raise StoreError(where, f"is another program's SQLite database (application id {app_id:#x}), not a "
                                "results store.", "Pass --db a results store, or a new file name; " + KEPT)
    return "unstamped"


def create_file(path: Path) -> None:
    """Write an empty store to a temporary file and link it into place (never over another file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.new")
    try:
        con = sqlite3.connect(sqlite_uri(tmp, "rwc"), uri=True, isolation_level=None)
        try:
            con.execute(f"PRAGMA application_id = {APPLICATION_ID}")
            con.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            con.executescript("BEGIN;" + SCHEMA + "COMMIT;")
            con.execute("INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)", (json.dumps(SCHEMA_VERSION),))
        finally:
            con.close()
        try:
            os.link(tmp, path)
        except FileExistsError:
            if os.stat(path).st_size == 0:  # an empty file (e.g. `touch`): nothing to keep
                os.replace(tmp, path)
            # else another process created the store meanwhile: use that one
        except OSError:  # a file system without hard links
            if not os.path.exists(path):
                os.replace(tmp, path)
    finally:
        if os.path.lexists(tmp):
            os.unlink(tmp)


def is_wal(path: Path) -> bool:
    """Whether the file's header says WAL mode (then a ``mode=ro`` reader needs -wal and -shm files)."""
    try:
        return _read_head(path)[18:19] == b"\x02"
    except OSError:
        return False
