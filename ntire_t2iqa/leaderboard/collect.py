"""Find submitted files: a ``SUBMISSIONS/<team>/<file>.zip`` folder or a manifest CSV.

Only regular files are submissions. Anything else where a submission should be (a folder,
a named pipe, a socket, a device, a symbolic link that leads out of the submissions folder,
nowhere, or to something that is not a regular file) becomes an entry with a ``rejected``
reason: it is listed as an invalid submission and never opened. A file is opened
non-blocking and checked again on the open descriptor, so a pipe put in its place
meanwhile cannot hang the run. A name that is not valid UTF-8 is opened by its real path
and stored and shown in its UTF-8-safe form (``\\xNN`` escapes).

A file that cannot be read now (it vanished, permission denied) is an organizer-side
fault: it is reported in :attr:`Collected.failed`, the rest goes on, and the next run
tries it again.
"""

from __future__ import annotations

import csv
import hashlib
import os
import stat
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from ..errors import ReferenceDataError
from ..safetext import quote, unicode_safe
from .store import Entry, Store

MANIFEST_COLUMNS = ("path", "team", "leader", "submitted_at", "phase")
BASELINE_PREFIX = "baseline:"
_OPEN_FLAGS = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NOCTTY", 0)
_KINDS = ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a named pipe (FIFO)"), (stat.S_ISSOCK, "a socket"),
          (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"), (stat.S_ISLNK, "a symbolic link"))
_ONLY_FILES = "Only regular files are submissions."


class NotRegularFile(Exception):
    """A path that was to be read is not a regular file (``kind`` says what it is)."""

    def __init__(self, path: str | os.PathLike[str], kind: str):
        self.kind = kind
        super().__init__(f"{unicode_safe(os.fspath(path))} is {kind}, not a regular file")


@dataclass
class Collected:
    """Entries found, and ``failed``: files that could not be read now (tried again next run)."""

    entries: list[Entry] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)


def file_kind(mode: int) -> str:
    """What a ``st_mode`` is, in words (``a folder``, ``a named pipe (FIFO)``, ...)."""
    return next((name for test, name in _KINDS if test(mode)), "a special file")


def open_regular(path: str | os.PathLike[str]) -> int:
    """A read-only descriptor of a regular file; raises :class:`NotRegularFile` for anything else.

    Opened with ``O_NONBLOCK`` (a pipe cannot block the open) and checked with ``fstat``
    on the descriptor itself, so nothing swapped in after an earlier check is ever read.
    """
    fd = os.open(path, _OPEN_FLAGS)
    try:
        mode = os.fstat(fd).st_mode
    except BaseException:
        os.close(fd)
        raise
    if not stat.S_ISREG(mode):
        os.close(fd)
        raise NotRegularFile(path, file_kind(mode))
    return fd


def _hash_fd(fd: int) -> str:
    digest = hashlib.sha256()
    while chunk := os.read(fd, 1 << 20):
        digest.update(chunk)
    return digest.hexdigest()


def sha256_file(path: str | os.PathLike[str]) -> str:
    """Hex sha256 of a regular file's content, read in 1 MiB chunks (:class:`NotRegularFile` otherwise)."""
    fd = open_regular(path)
    try:
        return _hash_fd(fd)
    finally:
        os.close(fd)


def _format_utc(when: datetime) -> str:
    return (f"{when.year:04d}-{when.month:02d}-{when.day:02d}T{when.hour:02d}:{when.minute:02d}:"
            f"{when.second:02d}.{when.microsecond:06d}Z")


def _iso(ts: float) -> str:
    """A file time as UTC text; a time beyond years 1-9999 is clamped to the nearest end."""
    try:
        return _format_utc(datetime.fromtimestamp(ts, tz=timezone.utc))
    except (OverflowError, ValueError, OSError):
        return _format_utc(datetime.min if ts < 0 else datetime.max)


def _normalise_time(text: str, where: str) -> str:
    fix = "Write an ISO 8601 time in years 1-9999, e.g. 2025-03-21T14:05:00Z."
    try:
        when = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
        if when.tzinfo is None:
            when = when.replace(tzinfo=timezone.utc)
        return _format_utc(when.astimezone(timezone.utc))
    except ValueError:
        raise ReferenceDataError(where, f"submitted_at {quote(text)} is not an ISO 8601 time.", fix) from None
    except OverflowError:
        raise ReferenceDataError(where, f"submitted_at {quote(text)} is out of range in UTC.", fix) from None


def _inside(path: str, root: str) -> bool:
    return os.path.commonpath([path, root]) == root


def _rejection(file: Path, lst: os.stat_result, root: str | None, whole_path: bool) -> str:
    """Why ``file`` is not a submission file ('' when it is); never opens it.

    A symbolic link must lead to a regular file inside ``root``; with ``whole_path`` the
    file's real path must lie inside ``root`` too (a team folder that is a link elsewhere).
    """
    if stat.S_ISLNK(lst.st_mode):
        if root is not None and not _inside(os.path.realpath(file), root):
            return f"is a symbolic link to a place outside the submissions folder. {_ONLY_FILES}"
        try:
            mode = os.stat(file).st_mode
        except (FileNotFoundError, NotADirectoryError):
            return f"is a symbolic link that leads nowhere. {_ONLY_FILES}"
        except OSError as exc:
            if exc.errno == 40:  # ELOOP
                return f"is a symbolic link that loops. {_ONLY_FILES}"
            raise
        return "" if stat.S_ISREG(mode) else f"is a symbolic link to {file_kind(mode)}. {_ONLY_FILES}"
    if not stat.S_ISREG(lst.st_mode):
        return f"is {file_kind(lst.st_mode)}, not a regular file. {_ONLY_FILES}"
    if whole_path and root is not None and not _inside(os.path.realpath(file), root):
        return f"lies outside the submissions folder (through a symbolic link). {_ONLY_FILES}"
    return ""


