"""Opening a submission: the member list of a zip archive or folder, checked before anything is read."""

from __future__ import annotations

import io
import os
import stat
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import BinaryIO

from ..errors import Problem, SubmissionError, bounded, error
from .messages import _human, _one_line
from .zipread import _ENCRYPTED, _METHODS, _PATCHED, Limits, MiB, _LimitedReader, _open_regular, _ZipMemberReader


class SubmissionSource:
    """The files of one submission, from a zip archive or an unpacked folder.

    Construct with :func:`open_submission`, which checks the member list first.
    """

    def __init__(self, path: Path, kind: str, names: list[str], limits: Limits,
                 infos: dict[str, zipfile.ZipInfo] | None = None, rezip_fix: str = ""):
        self.path, self.kind, self.names, self.limits = Path(path), kind, names, limits
        self._infos = infos
        self._rezip = rezip_fix or _rezip_fix(tuple(names))

    def __enter__(self) -> SubmissionSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Release resources (members are opened one at a time, so there is nothing to keep)."""

    def label(self, name: str) -> str:
        """How a member is named in messages."""
        return name

    def _info(self, name: str) -> zipfile.ZipInfo:
        if self._infos is None:
            try:
                with zipfile.ZipFile(self.path) as zf:
                    self._infos = {i.filename: i for i in reversed(zf.infolist())}
            except Exception as exc:  # noqa: BLE001 - a hostile archive may fail in any way
                raise SubmissionError([error(self.path.name, f"cannot be read as a zip archive ({_one_line(exc)}).",
                                             self._rezip)]) from None
        if name not in self._infos:
            raise SubmissionError([error(self.path.name, f"has no {name}.", self._rezip)])
        return self._infos[name]

    @contextmanager
    def open(self, name: str) -> Iterator[io.BufferedReader]:
        """Open one member as a size-limited binary stream (decompressed in memory, never extracted)."""
        limit = self.limits.limit_for(name)
        fix = "Shrink the file, or ask the organizers whether the limit can be raised."
        raw: BinaryIO
        if self.kind == "zip":
            raw = _ZipMemberReader(self.path, self._info(name), name, self._rezip)  # type: ignore[assignment]
        else:
            raw = _open_regular(self.path / name, name)
        try:
            yield io.BufferedReader(_LimitedReader(raw, limit, name, fix), buffer_size=1 << 20)
        finally:
            raw.close()

    def read(self, name: str) -> bytes:
        """Read one member whole, within its size limit."""
        with self.open(name) as stream:
            return stream.read()


def _rezip_fix(required: tuple[str, ...]) -> str:
    return f"Create the zip again with a standard tool, e.g. `zip submission.zip {' '.join(required)}`."


def open_submission(path: str | os.PathLike[str], required: tuple[str, ...],
                    limits: Limits) -> tuple[SubmissionSource | None, list[Problem]]:
    """Check the member list of a zip archive or folder.

    Returns the source (``None`` when the archive itself is unreadable) and every
    structural problem found: unexpected names, folders, links, encryption, absolute or
    ``..`` paths, too many members, missing required files, sizes over the limits. The
    source's ``names`` holds only the required members that passed, so they can still
    be checked and every problem reported at once.
    """
    path = Path(path)
    expected = " and ".join(required)
    zip_fix = f"Put exactly {expected} at the root of the zip: `zip submission.zip {' '.join(required)}`."
    rezip = _rezip_fix(required)
    if path.is_dir():
        return _open_folder(path, required, limits)
    if not path.is_file():
        return None, [error(str(path.name), "does not exist or is not a regular file.", zip_fix)]
    try:
        if not zipfile.is_zipfile(path):
            with open(path, "rb") as f:
                head = f.read(4)
            if head == b"PK\x03\x04":
                return None, [error(path.name, "starts like a zip archive but is truncated or damaged (its "
                                    "directory at the end is missing).", rezip + " Then upload it again.")]
            return None, [error(path.name, "is not a zip archive.", zip_fix)]
        with zipfile.ZipFile(path) as zf:
            infos = zf.infolist()
        archive_size = path.stat().st_size
    except Exception as exc:  # noqa: BLE001 - a hostile archive may fail in any way
        return None, [error(path.name, f"cannot be read as a zip archive ({_one_line(exc)}).", rezip)]

    problems: list[Problem] = []
    if len(infos) > limits.max_members:
        problems.append(error(path.name, f"holds {len(infos)} members; at most {limits.max_members} are allowed.",
                              zip_fix))
    names: list[str] = []
    accepted: dict[str, zipfile.ZipInfo] = {}
    explained: set[str] = set()  # required names that a problem above already talks about
    total = 0
    for info in infos:
        name = info.filename
        where = f"{path.name}: member {name!r}"
        mode = (info.external_attr >> 16) & 0xFFFF
        kind = stat.S_IFMT(mode)
        base = name.replace("\\", "/").rstrip("/").rsplit("/", 1)[-1]
        if base.lower() in required:
            explained.add(base.lower())
        if info.is_dir() or kind == stat.S_IFDIR:
            problems.append(error(where, "is a folder; folders are not allowed.",
                                  "Zip the files themselves, not the folder that holds them: "
                                  f"`cd FOLDER && zip ../submission.zip {' '.join(required)}`."))
        elif kind == stat.S_IFLNK:
            problems.append(error(where, "is a symbolic link; links are not allowed.",
                                  "Zip the real files (`zip` without `--symlinks`)."))
        elif kind not in (0, stat.S_IFREG):
            problems.append(error(where, "is a special file (device, pipe or socket), not a regular file.",
                                  zip_fix))
        elif info.flag_bits & _ENCRYPTED:
            problems.append(error(where, "is encrypted.", "Create the zip without a password."))
        elif info.orig_filename != name:  # zipfile cut it at a NUL byte or changed separators
            problems.append(error(f"{path.name}: member {info.orig_filename!r}", "has an invalid file name.",
                                  zip_fix))
        elif _unsafe_name(name):
            problems.append(_bad_path(where, name, base, required, zip_fix))
        elif name not in required:
            problems.append(_unexpected(path.name, name, required))
            if name in _TRACK_OUTPUTS:
                explained.update(r for r in required if r in _TRACK_OUTPUTS)
        elif name in accepted:
            problems.append(error(where, "appears twice in the archive.", rezip))
        elif info.header_offset + 30 + info.compress_size > archive_size:
            problems.append(error(where, "is damaged: its compressed data would run past the end of the archive.",
                                  rezip))
        elif info.compress_type not in _METHODS or info.flag_bits & _PATCHED:
            problems.append(error(where, f"uses compression method {info.compress_type}, which is not supported.",
                                  "Use deflate, the default of `zip` and of most zip tools."))
        elif info.file_size > limits.limit_for(name):
            problems.append(error(name, f"is {_human(info.file_size)} uncompressed; the limit is "
                                  f"{_human(limits.limit_for(name))}.",
                                  "Shrink the file, or ask the organizers whether the limit can be raised."))
        elif info.file_size > MiB and info.file_size > limits.max_ratio * max(info.compress_size, 1):
            problems.append(error(name, f"expands {info.file_size / max(info.compress_size, 1):.0f}-fold; "
                                  f"at most {limits.max_ratio:.0f}-fold is accepted.",
                                  "Use ordinary deflate compression (`zip` does by default)."))
        else:
            total += info.file_size
            names.append(name)
            accepted[name] = info
    problems = _capped(problems)
    if total > limits.max_total_bytes:
        problems.append(error(path.name, f"expands to {_human(total)}; the limit is {_human(limits.max_total_bytes)}.",
                              "Shrink the files."))
    problems.extend(_missing(path.name, names, required, zip_fix, explained))
    return SubmissionSource(path, "zip", names, limits, accepted, rezip), problems


def _capped(problems: list[Problem]) -> list[Problem]:
    """The member problems of one archive or folder, bounded (a million junk members give one summary line)."""
    return bounded(replace(p, kind=p.kind or "problems with members") for p in problems)


def _unsafe_name(name: str) -> bool:
    return (
        name.startswith(("/", "\\"))
        or "/" in name
        or "\\" in name
        or ":" in name
        or name in ("", ".", "..")
        or "\x00" in name
    )


def _bad_path(where: str, name: str, base: str, required: tuple[str, ...], zip_fix: str) -> Problem:
    parts = name.replace("\\", "/").split("/")
    if parts[0] == "__MACOSX" or base.startswith("._"):
        return error(where, "is macOS metadata (__MACOSX/ or ._ files), not part of the submission.",
                     "Remove it: `zip -d submission.zip '__MACOSX/*' '*/._*'`, or create the zip from a terminal: "
                     f"`zip -X submission.zip {' '.join(required)}`.")
    if name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":"):
        return error(where, "has an absolute path; only plain file names at the root are allowed.", zip_fix)
    if ".." in parts:
        return error(where, "has a `..` part (it points outside the archive); only plain file names at the root "
                     "are allowed.", zip_fix)
    if "\x00" in name or ":" in name or name in ("", ".", ".."):
        return error(where, "has an invalid file name.", zip_fix)
    if base in required:
        return error(where, "is inside a folder; the files must sit at the root of the zip.",
                     f"Zip the files themselves: `cd FOLDER && zip ../submission.zip {' '.join(required)}`.")
    return error(where, f"is inside a folder and not expected; the submission must hold exactly "
                 f"{' and '.join(required)} at the root.", zip_fix)


#: The output file of each track, to explain a submission checked against the wrong track.
_TRACK_OUTPUTS = {"output.json": "align", "output.pkl": "structure"}


def _unexpected(container: str, name: str, required: tuple[str, ...]) -> Problem:
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    where = f"{container}: member {name!r}"
    if name in _TRACK_OUTPUTS and name not in required:
        wanted = " and ".join(required)
        return error(where, f"is the output file of the {_TRACK_OUTPUTS[name]} track; this track needs {wanted}.",
                     f"Check it with `--track {_TRACK_OUTPUTS[name]}`, or submit {wanted} for this track.")
    if base.lower() in required and base not in required:
        return error(where, "has the wrong letter case.", f"Rename it to {base.lower()!r}.")
    if base in required:
        return error(where, "is inside a folder; the files must sit at the root of the zip.",
                     f"Zip the files themselves: `cd FOLDER && zip ../submission.zip {' '.join(required)}`.")
    return error(where, f"is not expected; the submission must hold exactly {' and '.join(required)}.",
                 "Remove it from the archive (also hidden files such as __MACOSX/ or .DS_Store).")


def _missing(container: str, names: list[str], required: tuple[str, ...], fix: str,
             explained: set[str]) -> list[Problem]:
    return [error(container, f"has no {req}.", fix) for req in required
            if req not in names and req not in explained]


def _open_folder(path: Path, required: tuple[str, ...],
                 limits: Limits) -> tuple[SubmissionSource | None, list[Problem]]:
    problems: list[Problem] = []
    names: list[str] = []
    explained: set[str] = set()
    keep = f"Keep only {' and '.join(required)} in the submission folder."
    try:
        entries = sorted(path.iterdir(), key=lambda p: p.name)
    except OSError as exc:
        return None, [error(path.name, f"cannot be listed ({exc.strerror or exc}).", keep)]
    if len(entries) > limits.max_members:
        problems.append(error(str(path.name), f"holds {len(entries)} entries; at most {limits.max_members} are "
                              "allowed.", keep))
    total = 0
    for entry in entries:
        name = entry.name
        where = f"{path.name}/{name}"
        if name.lower() in required:
            explained.add(name.lower())
        try:
            st = entry.lstat()
        except OSError as exc:
            problems.append(error(where, f"cannot be read ({exc.strerror or exc}).", keep))
            continue
        if stat.S_ISLNK(st.st_mode):
            problems.append(error(where, "is a symbolic link; links are not allowed.",
                                  "Replace it with the real file."))
        elif stat.S_ISDIR(st.st_mode):
            problems.append(error(where, "is a folder; folders are not allowed.", keep))
        elif not stat.S_ISREG(st.st_mode):
            problems.append(error(where, "is not a regular file (a pipe, socket or device).", keep))
        elif name not in required:
            problems.append(_unexpected(path.name, name, required))
            if name in _TRACK_OUTPUTS:
                explained.update(r for r in required if r in _TRACK_OUTPUTS)
        else:
            limit = limits.limit_for(name)
            if st.st_size > limit:
                problems.append(error(name, f"is {_human(st.st_size)}; the limit is {_human(limit)}.",
                                      "Shrink the file."))
            else:
                total += st.st_size
                names.append(name)
    fix = f"Put {' and '.join(required)} in the folder."
    problems = _capped(problems)
    if total > limits.max_total_bytes:
        problems.append(error(str(path.name), f"holds {_human(total)}; the limit is "
                              f"{_human(limits.max_total_bytes)}.", "Shrink the files."))
    problems.extend(_missing(path.name, names, required, fix, explained))
    return SubmissionSource(path, "folder", names, limits), problems
