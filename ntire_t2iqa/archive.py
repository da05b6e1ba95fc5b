"""Safe reading of participant files: zip archives, folders, JSON and pickles.

A participant's file is hostile until proven otherwise. Archives are read in memory
and never extracted; member sizes are counted while reading (zip headers are not
trusted); pickles are loaded with an allow-list so that nothing in them can run.
"""

from __future__ import annotations

import io
import json
import math
import os
import pickle
import stat
import zipfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from .errors import Problem, SubmissionError, error

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
        data = self._raw.read(want)
        n = len(data)
        self.count += n
        if self.count > self._limit:
            raise SubmissionError(
                [error(self._where, f"is larger than the limit of {_human(self._limit)}.", self._fix)]
            )
        view[:n] = data
        return n


def _human(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"  # pragma: no cover


class SubmissionSource:
    """The files of one submission, from a zip archive or an unpacked folder.

    Construct with :func:`open_submission`, which checks the member list first.
    """

    def __init__(self, path: Path, kind: str, names: list[str], limits: Limits):
        self.path, self.kind, self.names, self.limits = path, kind, names, limits
        self._zip: zipfile.ZipFile | None = None

    def __enter__(self) -> SubmissionSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Release the archive handle."""
        if self._zip is not None:
            self._zip.close()
            self._zip = None

    def label(self, name: str) -> str:
        """How a member is named in messages."""
        return name

    @contextmanager
    def open(self, name: str) -> Iterator[io.BufferedReader]:
        """Open one member as a size-limited binary stream."""
        limit = self.limits.limit_for(name)
        fix = "Shrink the file, or ask the organizers whether the limit can be raised."
        raw: BinaryIO | None = None
        try:
            if self.kind == "zip":
                if self._zip is None:
                    self._zip = zipfile.ZipFile(self.path)
                raw = self._zip.open(name)  # type: ignore[assignment]
            else:
                raw = open(self.path / name, "rb")  # noqa: SIM115 - closed below
            yield io.BufferedReader(_LimitedReader(raw, limit, name, fix), buffer_size=1 << 20)
        except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, RuntimeError) as exc:
            raise SubmissionError([error(name, f"cannot be decompressed ({exc}).", _REZIP)]) from None
        finally:
            if raw is not None:
                raw.close()

    def read(self, name: str) -> bytes:
        """Read one member whole, within its size limit."""
        with self.open(name) as stream:
            return stream.read()


_REZIP = "Create the zip again with a standard tool, e.g. `zip submission.zip output.json readme.txt`."


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
    if path.is_dir():
        return _open_folder(path, required, limits)
    if not path.is_file():
        return None, [error(str(path.name), "does not exist or is not a regular file.", zip_fix)]
    try:
        if not zipfile.is_zipfile(path):
            return None, [error(path.name, "is not a zip archive.", zip_fix)]
        with zipfile.ZipFile(path) as zf:
            infos = zf.infolist()
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
        return None, [error(path.name, f"cannot be read as a zip archive ({exc}).", _REZIP)]

    problems: list[Problem] = []
    if len(infos) > limits.max_members:
        problems.append(error(path.name, f"holds {len(infos)} members; at most {limits.max_members} are allowed.",
                              zip_fix))
    names: list[str] = []
    total = 0
    for info in infos:
        name = info.filename
        shown = repr(name)
        mode = (info.external_attr >> 16) & 0xFFFF
        if info.is_dir():
            problems.append(error(f"{path.name}: member {shown}", "is a folder; folders are not allowed.",
                                  "Zip the files themselves, not the folder that holds them: "
                                  f"`cd FOLDER && zip ../submission.zip {' '.join(required)}`."))
            continue
        if mode and stat.S_ISLNK(mode):
            problems.append(error(f"{path.name}: member {shown}", "is a symbolic link; links are not allowed.",
                                  "Zip the real files (`zip` without `--symlinks`)."))
            continue
        if info.flag_bits & 0x1:
            problems.append(error(f"{path.name}: member {shown}", "is encrypted.",
                                  "Create the zip without a password."))
            continue
        if _unsafe_name(name):
            problems.append(error(f"{path.name}: member {shown}",
                                  "has an absolute path, a `..` part or a folder part; only plain file names "
                                  "at the root are allowed.", zip_fix))
            continue
        if name not in required:
            problems.append(_unexpected(path.name, name, required))
            continue
        if name in names:
            problems.append(error(f"{path.name}: member {shown}", "appears twice in the archive.", _REZIP))
            continue
        limit = limits.limit_for(name)
        if info.file_size > limit:
            problems.append(error(name, f"is {_human(info.file_size)} uncompressed; the limit is {_human(limit)}.",
                                  "Shrink the file, or ask the organizers whether the limit can be raised."))
            continue
        if info.file_size > MiB and info.file_size > limits.max_ratio * max(info.compress_size, 1):
            problems.append(error(name, f"expands {info.file_size / max(info.compress_size, 1):.0f}-fold; "
                                  f"at most {limits.max_ratio:.0f}-fold is accepted.",
                                  "Use ordinary deflate compression (`zip` does by default)."))
            continue
        total += info.file_size
        names.append(name)
    if total > limits.max_total_bytes:
        problems.append(error(path.name, f"expands to {_human(total)}; the limit is {_human(limits.max_total_bytes)}.",
                              "Shrink the files."))
    problems.extend(_missing(path.name, names, required, zip_fix, problems))
    return SubmissionSource(path, "zip", names, limits), problems


def _unsafe_name(name: str) -> bool:
    return (
        name.startswith(("/", "\\"))
        or "/" in name
        or "\\" in name
        or ":" in name
        or name in ("", ".", "..")
        or "\x00" in name
    )


def _unexpected(container: str, name: str, required: tuple[str, ...]) -> Problem:
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    where = f"{container}: member {name!r}"
    if base.lower() in required and base not in required:
        return error(where, "has the wrong letter case.", f"Rename it to {base.lower()!r}.")
    if base in required:
        return error(where, "is inside a folder; the files must sit at the root of the zip.",
                     f"Zip the files themselves: `cd FOLDER && zip ../submission.zip {' '.join(required)}`.")
    return error(where, f"is not expected; the submission must hold exactly {' and '.join(required)}.",
                 "Remove it from the archive (also hidden files such as __MACOSX/ or .DS_Store).")


def _missing(container: str, names: list[str], required: tuple[str, ...], fix: str,
             problems: list[Problem]) -> list[Problem]:
    out = []
    for req in required:
        if req in names:
            continue
        if any(req in p.where for p in problems):
            continue  # already reported (wrong case, in a folder, too large)
        out.append(error(container, f"has no {req}.", fix))
    return out


def _open_folder(path: Path, required: tuple[str, ...],
                 limits: Limits) -> tuple[SubmissionSource | None, list[Problem]]:
    problems: list[Problem] = []
    names: list[str] = []
    entries = sorted(path.iterdir(), key=lambda p: p.name)
    if len(entries) > limits.max_members:
        problems.append(error(str(path), f"holds {len(entries)} entries; at most {limits.max_members} are allowed.",
                              f"Keep only {' and '.join(required)} in it."))
    total = 0
    for entry in entries:
        name = entry.name
        if entry.is_symlink():
            problems.append(error(f"{path.name}/{name}", "is a symbolic link; links are not allowed.",
                                  "Replace it with the real file."))
        elif entry.is_dir():
            problems.append(error(f"{path.name}/{name}", "is a folder; folders are not allowed.",
                                  f"Keep only {' and '.join(required)} in the submission folder."))
        elif name not in required:
            problems.append(_unexpected(path.name, name, required))
        else:
            size = entry.stat().st_size
            limit = limits.limit_for(name)
            if size > limit:
                problems.append(error(name, f"is {_human(size)}; the limit is {_human(limit)}.", "Shrink the file."))
            else:
                total += size
                names.append(name)
    if total > limits.max_total_bytes:
        problems.append(error(str(path), f"holds {_human(total)}; the limit is {_human(limits.max_total_bytes)}.",
                              "Shrink the files."))
    problems.extend(_missing(path.name, names, required, f"Put {' and '.join(required)} in the folder.", problems))
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
        return json.loads(text, parse_constant=lambda c: _NonFinite(c),
                          parse_float=_parse_float, object_pairs_hook=_pairs_hook)
    except json.JSONDecodeError as exc:
        raise SubmissionError([error(where, f"is not valid JSON: {exc.msg} at line {exc.lineno}, "
                                     f"column {exc.colno}.", fix_syntax)]) from exc
    except RecursionError as exc:
        raise SubmissionError([error(where, "is nested too deeply.", fix_syntax)]) from exc


def _parse_float(text: str) -> float:
    value = float(text)
    return value if math.isfinite(value) else _NonFinite(value)


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


def _latin1_encode(obj: str, encoding: str = "utf-8", errors: str = "strict") -> bytes:
    """Stand-in for ``_codecs.encode`` that numpy pickles of protocol < 3 need; text codecs only."""
    if encoding.lower().replace("-", "").replace("_", "") not in ("latin1", "iso88591", "utf8", "ascii"):
        raise pickle.UnpicklingError(f"codec {encoding!r} is not allowed")
    return obj.encode(encoding, errors)


class _NdarrayToken:
    """Stands for ``numpy.ndarray`` inside a pickle: usable by ``_reconstruct``, not callable itself."""


_MAX_RECONSTRUCT_ITEMS = 1 << 16


def _safe_reconstruct(subtype: Any, shape: Any, dtype: Any) -> Any:
    """``numpy`` array reconstruction restricted to plain ndarrays with a tiny placeholder shape."""
    import numpy as np

    if subtype is not _NdarrayToken:
        raise pickle.UnpicklingError("only numpy.ndarray may be reconstructed")
    items = 1
    for dim in (shape if isinstance(shape, tuple) else (shape,)):
        if not isinstance(dim, int) or dim < 0:
            raise pickle.UnpicklingError("bad array shape")
        items *= dim
    if items > _MAX_RECONSTRUCT_ITEMS:
        raise pickle.UnpicklingError("array placeholder too large")
    return np.ndarray.__new__(np.ndarray, shape, dtype)


def _safe_bytearray(*args: Any) -> bytearray:
    """``bytearray`` from bytes or text only (never from a size, which would allocate)."""
    if args and not isinstance(args[0], (bytes, str)):
        raise pickle.UnpicklingError("bytearray may only be built from bytes or text")
    return bytearray(*args)


def _allowed_globals() -> dict[tuple[str, str], Any]:
    import collections

    import numpy as np

    core = np._core if hasattr(np, "_core") else np.core  # type: ignore[attr-defined]
    table: dict[tuple[str, str], Any] = {
        ("builtins", "set"): set,
        ("builtins", "frozenset"): frozenset,
        ("builtins", "bytearray"): _safe_bytearray,
        ("builtins", "complex"): complex,
        ("__builtin__", "set"): set,
        ("__builtin__", "frozenset"): frozenset,
        ("collections", "OrderedDict"): collections.OrderedDict,
        ("_codecs", "encode"): _latin1_encode,
        ("numpy", "ndarray"): _NdarrayToken,
        ("numpy", "dtype"): np.dtype,
    }
    for mod in ("numpy.core", "numpy._core"):
        table[(f"{mod}.multiarray", "_reconstruct")] = _safe_reconstruct
        table[(f"{mod}.multiarray", "scalar")] = core.multiarray.scalar
        table[(f"{mod}.numeric", "_frombuffer")] = core.numeric._frombuffer
    return table


_ALLOWED: dict[tuple[str, str], Any] | None = None


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that reconstructs only plain containers, numbers, strings and numpy arrays."""

    def find_class(self, module: str, name: str) -> Any:  # noqa: D102
        global _ALLOWED
        if _ALLOWED is None:
            _ALLOWED = _allowed_globals()
        try:
            return _ALLOWED[(module, name)]
        except KeyError:
            raise _Refused(f"{module}.{name}") from None


class _Refused(pickle.UnpicklingError):
    def __init__(self, qualname: str):
        super().__init__(qualname)
        self.qualname = qualname


PICKLE_FIX = (
    "Pickle only a dict of dicts with plain numbers and numpy arrays: "
    "`pickle.dump({name: {'score': float(s), 'pred_area': mask.astype(np.uint8)}}, f)`."
)


def load_pickle_restricted(stream: BinaryIO, where: str) -> Any:
    """Unpickle from a stream with :class:`RestrictedUnpickler`; any refusal is a :class:`SubmissionError`."""
    try:
        return RestrictedUnpickler(stream).load()
    except SubmissionError:
        raise
    except _Refused as exc:
        hint = ""
        if exc.qualname.startswith("torch"):
            hint = " (a torch tensor: convert it with `.cpu().numpy()`)"
        raise SubmissionError([error(where, f"refused to load: the pickle asks for {exc.qualname!r}{hint}, which "
                                     "is not allowed; nothing in it was run.", PICKLE_FIX)]) from None
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError, KeyError,
            OverflowError, UnicodeDecodeError, MemoryError, RecursionError) as exc:
        raise SubmissionError([error(where, f"is not a readable pickle ({type(exc).__name__}: {str(exc)[:200]}).",
                                     PICKLE_FIX)]) from None