def _rejected(track: str, file: Path, team: str, submitted_at: str | None, leader: str, phase: str,
              lst: os.stat_result, why: str) -> Entry:
    key = unicode_safe(os.path.abspath(file))
    sha = hashlib.sha256(f"not a submission file\0{key}\0{why}".encode()).hexdigest()
    return Entry(track, team, key, sha, -1, lst.st_mtime_ns, submitted_at or _iso(lst.st_mtime), leader, phase,
                 os.fspath(file), why)


def _entry(track: str, file: Path, team: str, submitted_at: str | None, leader: str, phase: str,
           store: Store | None, root: str | None, whole_path: bool) -> Entry:
    """One entry; raises OSError when the file cannot be read now."""
    lst = os.lstat(file)
    why = _rejection(file, lst, root, whole_path)
    if why:
        return _rejected(track, file, team, submitted_at, leader, phase, lst, why)
    try:
        fd = open_regular(file)
    except NotRegularFile as exc:  # replaced since the check above
        return _rejected(track, file, team, submitted_at, leader, phase, lst, f"is {exc.kind}. {_ONLY_FILES}")
    try:
        st = os.fstat(fd)
        key = unicode_safe(os.path.realpath(file))
        sha = store.known_hash(key, st.st_size, st.st_mtime_ns) if store is not None else None
        sha = sha or _hash_fd(fd)
    finally:
        os.close(fd)
    return Entry(track, team, key, sha, st.st_size, st.st_mtime_ns, submitted_at or _iso(st.st_mtime), leader,
                 phase, os.fspath(file))


def _failure(where: str, exc: OSError) -> str:
    return f"{where}: cannot be read now ({type(exc).__name__}: {exc.strerror or 'error'})"


def from_folder(root: Path, track: str, store: Store | None = None) -> Collected:
    """Entries of ``root/<team>/<file>.zip``; the submission time is the file's mtime."""
    if not root.is_dir():
        raise ReferenceDataError(str(root), "is not a folder.", "Pass SUBMISSIONS/ laid out as <team>/<file>.zip.")
    real_root = os.path.realpath(root)
    try:
        team_dirs = sorted(Path(e.path) for e in os.scandir(root) if _is_dir(e))
    except OSError as exc:
        raise ReferenceDataError(str(root), f"cannot be listed ({exc.strerror}).", "Check its permissions.") from None
    out = Collected()
    for team_dir in team_dirs:
        team = unicode_safe(team_dir.name)
        try:
            files = sorted(Path(e.path) for e in os.scandir(team_dir)
                           if e.name.endswith(".zip") and not e.name.startswith("."))
        except OSError as exc:
            out.failed.append(_failure(unicode_safe(str(team_dir)), exc))
            continue
        for file in files:
            try:
                out.entries.append(_entry(track, file, team, None, "", "", store, real_root, True))
            except OSError as exc:
                out.failed.append(_failure(unicode_safe(str(file)), exc))
    return out


def _is_dir(entry: os.DirEntry[str]) -> bool:
    try:
        return entry.is_dir()
    except OSError:
        return False


def from_manifest(manifest: Path, track: str, store: Store | None = None) -> Collected:
    """Entries of a manifest CSV with columns ``path, team, leader, submitted_at, phase``.

    Relative paths are taken from the manifest's folder; a symbolic link named in it must
    lead to a regular file inside that folder.
    """
    name = unicode_safe(manifest.name)
    try:
        with open(manifest, newline="", encoding="utf-8-sig") as fh:
            reader = csv.DictReader(fh)
            missing = [c for c in ("path", "team") if c not in (reader.fieldnames or [])]
            if missing:
                raise ReferenceDataError(name, f"has no column(s) {', '.join(missing)}.",
                                         f"Write a header line: {','.join(MANIFEST_COLUMNS)}.")
            rows = list(reader)
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise ReferenceDataError(unicode_safe(str(manifest)), f"cannot be read as CSV ({exc}).") from None
    real_root = os.path.realpath(manifest.parent)
    out = Collected()
    for i, row in enumerate(rows, start=2):
        where = f"{name}, line {i}"
        raw_path, team = (row.get("path") or "").strip(), (row.get("team") or "").strip()
        if not raw_path or not team:
            raise ReferenceDataError(where, "needs both 'path' and 'team'.")
        if "\0" in raw_path:
            raise ReferenceDataError(where, f"path {quote(raw_path)} holds a NUL character.")
        when = (row.get("submitted_at") or "").strip()
        submitted_at = _normalise_time(when, where) if when else None
        file = Path(raw_path) if os.path.isabs(raw_path) else manifest.parent / raw_path
        try:
            out.entries.append(_entry(track, file, team, submitted_at, (row.get("leader") or "").strip(),
                                      (row.get("phase") or "").strip(), store, real_root, False))
        except OSError as exc:
            out.failed.append(_failure(f"{where}: {quote(raw_path)}", exc))
    return out
