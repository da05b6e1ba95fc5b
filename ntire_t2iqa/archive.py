"""Safe reading of participant files: zip archives, folders, JSON and pickles.

A participant's file is hostile until proven otherwise. Archives are read in memory
and never extracted; members are decompressed by our own bounded reader, which stops
one byte past the size a header declares and checks the CRC (headers are not trusted);
pickles are loaded with an allow-list so that nothing in them can run, numpy objects
are rebuilt from validated parts, and the opcode stream is screened for what would
crash the C unpickler. Every failure is a :class:`SubmissionError` with a fix.
"""

from __future__ import annotations

import io
import json
import math
import os
import pickle
import stat
import struct
import threading
import zipfile
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from .errors import Problem, SubmissionError, error

try:  # zlib-ng inflates and checksums several times faster than zlib, with the same interface
    from zlib_ng import zlib_ng as _zlib
except ImportError:  # pragma: no cover - a core dependency; zlib gives the same results, slower
    _zlib = zlib  # type: ignore[assignment]

MiB = 1024 * 1024
GiB = 1024 * MiB


@dataclass(frozen=True)
class Limits:
    """Size limits for a submission (defaults follow the challenge rules; organizers may raise them)."""

    max_members: int = 8
    member_bytes: dict[str, int] = field(
        default_factory=lambda: {"output.json": 256 * MiB, "output.pkl": 2 * GiB, "readme.txt": 64 * 1024}
    )
    max_total_bytes: int = 2 * GiB + 256 * MiB + 64 * 1024
    #: Largest accepted ratio of uncompressed to compressed size for members above 1 MiB.
    #: Deflate cannot exceed about 1030:1, so this only stops exotic compressors' bombs.
    max_ratio: float = 2000.0

    def limit_for(self, name: str) -> int:
        """The uncompressed size limit of one member name."""
        return self.member_bytes.get(name, 64 * 1024)


class _LimitedReader(io.RawIOBase):
    """A read-only stream that raises once more than ``limit`` bytes have been read."""

    def __init__(self, raw: BinaryIO, limit: int, where: str, fix: str):
        self._raw, self._limit, self._where, self._fix = raw, limit, where, fix
        self.count = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        # Never ask for more than one byte past the limit, so a bomb is stopped early.
        view = memoryview(buffer)
        want = min(len(view), self._limit - self.count + 1)
        if want <= 0:
            return 0
        try:
            n = self._raw.readinto(view[:want]) or 0  # straight into the caller's buffer: no copy, no allocation
        except OSError as exc:
            raise SubmissionError([error(self._where, f"cannot be read ({exc.strerror or exc}).", self._fix)]) from None
        self.count += n
        if self.count > self._limit:
            raise SubmissionError(
                [error(self._where, f"is larger than the limit of {_human(self._limit)}.", self._fix)]
            )
        return n


