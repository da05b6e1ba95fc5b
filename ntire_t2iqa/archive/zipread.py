"""Zip member reading: size limits, bounded readers and the decompressors behind them.

Archives are read in memory and never extracted; members are decompressed by our own
bounded reader, which stops one byte past the size a header declares and checks the
CRC (headers are not trusted). Folder members are opened without following links.
"""

from __future__ import annotations

import io
import os
import stat
import struct
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from ..errors import SubmissionError, error
from .messages import _human, _one_line

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