def _human(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"  # pragma: no cover


# --------------------------------------------------------------------------- zip members

#: Compression methods a member may use: stored, deflate, bzip2, LZMA.
_METHODS = {zipfile.ZIP_STORED: "stored", zipfile.ZIP_DEFLATED: "deflate", zipfile.ZIP_BZIP2: "bzip2",
            zipfile.ZIP_LZMA: "LZMA"}
_ENCRYPTED = 0x1 | 0x40  # traditional and strong encryption
_PATCHED = 0x20  # "compressed patched data": not a plain file
_CHUNK = 1 << 16
#: Most bytes decompressed in one call. Larger pieces cost fewer window copies inside the
#: inflater; the allocator keeps reusing pieces of this size (it raises its threshold for fresh
#: memory maps to the size of the first one freed), so they do not come as fresh pages.
_OUT_CHUNK = 1 << 18


class _StoredDecoder:
    """The decompressor interface (as :class:`bz2.BZ2Decompressor`) for stored members."""

    eof = False

    def __init__(self) -> None:
        self._buf = b""
        self.needs_input = True

    def decompress(self, data: bytes, max_length: int) -> bytes:
        buf = self._buf + data if self._buf else data
        out, self._buf = buf[:max_length], buf[max_length:]
        self.needs_input = not self._buf
        return out


class _InflateDecoder:
    """Raw deflate with the :class:`bz2.BZ2Decompressor` interface (output bounded per call)."""

    def __init__(self) -> None:
        self._z = _zlib.decompressobj(-15)
        self.needs_input = True

    @property
    def eof(self) -> bool:
        return self._z.eof

    def decompress(self, data: bytes, max_length: int) -> bytes:
        tail = self._z.unconsumed_tail
        out = self._z.decompress(tail + data if tail else data, max_length)
        # Output may be pending inside zlib when the call filled max_length: ask again before reading more.
        self.needs_input = not self._z.unconsumed_tail and len(out) < max_length
        return out


class _LzmaDecoder:
    """The LZMA flavour of zip (a 4-byte header and LZMA1 properties, then raw LZMA1 data)."""

    def __init__(self, max_out: int) -> None:
        self._head = b""
        self._max_out = max_out
        self._d: Any = None
        self.needs_input = True

    @property
    def eof(self) -> bool:
        return self._d is not None and self._d.eof

    def decompress(self, data: bytes, max_length: int) -> bytes:
        import lzma

        if self._d is None:
            self._head += data
            if len(self._head) < 4:
                return b""
            psize = struct.unpack("<H", self._head[2:4])[0]
            if len(self._head) < 4 + psize:
                return b""
            props = self._head[4:4 + psize]
            if psize != 5 or props[0] >= 9 * 5 * 5:
                raise _MemberDamaged("its LZMA properties are invalid")
            lc, rest = props[0] % 9, props[0] // 9
            dict_size = struct.unpack("<I", props[1:5])[0]
            # Matches never reach back further than the declared size, so a bigger dictionary
            # (which the decoder would allocate) is never needed.
            dict_size = max(4096, min(dict_size, self._max_out + 4096))
            self._d = lzma.LZMADecompressor(lzma.FORMAT_RAW, filters=[
                {"id": lzma.FILTER_LZMA1, "lc": lc, "lp": rest % 5, "pb": rest // 5, "dict_size": dict_size}])
            data, self._head = self._head[4 + psize:], b""
        out = self._d.decompress(data, max_length)
        self.needs_input = self._d.needs_input
        return out


class _MemberDamaged(Exception):
    """Raised inside member decoding; turned into a :class:`SubmissionError` by the reader."""


class _ZipMemberReader(io.RawIOBase):
    """One zip member, decompressed while reading with output bounded by the *declared* size.

    The compressed bytes are read from the archive directly (never more than the central
    directory's compressed size); every decompressor call is capped, so a member that
    expands beyond what its header declares is stopped after one extra byte, whatever
    the compression method. The CRC-32 and the exact size are checked at the end.
    """

    def __init__(self, path: Path, info: zipfile.ZipInfo, where: str, fix: str):
        self._where, self._fix, self._info = where, fix, info
        self._out = 0
        self._crc = 0
        self._done = False
        self._fp: BinaryIO | None = None
        try:
            self._fp = open(path, "rb")  # noqa: SIM115 - closed in close()
            self._seek_data(info)
        except _MemberDamaged as exc:
            self.close()
            raise self._error(str(exc)) from None
        except OSError as exc:
            self.close()
            raise self._error(f"cannot be read ({exc.strerror or exc})") from None
        self._left_in = info.compress_size
        method = info.compress_type
        self._dec: Any
        if method == zipfile.ZIP_STORED:
            self._dec = _StoredDecoder()
        elif method == zipfile.ZIP_DEFLATED:
            self._dec = _InflateDecoder()
        elif method == zipfile.ZIP_BZIP2:
            import bz2

            self._dec = bz2.BZ2Decompressor()
        elif method == zipfile.ZIP_LZMA:
            self._dec = _LzmaDecoder(info.file_size)
        else:
            self.close()
            raise self._error(f"uses compression method {method}, which is not supported")

    def _seek_data(self, info: zipfile.ZipInfo) -> None:
        assert self._fp is not None
        self._fp.seek(info.header_offset)
        head = self._fp.read(30)
        if len(head) != 30 or head[:4] != b"PK\x03\x04":
            raise _MemberDamaged("its local header is missing")
        flags, method = struct.unpack("<HH", head[6:10])
        nlen, xlen = struct.unpack("<HH", head[26:30])
        raw_name = self._fp.read(nlen)
        try:
            name = raw_name.decode("utf-8" if info.flag_bits & 0x800 else "cp437")
        except UnicodeDecodeError:
            name = None
        if name != info.orig_filename:
            raise _MemberDamaged("its local header names a different file than the archive's directory")
        if flags & (_ENCRYPTED | _PATCHED):
            raise _MemberDamaged("its local header marks it as encrypted")
        if method != info.compress_type:
            raise _MemberDamaged("its local header disagrees with the archive's directory on the compression")
        self._fp.seek(xlen, io.SEEK_CUR)

    def _error(self, what: str) -> SubmissionError:
        return SubmissionError([error(self._where, f"is damaged: {what}.", self._fix)])

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer)
        if self._done or not len(view):
            return 0
        declared = self._info.file_size
        # One byte more than declared is enough to notice a member that expands beyond its header.
        want = min(len(view), declared - self._out + 1)
        filled = 0
        while filled < want:
            # Bounded pieces: each is a short-lived buffer that the allocator reuses, not fresh pages.
            try:
                data = self._produce(min(want - filled, _OUT_CHUNK))
            except _MemberDamaged as exc:
                raise self._error(str(exc)) from None
            except Exception as exc:  # noqa: BLE001 - zlib.error, OSError (bz2), lzma.LZMAError, EOFError, ...
                raise self._error(f"it cannot be decompressed ({_one_line(exc) or type(exc).__name__})") from None
            if not data:
                break
            n = len(data)
            self._out += n
            if self._out > declared:
                raise self._error(f"it holds more data than the {declared} bytes its header declares")
            self._crc = _zlib.crc32(data, self._crc)
            view[filled:filled + n] = data
            filled += n
        if not filled:
            self._finish()
        return filled

    def _produce(self, want: int) -> bytes:
        """Up to ``want`` bytes of output; ``b''`` once the member is exhausted."""
        assert self._fp is not None
        while True:
            if self._dec.eof:
                return b""
            chunk = b""
            if self._dec.needs_input:
                if self._left_in <= 0:
                    return b""
                chunk = self._fp.read(min(self._left_in, _CHUNK))
                if not chunk:
                    raise _MemberDamaged("the archive ends inside it (truncated upload?)")
                self._left_in -= len(chunk)
            out = self._dec.decompress(chunk, want)
            if out:
                return out

    def _finish(self) -> None:
        self._done = True
        if self._out != self._info.file_size:
            raise self._error(f"it holds {self._out} bytes but its header declares {self._info.file_size}")
        if self._crc != self._info.CRC:
            raise self._error("its CRC-32 checksum does not match its content")

    def close(self) -> None:
        if self._fp is not None:
            self._fp.close()
            self._fp = None
        super().close()


def _one_line(exc: BaseException, limit: int = 200) -> str:
    return " ".join(str(exc).split())[:limit]


def _open_regular(path: Path, where: str) -> BinaryIO:
    """Open a file of a submission folder: never through a link, never a pipe or device."""
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        raise SubmissionError([error(where, f"cannot be opened ({exc.strerror or exc}).",
                                     "Replace it with a regular file that can be read.")]) from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise SubmissionError([error(where, "is not a regular file.", "Replace it with the real file.")])
        return os.fdopen(fd, "rb", buffering=0)
    except BaseException:
        os.close(fd)
        raise


# --------------------------------------------------------------------------- submission sources


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
    problems = _capped(problems, path.name, zip_fix)
    if total > limits.max_total_bytes:
        problems.append(error(path.name, f"expands to {_human(total)}; the limit is {_human(limits.max_total_bytes)}.",
                              "Shrink the files."))
    problems.extend(_missing(path.name, names, required, zip_fix, explained))
    return SubmissionSource(path, "zip", names, limits, accepted, rezip), problems


#: Most problems listed for one archive (an archive of a million junk members gets one summary line).
MAX_MEMBER_PROBLEMS = 50


def _capped(problems: list[Problem], container: str, fix: str) -> list[Problem]:
    if len(problems) <= MAX_MEMBER_PROBLEMS:
        return problems
    rest = len(problems) - MAX_MEMBER_PROBLEMS + 1
    return [*problems[:MAX_MEMBER_PROBLEMS - 1],
            error(container, f"has {rest} more problems with its members (not listed).", fix)]


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
    problems = _capped(problems, path.name, keep)
    if total > limits.max_total_bytes:
        problems.append(error(str(path.name), f"holds {_human(total)}; the limit is "
                              f"{_human(limits.max_total_bytes)}.", "Shrink the files."))
    problems.extend(_missing(path.name, names, required, fix, explained))
    return SubmissionSource(path, "folder", names, limits), problems


# --------------------------------------------------------------------------- JSON


class _NonFinite(float):
    """A float parsed from NaN/Infinity (or an overflowing literal), kept so it can be reported."""


def load_json_strict(data: bytes, where: str, fix_syntax: str) -> Any:
    """Parse JSON bytes; duplicate object keys are kept as a :class:`DuplicateKeys` marker.

    NaN, Infinity and overflowing numbers parse to :class:`_NonFinite` so validators can
    report each one with its location instead of stopping at the first.
    """
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise SubmissionError([error(where, f"is not UTF-8 text (byte {exc.start}).",
                                     "Save the file as UTF-8 JSON, e.g. `json.dump(records, f)`.")]) from exc
    try:
        return json.loads(text, parse_constant=lambda c: _NonFinite(c), parse_int=_parse_int,
                          parse_float=_parse_float, object_pairs_hook=_pairs_hook)
    except json.JSONDecodeError as exc:
        raise SubmissionError([error(where, f"is not valid JSON: {exc.msg} at line {exc.lineno}, "
                                     f"column {exc.colno}.", fix_syntax)]) from None
    except RecursionError:
        raise SubmissionError([error(where, "is nested too deeply.", fix_syntax)]) from None
    except (ValueError, MemoryError) as exc:
        raise SubmissionError([error(where, f"cannot be parsed ({type(exc).__name__}: {_one_line(exc)}).",
                                     fix_syntax)]) from None


def _parse_float(text: str) -> float:
    value = float(text)
    return value if math.isfinite(value) else _NonFinite(value)


#: Digits beyond which an integer certainly overflows a float (and Python refuses to parse it).
_MAX_INT_DIGITS = 400


def _parse_int(text: str) -> Any:
    """An integer literal; one too large for a float is an overflowing number, like ``1e999``."""
    if len(text) <= 300:  # fast path: |value| < 1e300 always fits a float
        return int(text)
    if len(text.lstrip("-")) <= _MAX_INT_DIGITS:
        value = int(text)
        try:
            float(value)
            return value
        except OverflowError:
            pass
    return _NonFinite("-inf" if text.startswith("-") else "inf")


class DuplicateKeys(dict):
    """A JSON object in which some key appeared more than once; ``duplicates`` names them."""

    duplicates: list[str]


def _pairs_hook(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out = dict(pairs)
    if len(out) != len(pairs):
        seen: set[str] = set()
        dups = [k for k, _ in pairs if k in seen or seen.add(k)]  # type: ignore[func-returns-value]
        marked = DuplicateKeys(out)
        marked.duplicates = sorted(set(dups))
        return marked
    return out


def is_non_finite(value: Any) -> bool:
    """True for a JSON NaN/Infinity or a float that is not finite."""
    return isinstance(value, float) and not math.isfinite(value)


# --------------------------------------------------------------------------- pickle
#
# Loading a participant's pickle must never run code and never crash the interpreter.
# Three layers:
#
# 1. ``find_class`` resolves only an allow-list of names; everything else is refused
#    before it is called.
# 2. numpy arrays, dtypes and scalars are rebuilt by our own code from validated parts
#    (``numpy.dtype`` and ``ndarray.__setstate__`` accept flag bits and object layouts
#    with which a crafted pickle crashes numpy).
# 3. ``_PickleScanner`` reads the opcode stream just ahead of the unpickler and refuses
#    what CPython's C code would mishandle: tuples nested so deeply that hashing them
#    overflows the C stack, and memo indices that would make the unpickler allocate
#    gigabytes for a few bytes of input.

#: Read size of the pickle scanner and buffer size in front of the unpickler: small, so that large
#: payloads (array data) bypass both and land in the unpickler's own buffers directly.
_SCAN_CHUNK = 1 << 14
#: Deepest tuple nesting accepted (a submission needs 3).
MAX_TUPLE_DEPTH = 100
#: How far a memo index may run ahead of the number of memo entries.
_MEMO_SLACK = 1 << 16
#: Largest placeholder that ``_reconstruct`` may allocate before its state is set.
_MAX_PLACEHOLDER_BYTES = 1 << 16
#: dtype kinds that may be reconstructed: bool, integers, floats, complex, strings.
_DTYPE_KINDS = "biufcUS"


def _latin1_encode(obj: str, encoding: str = "utf-8", errors: str = "strict") -> bytes:
    """Stand-in for ``_codecs.encode`` that numpy pickles of protocol < 3 need; text codecs only."""
    if not isinstance(obj, str) or not isinstance(encoding, str) or errors != "strict":
        raise pickle.UnpicklingError("_codecs.encode may only encode text with a text codec")
    if encoding.lower().replace("-", "").replace("_", "") not in ("latin1", "iso88591", "utf8", "ascii"):
        raise pickle.UnpicklingError(f"codec {encoding!r} is not allowed")
    return obj.encode(encoding, errors)


class _NdarrayToken:
    """Stands for ``numpy.ndarray`` inside a pickle: usable by ``_reconstruct``, not callable itself."""

    __slots__ = ()

    def __new__(cls, *args: Any, **kwargs: Any) -> Any:
        raise pickle.UnpicklingError("numpy.ndarray may not be called directly")


class _DtypeSpec:
    """Stands for a ``numpy.dtype`` inside a pickle; turned into a real dtype only after validation.

    A real dtype would receive the pickle's ``__setstate__`` (flag bits included), which
    can make numpy treat raw bytes as object pointers.
    """

    __slots__ = ("args", "state")

    def __init__(self, *args: Any) -> None:
        self.args = args
        self.state: Any = None

    def __setstate__(self, state: Any) -> None:
        self.state = state

    def resolve(self) -> Any:
        """The validated numpy dtype: a plain bool/number/string dtype, byte order from the state."""
        args = self.args
        if not (isinstance(args, tuple) and 1 <= len(args) <= 3 and isinstance(args[0], str)):
            raise pickle.UnpicklingError("bad numpy dtype arguments")
        spec = args[0]
        state = self.state
        if state is None:
            return _plain_dtype(spec)
        if not (isinstance(state, tuple) and len(state) in (8, 9) and state[0] in (3, 4)):
            raise pickle.UnpicklingError("unsupported numpy dtype state")
        endian, subarray, names, fields, elsize = state[1:6]
        if subarray is not None or names is not None or fields is not None:
            raise pickle.UnpicklingError("structured numpy dtypes are not allowed")
        if endian not in ("<", ">", "|", "="):
            raise pickle.UnpicklingError("bad numpy dtype byte order")
        if spec in ("U", "S") and isinstance(elsize, int) and not isinstance(elsize, bool) and elsize > 0:
            spec = f"U{elsize // 4}" if spec == "U" else f"S{elsize}"  # old numpy: the size lives in the state
        dtype = _plain_dtype(spec)
        if endian in "<>" and dtype.itemsize > 1 and dtype.kind != "S":
            dtype = dtype.newbyteorder(endian)
        return dtype


#: Validated dtypes by their string spec (a pickle of many arrays names the same few specs again and again).
_DTYPES: dict[str, Any] = {}


def _plain_dtype(spec: Any) -> Any:
    """``numpy.dtype(spec)`` for a string or dtype spec, refused unless plain and non-empty."""
    import numpy as np

    if isinstance(spec, _DtypeSpec):
        return spec.resolve()
    if isinstance(spec, bytes):
        spec = spec.decode("ascii")
    if type(spec) is str and spec in _DTYPES:
        return _DTYPES[spec]
    if not isinstance(spec, str) or len(spec) > 16:
        raise pickle.UnpicklingError("bad numpy dtype")
    try:
        dtype = np.dtype(spec)
    except (TypeError, ValueError) as exc:
        raise pickle.UnpicklingError(f"bad numpy dtype {spec!r}") from exc
    if dtype.kind not in _DTYPE_KINDS or dtype.hasobject or dtype.fields is not None \
            or dtype.subdtype is not None or dtype.itemsize == 0:
        raise pickle.UnpicklingError(f"numpy dtype {str(dtype)!r} is not allowed (plain numbers only)")
    if type(spec) is str and len(_DTYPES) < 256:
        _DTYPES[spec] = dtype
    return dtype


def _shape(shape: Any) -> tuple[int, ...]:
    if isinstance(shape, int) and not isinstance(shape, bool):
        shape = (shape,)
    if not isinstance(shape, tuple) or len(shape) > 32 or not all(
            isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape):
        raise pickle.UnpicklingError("bad numpy array shape")
    return shape


def _safe_array_class() -> type:
    import numpy as np

    class _SafeArray(np.ndarray):
        """A numpy array whose pickle state is validated before numpy sees it."""

        __slots__ = ()

        def __setstate__(self, state: Any) -> None:
            if not isinstance(state, tuple) or len(state) not in (4, 5):
                raise pickle.UnpicklingError("bad numpy array state")
            version = state[0] if len(state) == 5 else 0
            shape, dtype, fortran, data = state[-4:]
            if version not in (0, 1) or not isinstance(fortran, (bool, int)):
                raise pickle.UnpicklingError("bad numpy array state")
            shape = _shape(shape)
            dtype = _plain_dtype(dtype)
            if not isinstance(data, (bytes, bytearray)):
                raise pickle.UnpicklingError("numpy array data must be bytes")
            items = 1
            for dim in shape:
                items *= dim
            if items * dtype.itemsize != len(data):
                raise pickle.UnpicklingError("numpy array data does not match its shape")
            np.ndarray.__setstate__(self, (1, shape, dtype, bool(fortran), bytes(data)))
            hook = getattr(_ARRAY_HOOK, "hook", None)
            if hook is not None:
                hook(self.view(np.ndarray))

    return _SafeArray


#: The ``on_array`` callback of the :func:`load_pickle_restricted` call running in this thread.
_ARRAY_HOOK = threading.local()


_SAFE_ARRAY: type | None = None


def _safe_reconstruct(subtype: Any, shape: Any, dtype: Any) -> Any:
    """``numpy`` array reconstruction restricted to plain ndarrays with a tiny placeholder shape."""
    import numpy as np

    if subtype is not _NdarrayToken:
        raise pickle.UnpicklingError("only numpy.ndarray may be reconstructed")
    shape = _shape(shape)
    dtype = _plain_dtype(dtype)
    items = 1
    for dim in shape:
        items *= dim
    if items * dtype.itemsize > _MAX_PLACEHOLDER_BYTES:
        raise pickle.UnpicklingError("array placeholder too large")
    assert _SAFE_ARRAY is not None
    return np.ndarray.__new__(_SAFE_ARRAY, shape, dtype)


def _safe_scalar(dtype: Any, data: Any = None) -> Any:
    """``numpy.core.multiarray.scalar``: one number or string of a plain dtype from its bytes."""
    import numpy as np

    dtype = _plain_dtype(dtype)
    if not isinstance(data, (bytes, bytearray)) or len(data) != dtype.itemsize:
        raise pickle.UnpicklingError("bad numpy scalar data")
    return np.frombuffer(bytes(data), dtype=dtype)[0]


def _safe_frombuffer(buf: Any, dtype: Any, shape: Any, order: Any) -> Any:
    """``numpy.core.numeric._frombuffer`` (protocol-5 arrays) for plain dtypes only."""
    import numpy as np

    dtype = _plain_dtype(dtype)
    shape = _shape(shape)
    if isinstance(buf, pickle.PickleBuffer):
        buf = buf.raw()
    if not isinstance(buf, (bytes, bytearray, memoryview)):
        raise pickle.UnpicklingError("numpy array data must be bytes")
    if order not in ("C", "F", "A", "K"):
        raise pickle.UnpicklingError("bad numpy array order")
    if len(buf) % dtype.itemsize:
        raise pickle.UnpicklingError("numpy array data does not match its dtype")
    return np.frombuffer(buf, dtype=dtype).reshape(shape, order="F" if order == "F" else "C")


def _safe_bytearray(*args: Any) -> bytearray:
    """``bytearray`` from bytes or text only (never from a size, which would allocate)."""
    if len(args) > 2 or (args and not isinstance(args[0], (bytes, str))) or \
            (len(args) == 2 and not isinstance(args[1], str)):
        raise pickle.UnpicklingError("bytearray may only be built from bytes or text")
    return bytearray(*args)


def _safe_bytes(*args: Any) -> bytes:
    """``bytes()`` as pickles of protocol < 3 write it (empty, or text and a codec); never from a size."""
    if not args:
        return b""
    if len(args) == 1 and isinstance(args[0], (bytes, bytearray)):
        return bytes(args[0])
    if 1 <= len(args) <= 3 and isinstance(args[0], str):
        return _latin1_encode(*args)
    raise pickle.UnpicklingError("bytes may only be built from bytes or text")


def _safe_complex(*args: Any) -> complex:
    if len(args) > 2 or not all(isinstance(a, (int, float)) for a in args):
        raise pickle.UnpicklingError("complex may only be built from numbers")
    return complex(*args)


def _allowed_globals() -> dict[tuple[str, str], Any]:
    import collections

    global _SAFE_ARRAY
    if _SAFE_ARRAY is None:
        _SAFE_ARRAY = _safe_array_class()
    table: dict[tuple[str, str], Any] = {
        ("collections", "OrderedDict"): collections.OrderedDict,
        ("_codecs", "encode"): _latin1_encode,
        ("numpy", "ndarray"): _NdarrayToken,
        ("numpy", "dtype"): _DtypeSpec,
    }
    for mod in ("builtins", "__builtin__"):
        table.update({(mod, "set"): set, (mod, "frozenset"): frozenset, (mod, "bytearray"): _safe_bytearray,
                      (mod, "bytes"): _safe_bytes,
                      (mod, "complex"): _safe_complex})
    for mod in ("numpy.core", "numpy._core"):
        table[(f"{mod}.multiarray", "_reconstruct")] = _safe_reconstruct
        table[(f"{mod}.multiarray", "scalar")] = _safe_scalar
        table[(f"{mod}.numeric", "_frombuffer")] = _safe_frombuffer
    return table


_ALLOWED: dict[tuple[str, str], Any] | None = None


_ALLOWED_LOCK = threading.Lock()


def _allowed() -> dict[tuple[str, str], Any]:
    global _ALLOWED
    if _ALLOWED is None:
        with _ALLOWED_LOCK:
            if _ALLOWED is None:
                _ALLOWED = _allowed_globals()
    return _ALLOWED


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that reconstructs only plain containers, numbers, strings and numpy arrays."""

    def find_class(self, module: str, name: str) -> Any:  # noqa: D102
        try:
            return _allowed()[(module, name)]
        except (KeyError, TypeError):
            raise _Refused(f"{module}.{name}") from None


class _Refused(pickle.UnpicklingError):
    def __init__(self, qualname: str):
        super().__init__(qualname)
        self.qualname = qualname


class _BadStream(Exception):
    """Raised by :class:`_PickleScanner`. Deliberately not an ``UnpicklingError``: the C unpickler
    turns one raised while it reads an opcode into ``EOFError('Ran out of input')``."""


class _TooDeep(_BadStream):
    """Tuples nested more than :data:`MAX_TUPLE_DEPTH` levels."""


def _opcode_table() -> dict[int, tuple[str, int, str, bool]]:
    """opcode byte -> (argument kind, size, name, pushes a leaf) from :mod:`pickletools`."""
    import pickletools

    kinds = {pickletools.UP_TO_NEWLINE: ("line", 0), pickletools.TAKEN_FROM_ARGUMENT1: ("len", 1),
             pickletools.TAKEN_FROM_ARGUMENT4: ("slen", 4), pickletools.TAKEN_FROM_ARGUMENT4U: ("len", 4),
             pickletools.TAKEN_FROM_ARGUMENT8U: ("len", 8)}
    table = {}
    for op in pickletools.opcodes:
        arg = op.arg
        if arg is None:
            kind, size = "fixed", 0
        elif arg.name == "stringnl_noescape_pair":
            kind, size = "lines2", 0
        elif arg.n >= 0:
            kind, size = "fixed", arg.n
        else:
            kind, size = kinds[arg.n]
        table[op.code.encode("latin-1")[0]] = (kind, size, op.name, op.name in _LEAF)
    return table


_OPCODES: dict[int, tuple[str, int, str, bool]] | None = None

# How the scanner's inner loop treats each opcode byte (see _PickleScanner._advance): generic
# (through _scan), a leaf with a fixed-size argument, a length-prefixed payload, or one of the
# frequent stack and memo operations handled inline with the same checks as _effect.
(_K_GENERIC, _K_LEAF, _K_PAYLOAD, _K_NOP, _K_MARK, _K_MEMOIZE, _K_GET, _K_TUPLE_N, _K_TUPLE, _K_REDUCE,
 _K_BUILD, _K_SETITEMS, _K_EFFECT) = range(13)
_INLINE = {"PROTO": _K_NOP, "FRAME": _K_NOP, "MARK": _K_MARK, "MEMOIZE": _K_MEMOIZE, "BINGET": _K_GET,
           "LONG_BINGET": _K_GET, "TUPLE1": _K_TUPLE_N, "TUPLE2": _K_TUPLE_N, "TUPLE3": _K_TUPLE_N, "TUPLE": _K_TUPLE,
           "REDUCE": _K_REDUCE, "NEWOBJ": _K_REDUCE, "BUILD": _K_BUILD, "APPEND": _K_BUILD, "SETITEMS": _K_SETITEMS,
           "APPENDS": _K_SETITEMS, "ADDITEMS": _K_SETITEMS}
_FAST: tuple[tuple[int, ...], tuple[int, ...], tuple[str, ...]] | None = None


def _fast_table(ops: dict[int, tuple[str, int, str, bool]]) -> tuple[tuple[int, ...], tuple[int, ...],
                                                                     tuple[str, ...]]:
    """Per opcode byte: (kind, bytes up to the payload or end, name), for :meth:`_PickleScanner._advance`."""
    kinds, sizes, names = [_K_GENERIC] * 256, [1] * 256, [""] * 256
    for code, (kind, size, name, leaf) in ops.items():
        names[code] = name
        if kind == "fixed":
            sizes[code] = 1 + size
            if leaf:
                kinds[code] = _K_LEAF
            elif name in _INLINE:
                kinds[code] = _INLINE[name]
            elif size == 0:
                kinds[code] = _K_EFFECT
        elif kind == "len":  # unsigned length: never negative
            sizes[code] = 1 + size
            kinds[code] = _K_PAYLOAD
    return tuple(kinds), tuple(sizes), tuple(names)

#: Opcodes that push one object that is not a tuple (depth 0).
_LEAF = frozenset((
    "INT", "BININT", "BININT1", "BININT2", "LONG", "LONG1", "LONG4", "STRING", "BINSTRING", "SHORT_BINSTRING",
    "BINBYTES", "SHORT_BINBYTES", "BINBYTES8", "BYTEARRAY8", "NONE", "NEWTRUE", "NEWFALSE", "UNICODE",
    "SHORT_BINUNICODE", "BINUNICODE", "BINUNICODE8", "FLOAT", "BINFLOAT", "EMPTY_LIST", "EMPTY_DICT",
    "EMPTY_SET", "GLOBAL", "PERSID", "EXT1", "EXT2", "EXT4", "NEXT_BUFFER",
))


class _PickleScanner(io.RawIOBase):
    """Passes a pickle stream on to the unpickler only after its opcodes were checked.

    It mirrors the unpickler's stack, tracking for every object how deeply tuples nest
    in it, and refuses a tuple nested deeper than :data:`MAX_TUPLE_DEPTH` (hashing one
    recurses in C without a limit) and memo indices far beyond the memo's size (the
    unpickler would allocate and clear that many slots). Bulk data (bytes and strings)
    streams through unscanned. Stack errors that the unpickler would also raise are
    raised here first, so the two never disagree about what is on the stack.
    """

    def __init__(self, raw: BinaryIO):
        global _OPCODES, _FAST
        if _OPCODES is None or _FAST is None:
            table = _opcode_table()  # idempotent: a race only builds the same tables twice
            _FAST, _OPCODES = _fast_table(table), table
        self._ops = _OPCODES
        self._fast = _FAST
        self._raw = raw
        self._readinto = getattr(raw, "readinto", None)
        self._buf = bytearray()  # read from raw, not yet handed on
        self._safe = 0  # bytes at the start of _buf that were checked
        self._skip = 0  # payload bytes still to pass through unchecked
        self._eof = False
        self._stopped = False
        self._stack: list[int] = []  # tuple depth of each object on the unpickler's stack
        self._marks: list[int] = []
        self._memo: dict[int, int] = {}

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer)
        if not len(view):
            return 0
        if self._skip and not self._buf and self._readinto is not None and not self._eof:
            # Inside a payload with nothing buffered: read it straight into the caller's buffer.
            n = self._readinto(view[:min(len(view), self._skip)])
            if not n:
                self._eof = self._stopped = True  # the input ends inside a payload: the unpickler finds it truncated
                return 0
            self._skip -= n
            return n
        while self._safe == 0:
            if self._stopped or (self._eof and not self._buf):
                return 0
            self._advance(len(view))
        n = min(len(view), self._safe)
        view[:n] = self._buf[:n]
        del self._buf[:n]
        self._safe -= n
        return n

    def _fill(self, need: int) -> bool:
        """Read at least ``need`` more bytes unless the input ends; False at the end."""
        got = 0
        while got < need:
            data = self._raw.read(max(need - got, _SCAN_CHUNK))
            if not data:
                self._eof = True
                return got > 0
            self._buf += data
            got += len(data)
        return True

    def _advance(self, want: int) -> None:
        """Check more of the input: up to about ``want`` bytes, at least one opcode or payload chunk."""
        buf = self._buf
        if self._skip:
            if len(buf) == self._safe and not self._fill(min(self._skip, max(_SCAN_CHUNK, min(want, 1 << 22)))):
                self._stopped = True  # the input ends inside a payload: the unpickler will find it truncated
                return
            take = min(self._skip, len(buf) - self._safe)
            self._safe += take
            self._skip -= take
            return
        stack, marks, memo = self._stack, self._marks, self._memo
        push = stack.append
        kinds, sizes, names = self._fast
        pos = self._safe
        stop_at = pos + want
        n = len(buf)
        while pos < stop_at:
            # Fast paths for the frequent opcodes, with the same checks as _scan and _effect.
            if pos < n:
                code = buf[pos]
                kind = kinds[code]
                end = pos + sizes[code]
                if kind and end <= n:
                    if kind == _K_MEMOIZE:
                        if len(stack) - 1 < (marks[-1] if marks else 0):
                            raise _BadStream("unpickling stack underflow")
                        memo[len(memo)] = stack[-1]
                    elif kind == _K_LEAF:
                        push(0)
                    elif kind == _K_GET:
                        idx = int.from_bytes(buf[pos + 1:end], "little")
                        if idx not in memo:
                            raise _BadStream(f"Memo value not found at index {idx}")
                        push(memo[idx])
                    elif kind == _K_TUPLE_N or kind == _K_TUPLE:  # as _tuple(_top(n)) and _tuple(_to_mark())
                        if kind == _K_TUPLE:
                            if not marks:
                                raise _BadStream("could not find MARK")
                            at = marks.pop()
                        else:
                            at = len(stack) - (code - 0x84)  # TUPLE1, TUPLE2, TUPLE3 are 0x85, 0x86, 0x87
                            if at < (marks[-1] if marks else 0):
                                raise _BadStream("unpickling stack underflow")
                        depth = 1 + max(stack[at:], default=0)
                        if depth > MAX_TUPLE_DEPTH:
                            raise _TooDeep(f"tuples nested more than {MAX_TUPLE_DEPTH} levels deep")
                        del stack[at:]
                        push(depth)
                    elif kind == _K_MARK:
                        marks.append(len(stack))
                    elif kind == _K_PAYLOAD:
                        push(0)  # a string, bytes or an integer
                        end += int.from_bytes(buf[pos + 1:end], "little")
                        if end > n:
                            self._skip = end - n  # the rest of the payload streams through unscanned
                            pos = n
                            break
                    elif kind == _K_SETITEMS:
                        if not marks:
                            raise _BadStream("could not find MARK")
                        del stack[marks.pop():]
                        if len(stack) - 1 < (marks[-1] if marks else 0):
                            raise _BadStream("unpickling stack underflow")
                    elif kind == _K_REDUCE:  # the result may be one of the arguments
                        if len(stack) - 2 < (marks[-1] if marks else 0):
                            raise _BadStream("unpickling stack underflow")
                        push(max(stack.pop(), stack.pop()))
                    elif kind == _K_BUILD:
                        if len(stack) - 2 < (marks[-1] if marks else 0):
                            raise _BadStream("unpickling stack underflow")
                        stack.pop()
                    elif kind == _K_EFFECT:
                        self._effect(names[code], None)
                        if self._stopped:
                            pos = end
                            break
                    pos = end  # _K_NOP: PROTO and FRAME change nothing
                    continue
            end = self._scan(pos)
            if end is None:  # incomplete opcode: read more
                if self._eof or not self._fill(_SCAN_CHUNK):
                    # The input ends inside an opcode's argument; the unpickler will fail on it.
                    pos = len(buf)
                    self._stopped = True
                    break
                n = len(buf)
                continue
            pos = end
            if self._stopped or self._skip:
                break
        self._safe = pos
        if self._stopped:
            del self._buf[self._safe:]  # nothing after STOP is handed on

    def _scan(self, pos: int) -> int | None:
        """Check the opcode at ``pos``; return where it ends, or ``None`` if it is not all read yet."""
        buf = self._buf
        if pos >= len(buf):
            return None
        code = buf[pos]
        entry = self._ops.get(code)
        if entry is None:
            raise _BadStream(f"invalid load key, {bytes([code])!r}.")
        kind, size, name, leaf = entry
        end = pos + 1
        if kind == "fixed":
            end += size
            if end > len(buf):
                return None
            if leaf:
                self._stack.append(0)
                return end
            arg: Any = bytes(buf[pos + 1:end]) if size else None
        elif kind == "len" or kind == "slen":
            end += size
            if end > len(buf):
                return None
            length = int.from_bytes(buf[pos + 1:end], "little", signed=kind == "slen")
            if length < 0:
                raise _BadStream(f"{name} has a negative length")
            self._stack.append(0)  # every length-prefixed opcode pushes a string, bytes or an integer
            if end + length <= len(buf):
                return end + length
            self._skip = end + length - len(buf)  # the rest of the payload streams through unscanned
            return len(buf)
        else:
            nl = buf.find(b"\n", pos + 1)
            if kind == "lines2" and nl >= 0:
                nl = buf.find(b"\n", nl + 1)
            if nl < 0:
                return None
            arg = bytes(buf[pos + 1:nl])
            end = nl + 1
        self._effect(name, arg)
        return end

    def _top(self, n: int) -> list[int]:
        """Pop ``n`` objects above the current mark (as the unpickler, which fails below it)."""
        fence = self._marks[-1] if self._marks else 0
        if len(self._stack) - n < fence or n < 0:
            raise _BadStream("unpickling stack underflow")
        if n == 0:
            return []
        items = self._stack[-n:]
        del self._stack[-n:]
        return items

    def _need(self, n: int) -> None:
        fence = self._marks[-1] if self._marks else 0
        if len(self._stack) - n < fence:
            raise _BadStream("unpickling stack underflow")

    def _to_mark(self) -> list[int]:
        if not self._marks:
            raise _BadStream("could not find MARK")
        at = self._marks.pop()
        items = self._stack[at:]
        del self._stack[at:]
        return items

    def _tuple(self, items: list[int]) -> None:
        depth = 1 + max(items, default=0)
        if depth > MAX_TUPLE_DEPTH:
            raise _TooDeep(f"tuples nested more than {MAX_TUPLE_DEPTH} levels deep")
        self._stack.append(depth)

    def _memo_index(self, name: str, arg: bytes) -> int:
        if name in ("PUT", "GET"):
            try:
                return int(arg)
            except ValueError:
                raise _BadStream(f"bad {name} argument") from None
        return int.from_bytes(arg, "little")

    def _effect(self, name: str, arg: Any) -> None:  # noqa: C901 - one branch per opcode family
        stack = self._stack
        if name in _LEAF:
            stack.append(0)
        elif name == "MARK":
            self._marks.append(len(stack))
        elif name in ("BINPUT", "LONG_BINPUT", "PUT", "MEMOIZE"):
            self._need(1)
            idx = len(self._memo) if name == "MEMOIZE" else self._memo_index(name, arg)
            if idx < 0 or idx > len(self._memo) + _MEMO_SLACK:
                raise _BadStream(f"memo index {idx} is out of range")
            self._memo[idx] = stack[-1]
        elif name in ("BINGET", "LONG_BINGET", "GET"):
            idx = self._memo_index(name, arg)
            if idx not in self._memo:
                raise _BadStream(f"Memo value not found at index {idx}")
            stack.append(self._memo[idx])
        elif name in ("TUPLE1", "TUPLE2", "TUPLE3"):
            self._tuple(self._top(int(name[-1])))
        elif name == "TUPLE":
            self._tuple(self._to_mark())
        elif name == "EMPTY_TUPLE":
            stack.append(1)
        elif name in ("APPEND", "BUILD"):
            self._need(2)
            stack.pop()
        elif name == "SETITEM":
            self._need(3)
            del stack[-2:]
        elif name in ("APPENDS", "SETITEMS", "ADDITEMS"):
            self._to_mark()
            self._need(1)
        elif name in ("LIST", "DICT", "FROZENSET"):
            self._to_mark()
            stack.append(0)
        elif name in ("REDUCE", "NEWOBJ"):
            stack.append(max(self._top(2)))  # the result may be one of the arguments
        elif name == "NEWOBJ_EX":
            stack.append(max(self._top(3)))
        elif name in ("OBJ", "INST"):
            items = self._to_mark()
            if name == "OBJ" and not items:
                raise _BadStream("unpickling stack underflow")
            stack.append(max(items, default=0))
        elif name == "STACK_GLOBAL":
            self._top(2)
            stack.append(0)
        elif name == "BINPERSID":
            self._top(1)
            stack.append(0)
        elif name == "POP":
            if self._marks and self._marks[-1] == len(stack):
                self._marks.pop()
            else:
                self._top(1)
        elif name == "POP_MARK":
            self._to_mark()
        elif name == "DUP":
            self._need(1)
            stack.append(stack[-1])
        elif name == "READONLY_BUFFER":
            self._need(1)
        elif name == "STOP":
            self._stopped = True
        elif name not in ("PROTO", "FRAME"):  # pragma: no cover - every opcode is listed above
            raise _BadStream(f"unsupported pickle opcode {name}")


def _plain_arrays(obj: Any) -> Any:
    """Replace the loader's array subclass by plain ndarrays in (nested) dicts, iteratively."""
    import numpy as np

    safe = _SAFE_ARRAY
    if safe is None:
        return obj
    if isinstance(obj, safe):
        return obj.view(np.ndarray)
    todo = [obj] if isinstance(obj, dict) else []
    seen: set[int] = set()
    while todo:
        item = todo.pop()
        if id(item) in seen:
            continue
        seen.add(id(item))
        for key, value in item.items():
            if isinstance(value, safe):
                item[key] = value.view(np.ndarray)
            elif isinstance(value, dict):
                todo.append(value)
    return obj


PICKLE_FIX = (
    "Pickle only a dict of dicts with plain numbers and numpy arrays: "
    "`pickle.dump({name: {'score': float(s), 'pred_area': mask.astype(np.uint8)}}, f)`."
)


def load_pickle_restricted(stream: BinaryIO, where: str,
                           on_array: Callable[[Any], None] | None = None, scan: bool = True) -> Any:
    """Unpickle from a stream with :class:`RestrictedUnpickler`; any refusal is a :class:`SubmissionError`.

    Nothing named in the pickle runs unless it is on the allow-list, and numpy objects are
    rebuilt from validated parts. With ``scan`` (the default, and always for a participant's
    file) the opcode stream is also checked as it is read (see :class:`_PickleScanner`),
    which stops streams crafted to exhaust memory or crash the interpreter; the organizer's
    own reference is loaded without that pass. ``on_array`` is called with each array
    rebuilt from its pickled state (a plain ndarray view of it), right after its data was
    read: while the data is still in the processor's cache.
    """
    _allowed()  # builds the table and the array class
    scanner = io.BufferedReader(_PickleScanner(stream), buffer_size=_SCAN_CHUNK) if scan else stream
    outer = getattr(_ARRAY_HOOK, "hook", None)
    _ARRAY_HOOK.hook = on_array
    try:
        return _plain_arrays(RestrictedUnpickler(scanner).load())
    except SubmissionError:
        raise
    except _Refused as exc:
        hint = ""
        if exc.qualname.startswith("torch"):
            hint = " (a torch tensor: convert it with `.cpu().numpy()`)"
        raise SubmissionError([error(where, f"refused to load: the pickle asks for {exc.qualname!r}{hint}, which "
                                     "is not allowed; nothing in it was run.", PICKLE_FIX)]) from None
    except _TooDeep as exc:
        raise SubmissionError([error(where, f"refused to load: it holds {exc}; nothing in it was run.",
                                     PICKLE_FIX)]) from None
    except _BadStream as exc:
        raise SubmissionError([error(where, f"is not a readable pickle ({_one_line(exc)}).", PICKLE_FIX)]) from None
    except MemoryError:
        raise SubmissionError([error(where, "is not a readable pickle: it asks for more memory than is available.",
                                     PICKLE_FIX)]) from None
    except Exception as exc:  # noqa: BLE001 - whatever a malformed pickle raises, it is the pickle's fault
        raise SubmissionError([error(where, f"is not a readable pickle ({type(exc).__name__}: {_one_line(exc)}).",
                                     PICKLE_FIX)]) from None
    finally:
        _ARRAY_HOOK.hook = outer
