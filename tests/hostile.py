"""A corpus of malformed and hostile submissions, built in code (no committed blobs).

Every builder writes into a folder it is given and returns the path of the submission.
Nothing here ever *loads* a hostile pickle: the dangerous ones are written with
``pickle.dumps`` of objects whose ``__reduce__`` names the callable (dumping only
records the name) or assembled opcode by opcode.
"""

from __future__ import annotations

import bz2
import functools
import io
import json
import pickle
import stat
import struct
import warnings
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from helpers import square_mask

README_OK = (
    "runtime per image [s] : 0.52\n"
    "CPU[1] / GPU[0] : 0\n"
    "Extra Data [1] / No Extra Data [0] : 0\n"
    "LLM[1] / Non-LLM[0] : 0\n"
    "Other description : hostile corpus test\n"
)

OUTPUT = {"align": "output.json", "structure": "output.pkl"}

# Reference values that must never appear in a message about a submission.
ALIGN_REF_TOTALS = [4.123456, 1.987654, 3.141593, 2.718282, 1.414214, 4.669202]
STRUCTURE_REF_SCORES = [4.234567, 1.876543, 3.314159, 2.828172]
SECRETS = [f"{v:.6f}" for v in ALIGN_REF_TOTALS + STRUCTURE_REF_SCORES] + ["4.12345", "4.23456"]

ELEMENTS = ["cat (animal)", "red (color)"]


# --------------------------------------------------------------------------- valid content


def align_reference() -> list[dict[str, Any]]:
    """eval.json records with distinctive totals."""
    return [{"img_path": f"M/{i:05d}.png", "prompt": "a red cat", "total_score": t,
             "element_score": {ELEMENTS[0]: 0.9 if i % 2 else 0.1, ELEMENTS[1]: 0.3 if i % 3 else 0.7}}
            for i, t in enumerate(ALIGN_REF_TOTALS)]


def align_records() -> list[dict[str, Any]]:
    """A valid Track 1 submission for :func:`align_reference`."""
    return [{"img_path": f"M/{i:05d}.png", "total_score": 0.1 * (i + 1) + (0.5 if i == 2 else 0.0),
             "element_score": {ELEMENTS[0]: 0.8 if i % 2 else 0.2, ELEMENTS[1]: 0.6}}
            for i in range(len(ALIGN_REF_TOTALS))]


def structure_reference() -> dict[str, dict[str, Any]]:
    """gt.pkl content with distinctive scores."""
    return {f"img{i}": {"score": s, "pred_area": square_mask(40 * i + 10, 40 * i + 10, 80)}
            for i, s in enumerate(STRUCTURE_REF_SCORES)}


def structure_preds(score_type: Callable[[float], Any] = float) -> dict[str, dict[str, Any]]:
    """A valid Track 2 submission for :func:`structure_reference`."""
    return {f"img{i}": {"score": score_type(1.0 + i), "pred_area": square_mask(35 * i + 10, 35 * i + 10, 70, 448)}
            for i in range(len(STRUCTURE_REF_SCORES))}


def write_references(folder: Path) -> dict[str, Path]:
    """Write eval.json and gt.pkl; return them by track."""
    folder.mkdir(parents=True, exist_ok=True)
    ev = folder / "eval.json"
    ev.write_text(json.dumps(align_reference()))
    gt = folder / "gt.pkl"
    gt.write_bytes(pickle.dumps(structure_reference(), protocol=4))
    return {"align": ev, "structure": gt}


def valid_output(track: str) -> bytes:
    """Valid bytes of the track's output file."""
    if track == "align":
        return json.dumps(align_records()).encode()
    return pickle.dumps(structure_preds(), protocol=4)


# --------------------------------------------------------------------------- zip building


Member = tuple["str | zipfile.ZipInfo", bytes]


def zip_bytes(members: list[Member], compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    """A zip archive (in memory) with the members in order; duplicate names allowed."""
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "Duplicate name"
        with zipfile.ZipFile(buf, "w", compression) as zf:
            for name, data in members:
                zf.writestr(name, data)
    return buf.getvalue()


def _central_entries(data: bytes) -> list[tuple[int, int, str]]:
    """(central header offset, local header offset, name) of every member of a zip we wrote."""
    eocd = data.rindex(b"PK\x05\x06")
    count, _, cd_offset = struct.unpack("<HII", data[eocd + 10:eocd + 20])
    out = []
    pos = cd_offset
    for _ in range(count):
        assert data[pos:pos + 4] == b"PK\x01\x02"
        nlen, xlen, clen = struct.unpack("<HHH", data[pos + 28:pos + 34])
        local = struct.unpack("<I", data[pos + 42:pos + 46])[0]
        out.append((pos, local, data[pos + 46:pos + 46 + nlen].decode()))
        pos += 46 + nlen + xlen + clen
    return out


def patch_zip(data: bytes, name: str, *, flag_or: int = 0, file_size: int | None = None,
              crc: int | None = None, compress_size: int | None = None, local_offset_of: str | None = None) -> bytes:
    """Patch the headers of member ``name``: flag bits, declared size, CRC (central and local);
    compressed size and the local header it points to (central only)."""
    out = bytearray(data)
    entries = _central_entries(data)
    for central, local, member in entries:
        if member != name:
            continue
        if compress_size is not None:
            struct.pack_into("<I", out, central + 20, compress_size)
        if local_offset_of is not None:
            struct.pack_into("<I", out, central + 42, next(lo for _, lo, m in entries if m == local_offset_of))
        for flags_at, crc_at, usize_at in ((central + 8, central + 16, central + 24),
                                           (local + 6, local + 14, local + 22)):
            flags = struct.unpack_from("<H", out, flags_at)[0]
            struct.pack_into("<H", out, flags_at, flags | flag_or)
            if crc is not None:
                struct.pack_into("<I", out, crc_at, crc)
            if file_size is not None:
                struct.pack_into("<I", out, usize_at, file_size)
    return bytes(out)


def deflate_offset(data: bytes, name: str) -> int:
    """Offset of the compressed data of member ``name``."""
    for _, local, member in _central_entries(data):
        if member == name:
            nlen, xlen = struct.unpack("<HH", data[local + 26:local + 30])
            return local + 30 + nlen + xlen
    raise KeyError(name)


def submission(track: str, output: bytes | None = None, readme: bytes | str | None = README_OK,
               extra: list[Member] = ()) -> list[Member]:
    """The members of a submission: output file (valid unless given), readme, extras."""
    members: list[Member] = []
    members.append((OUTPUT[track], valid_output(track) if output is None else output))
    if readme is not None:
        members.append(("readme.txt", readme.encode() if isinstance(readme, str) else readme))
    members.extend(extra)
    return members


@functools.cache
def bz2_zeros(n: int) -> bytes:
    """bz2 of ``n`` zero bytes (a few hundred bytes for hundreds of MiB)."""
    return bz2.compress(b"\0" * n, 9)


def _assemble(entries: list[tuple[str, bytes, int, int, int]]) -> bytes:
    """A zip assembled by hand from (name, already compressed payload, method, declared size, CRC)."""
    out = bytearray()
    central = bytearray()
    for name, payload, method, usize, crc in entries:
        raw = name.encode()
        offset = len(out)
        out += struct.pack("<4sHHHHHIIIHH", b"PK\x03\x04", 46, 0, method, 0, 0x21, crc, len(payload), usize,
                           len(raw), 0) + raw + payload
        central += struct.pack("<4sHHHHHHIIIHHHHHII", b"PK\x01\x02", 0x031E, 46, 0, method, 0, 0x21, crc,
                               len(payload), usize, len(raw), 0, 0, 0, 0, 0o100644 << 16, offset) + raw
    eocd = struct.pack("<4sHHHHIIH", b"PK\x05\x06", 0, 0, len(entries), len(entries), len(central), len(out), 0)
    return bytes(out + central + eocd)


# --------------------------------------------------------------------------- pickles


class _Reduce:
    """Pickles as ``func(*args)`` without ever calling it here."""

    def __init__(self, func: Any, args: tuple[Any, ...]):
        self.func, self.args = func, args

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        return self.func, self.args


def reduce_pickle(func: Any, *args: Any, protocol: int = 4, wrap: bool = True) -> bytes:
    """A pickle that would call ``func(*args)``; inside a valid-looking dict when ``wrap``."""
    payload: Any = _Reduce(func, args)
    if wrap:
        payload = {"img0": {"score": 1.0, "pred_area": payload}}
    return pickle.dumps(payload, protocol=protocol)


def global_call(module: str, name: str, args: bytes = b")") -> bytes:
    """Protocol-2 opcodes for ``module.name(*args)``; ``args`` are opcodes that push the argument tuple."""
    return b"\x80\x02c" + module.encode() + b"\n" + name.encode() + b"\n" + args + b"R."


def push(obj: Any) -> bytes:
    """Opcodes that push a plain value (protocol 2, without PROTO and STOP)."""
    return pickle.dumps(obj, protocol=2)[2:-1]


def args_tuple(*args: bytes) -> bytes:
    """Opcodes for a tuple of already-encoded items."""
    return b"(" + b"".join(args) + b"t"


def entry_with(pred_area_ops: bytes) -> bytes:
    """``{"img0": {"score": 1.0, "pred_area": <ops>}}`` around opcodes that push the mask."""
    return (b"\x80\x02}(" + push("img0") + b"}(" + push("score") + push(1.0) + push("pred_area") + pred_area_ops
            + b"uu.")


def dtype_ops(spec: str, state: tuple[Any, ...] | None = None) -> bytes:
    """Opcodes for ``numpy.dtype(spec)``, with ``__setstate__(state)`` when given."""
    ops = b"cnumpy\ndtype\n" + args_tuple(push(spec), push(False), push(True)) + b"R"
    return ops + (push(state) + b"b" if state is not None else b"")


def array_ops(dtype: bytes, shape: tuple[int, ...], data: Any) -> bytes:
    """Opcodes for an ndarray rebuilt as numpy pickles it: ``_reconstruct`` then BUILD with the state."""
    recon = b"cnumpy.core.multiarray\n_reconstruct\n" + args_tuple(b"cnumpy\nndarray\n", push((0,)), push(b"b")) + b"R"
    return recon + b"(" + push(1) + push(shape) + dtype + push(False) + push(data) + b"tb"


def deep_tuple_key(depth: int) -> bytes:
    """A dict whose key is a tuple nested ``depth`` levels (hashing it recurses in C)."""
    return b"\x80\x02}K\x01" + b"\x85" * depth + b"K\x02s."


@dataclass
class Case:
    """One hostile submission: how to build it and what the message must mention."""

    id: str
    track: str
    build: Callable[[Path], Path]
    expect: str  # regular expression the output must match (case-insensitive)
    fix: bool = True  # the message must carry a fix
    marker: bool = False  # the builder plants a side-effect marker path (tmp/marker)
    tags: set[str] = field(default_factory=set)


# --------------------------------------------------------------------------- the corpus


def _writer(make: Callable[[Path], bytes], name: str = "submission.zip") -> Callable[[Path], Path]:
    def build(tmp: Path) -> Path:
        path = tmp / name
        path.write_bytes(make(tmp))
        return path
    return build


def marker_of(tmp: Path) -> Path:
    """Where a hostile pickle would leave its side effect."""
    return tmp / "PWNED"


def _symlink_member(name: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name)
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    return info


def _corrupt(data: bytes, name: str) -> bytes:
    at = deflate_offset(data, name) + 8
    out = bytearray(data)
    for i in range(at, at + 16):
        out[i] ^= 0x5A
    return bytes(out)


def structural_cases(track: str) -> list[Case]:
    """Archive-level problems, for either track."""
    out = OUTPUT[track]
    readme = ("readme.txt", README_OK.encode())
    body = valid_output(track)

    def valid() -> bytes:
        return zip_bytes(submission(track))

    def case(id: str, make: Callable[[Path], bytes], expect: str, **kw: Any) -> Case:
        return Case(f"{track}-{id}", track, _writer(make), expect, **kw)

    many = [(f"extra{i}.txt", b"x") for i in range(7)]
    return [
        case("not-a-zip", lambda t: b"this is not a zip\n", r"not a zip"),
        case("zip-magic-only", lambda t: b"PK\x03\x04 this is not really a zip\n", r"truncated or damaged"),
        case("empty-file", lambda t: b"", r"not a zip"),
        case("truncated-half", lambda t: valid()[: len(valid()) // 2], r"truncated or damaged"),
        case("truncated-tail", lambda t: valid()[:-7], r"truncated or damaged"),
        case("folder-entry", lambda t: zip_bytes(submission(track, extra=[("sub/", b"")])), r"folder"),
        case("member-in-folder", lambda t: zip_bytes([(f"sub/{out}", body), readme]), r"folder"),
        case("dotdot-path", lambda t: zip_bytes([(f"../{out}", body), readme]), r"\.\."),
        case("absolute-path", lambda t: zip_bytes([(f"/{out}", body), readme]), r"absolute"),
        case("backslash-path", lambda t: zip_bytes([(f"sub\\{out}", body), readme]), r"folder"),
        case("symlink-member", lambda t: zip_bytes([(_symlink_member(out), b"/etc/passwd"), readme]),
             r"symbolic link"),
        case("encrypted-flag", lambda t: patch_zip(valid(), out, flag_or=0x1), r"encrypted"),
        case("too-many-members", lambda t: zip_bytes(submission(track, extra=many)), r"9 members"),
        case("macosx-member", lambda t: zip_bytes(submission(track, extra=[(f"__MACOSX/._{out}", b"\0" * 8)])),
             r"__MACOSX"),
        case("macosx-instead-of-output", lambda t: zip_bytes([(f"__MACOSX/._{out}", b"\0" * 8), readme]),
             rf"__MACOSX[\s\S]*has no {out}"),
        case("ds-store-member", lambda t: zip_bytes(submission(track, extra=[(".DS_Store", b"\0" * 8)])),
             r"DS_Store"),
        case("missing-readme", lambda t: zip_bytes(submission(track, readme=None)), r"readme\.txt"),
        case("missing-output", lambda t: zip_bytes([readme]), rf"has no {out}"),
        case("wrong-case", lambda t: zip_bytes([(out.capitalize(), body), readme]), r"letter case"),
        case("duplicate-member", lambda t: zip_bytes(submission(track, extra=[(out, body)])), r"twice"),
        case("declared-size-lie",
             lambda t: patch_zip(zip_bytes(submission(track, output=body + b" " * (4 << 20))), out, file_size=1000),
             r"damaged|checksum|declare|decompress"),
        case("readme-declared-size-lie",
             lambda t: patch_zip(zip_bytes(submission(track, readme=README_OK + " " * (1 << 20))), "readme.txt",
                                 file_size=100),
             r"readme\.txt.*(damaged|checksum|declare|decompress|limit)"),
        case("bz2-ratio", lambda t: zip_bytes(submission(track, output=body + b" " * (8 << 20)), zipfile.ZIP_BZIP2),
             r"fold"),
        case("lzma-ratio",
             lambda t: zip_bytes(submission(track, output=body + b" " * (16 << 20)), zipfile.ZIP_LZMA), r"fold"),
        case("bz2-bomb-disguised",
             lambda t: _assemble([(out, bz2_zeros(64 << 20), zipfile.ZIP_BZIP2, 100, 0),
                                  ("readme.txt", README_OK.encode(), 0, len(README_OK), _crc(README_OK.encode()))]),
             r"damaged|checksum|declare|decompress|limit"),
        case("bad-crc", lambda t: patch_zip(valid(), out, crc=0xDEADBEEF), r"checksum|crc"),
        case("corrupt-deflate", lambda t: _corrupt(valid(), out), r"damaged|checksum|crc|decompress"),
        case("unsupported-method",
             lambda t: _assemble([(out, body, 99, len(body), _crc(body)),
                                  ("readme.txt", README_OK.encode(), 0, len(README_OK), _crc(README_OK.encode()))]),
             r"compression"),
        case("empty-output", lambda t: zip_bytes(submission(track, output=b"")),
             r"not valid JSON|not a readable pickle"),
        case("local-header-of-another-member",
             lambda t: patch_zip(zip_bytes(submission(track), zipfile.ZIP_STORED), "readme.txt", local_offset_of=out),
             r"readme\.txt: is damaged: its local header names a different file"),
        case("compressed-size-past-the-end",
             lambda t: patch_zip(valid(), out, compress_size=0x7FFFFFFF), r"is damaged"),
        case("lzma-bad-properties",
             lambda t: _assemble([(out, b"\x09\x14\x05\x00\xff\xff\xff\xff\xff" + body, zipfile.ZIP_LZMA,
                                   len(body), _crc(body)),
                                  ("readme.txt", README_OK.encode(), 0, len(README_OK), _crc(README_OK.encode()))]),
             r"is damaged"),
        case("readme-over-limit", lambda t: zip_bytes(submission(track, readme=README_OK + " " * (65 * 1024))),
             r"readme\.txt: is 65\.\d KiB uncompressed; the limit is 64\.0 KiB"),
        case("nul-in-name",
             lambda t: _assemble([(out + "\x00.txt", body, 0, len(body), _crc(body)),
                                  ("readme.txt", README_OK.encode(), 0, len(README_OK), _crc(README_OK.encode()))]),
             r"invalid file name"),
        case("thousands-of-members",
             lambda t: zip_bytes(submission(track, extra=[(f"junk/{i}.txt", b"") for i in range(3000)]),
                                 zipfile.ZIP_STORED),
             r"3002 members[\s\S]*more problems"),
        case("other-track-output",
             lambda t: zip_bytes([(OUTPUT["structure" if track == "align" else "align"],
                                   valid_output("structure" if track == "align" else "align")), readme]),
             r"output file of the " + ("structure" if track == "align" else "align") + " track"),
        case("readme-missing-lines", lambda t: zip_bytes(submission(track, readme=README_OK.split("Extra")[0])),
             r"line 3"),
        case("readme-wrong-value",
             lambda t: zip_bytes(submission(track, readme=README_OK.replace("GPU[0] : 0", "GPU[0] : yes"))),
             r"'yes'"),
        case("readme-not-utf8", lambda t: zip_bytes(submission(track, readme=b"runtime per image \xff\xfe : 1\n")),
             r"UTF-8"),
    ]


def _crc(data: bytes) -> int:
    import zlib

    return zlib.crc32(data)


def _json_with(**replace: str) -> bytes:
    """Valid records as JSON text, with ``"__KEY__"`` placeholders replaced by raw JSON text."""
    recs = align_records()
    recs[1]["total_score"] = "__TOTAL__"
    recs[1]["element_score"][ELEMENTS[0]] = "__ELEMENT__"
    text = json.dumps(recs)
    text = text.replace('"__TOTAL__"', replace.get("total", "0.5"))
    return text.replace('"__ELEMENT__"', replace.get("element", "0.5")).encode()


def _nested(depth: int) -> str:
    return "[" * depth + "]" * depth


def json_cases() -> list[Case]:
    """Track 1: problems inside output.json."""
    recs = align_records()

    def case(id: str, content: Callable[[], bytes], expect: str, **kw: Any) -> Case:
        return Case(f"align-json-{id}", "align",
                    _writer(lambda t: zip_bytes(submission("align", output=content()))), expect, **kw)

    def with_recs(edit: Callable[[list[dict[str, Any]]], Any]) -> Callable[[], bytes]:
        def make() -> bytes:
            r = align_records()
            out = edit(r)
            return json.dumps(out if isinstance(out, list) else r).encode()
        return make

    cases = [
        case("not-utf8", lambda: json.dumps([{**recs[0], "img_path": "caf\xe9"}], ensure_ascii=False).encode("latin-1"),
             r"not UTF-8"),
        case("utf16", lambda: json.dumps(recs).encode("utf-16"), r"not UTF-8"),
        case("syntax-error", lambda: b'[{"img_path": "M/00000.png",}]', r"not valid JSON"),
        case("truncated", lambda: json.dumps(recs).encode()[:100], r"not valid JSON"),
        case("top-level-object", lambda: json.dumps({r["img_path"]: r for r in recs}).encode(), r"list"),
        case("top-level-string", lambda: b'"hello"', r"list"),
        case("empty-list", lambda: b"[]", r"no records"),
        case("deep-nesting", lambda: _nested(100_000).encode(), r"nested too deeply"),
        case("deep-nesting-in-value", lambda: _json_with(total=_nested(900)), r"total_score"),
        case("record-not-object", with_recs(lambda r: [1, "x", None] + r), r"record 0.*not an object"),
        case("missing-img-path", with_recs(lambda r: r[0].pop("img_path")), r"has no 'img_path'"),
        case("missing-total", with_recs(lambda r: r[0].pop("total_score")), r"has no 'total_score'"),
        case("missing-elements", with_recs(lambda r: r[0].pop("element_score")), r"has no 'element_score'"),
        case("img-path-int", with_recs(lambda r: r[0].update(img_path=7)), r"img_path"),
        case("element-score-list", with_recs(lambda r: r[0].update(element_score=[0.5])), r"element_score"),
        case("duplicate-img-path", with_recs(lambda r: r.append(dict(r[0]))), r"repeats the img_path"),
        case("duplicate-key-in-record",
             lambda: json.dumps(recs).replace('"total_score": 0.1,', '"total_score": 0.1, "total_score": 0.2,',
                                              1).encode(),
             r"repeats key"),
        case("duplicate-key-in-elements",
             lambda: json.dumps(recs).replace('"cat (animal)": 0.2,', '"cat (animal)": 0.2, "cat (animal)": 0.9,',
                                              1).encode(),
             r"repeats key"),
        case("surrogate-path-nan", lambda: b'[{"img_path": "\\ud800[/x]", "total_score": NaN, "element_score": {}}]',
             r"total_score"),
        case("markup-in-path", lambda: b'[{"img_path": "[/bold] \\\\[red]x", "total_score": NaN, '
                                       b'"element_score": {}}]', r"total_score"),
    ]
    for token in ("NaN", "Infinity", "-Infinity", "1e999", "-1e999"):
        cases.append(case(f"total-{token}", lambda tok=token: _json_with(total=tok), r"'total_score'.*finite"))
        cases.append(case(f"element-{token}", lambda tok=token: _json_with(element=tok),
                          r"element 'cat \(animal\)'.*finite"))
    for label, raw in (("string", '"3.2"'), ("bool", "true"), ("null", "null"), ("list", "[1, 2]"),
                       ("object", '{"a": 1}'), ("huge-int", str(10**400)), ("giant-int", "9" * 5000)):
        cases.append(case(f"total-{label}", lambda raw=raw: _json_with(total=raw), r"'total_score'"))
        cases.append(case(f"element-{label}", lambda raw=raw: _json_with(element=raw), r"element 'cat \(animal\)'"))
    return cases


def _entry(**kw: Any) -> dict[str, Any]:
    e = {"score": 2.0, "pred_area": square_mask(10, 10, 70, 448)}
    e.update(kw)
    return {k: v for k, v in e.items() if v is not _DROP}


_DROP = object()


def pickle_content_cases() -> list[Case]:
    """Track 2: problems inside output.pkl, hostile pickles included."""
    import os
    import subprocess

    def case(id: str, content: Callable[[Path], bytes], expect: str, **kw: Any) -> Case:
        return Case(f"structure-pkl-{id}", "structure",
                    _writer(lambda t: zip_bytes(submission("structure", output=content(t)))), expect, **kw)

    def preds(**entry: Any) -> Callable[[Path], bytes]:
        def make(t: Path) -> bytes:
            p = structure_preds()
            p["img1"] = _entry(**entry)
            return pickle.dumps(p, protocol=4)
        return make

    nd = b"cnumpy\nndarray\n"
    refused = r"refused to load.*nothing in it was run"
    return [
        # code execution attempts: refused before anything runs
        case("os-system", lambda t: reduce_pickle(os.system, f"touch {marker_of(t)}"), rf"{refused}", marker=True),
        case("os-system-top-level", lambda t: reduce_pickle(os.system, f"touch {marker_of(t)}", wrap=False),
             refused, marker=True),
        case("os-system-protocol0", lambda t: reduce_pickle(os.system, f"touch {marker_of(t)}", protocol=0),
             refused, marker=True),
        case("builtins-eval", lambda t: reduce_pickle(eval, f"open({str(marker_of(t))!r}, 'w')"),
             r"builtins\.eval", marker=True),
        case("builtins-exec", lambda t: reduce_pickle(exec, f"open({str(marker_of(t))!r}, 'w')"),
             r"builtins\.exec", marker=True),
        case("subprocess-popen", lambda t: reduce_pickle(subprocess.Popen, ["touch", str(marker_of(t))]),
             r"subprocess\.Popen", marker=True),
        case("builtins-getattr", lambda t: global_call("builtins", "getattr", args_tuple(push("a"), push("upper"))),
             r"builtins\.getattr"),
        case("numpy-load", lambda t: global_call("numpy", "load", args_tuple(push(str(marker_of(t))))),
             r"numpy\.load"),
        case("main-class", lambda t: b"\x80\x02c__main__\nEvil\n)\x81.", r"__main__\.Evil"),
        case("inst-opcode", lambda t: b"(S'touch " + str(marker_of(t)).encode() + b"'\nios\nsystem\n.",
             r"os\.system", marker=True),
        case("copyreg-reconstructor", lambda t: global_call("copy_reg", "_reconstructor", b")"), r"copy_reg"),
        case("torch-tensor", lambda t: global_call("torch._utils", "_rebuild_tensor_v2", b")"), r"torch"),
        case("codecs-non-text", lambda t: global_call("_codecs", "encode", args_tuple(push("x"), push("zlib_codec"))),
             r"codec"),
        case("reconstruct-giant-shape",
             lambda t: global_call("numpy.core.multiarray", "_reconstruct",
                                   args_tuple(nd, push((10**12,)), push(b"b"))), r"pickle"),
        case("reconstruct-giant-dtype",
             lambda t: global_call("numpy.core.multiarray", "_reconstruct",
                                   args_tuple(nd, push((1,)),
                                              b"cnumpy\ndtype\n" + args_tuple(push(("u1", (10**6, 10**6)))) + b"R")),
             r"pickle"),
        case("bytearray-giant", lambda t: global_call("builtins", "bytearray", args_tuple(push(10**12))), r"bytearray"),
        case("ndarray-direct", lambda t: global_call("numpy", "ndarray", args_tuple(push((10**12,)), push("u1"))),
             r"pickle"),
        case("binbytes8-huge-length", lambda t: b"\x80\x04\x8e" + struct.pack("<Q", 2**62) + b"xx", r"pickle"),
        case("persistent-id", lambda t: b"\x80\x02X\x01\x00\x00\x00xQ.", r"pickle"),
        case("extension-code", lambda t: b"\x80\x02\x82\x01.", r"pickle"),
        # crafted to crash CPython or numpy (segfault) if they reached the C code
        case("deep-tuple-key", lambda t: deep_tuple_key(300_000), r"nested more than 100 levels", tags={"crashes"}),
        case("object-array-short-list", lambda t: entry_with(array_ops(dtype_ops("O"), (1_000_000,), [1])),
             r"dtype 'object' is not allowed", tags={"crashes"}),
        case("dtype-flags-list-pickle",
             lambda t: entry_with(array_ops(dtype_ops("V8", (3, "|", None, None, None, 8, 1, 0x03)), (100_000,),
                                            [b"a" * 8])), r"not allowed", tags={"crashes"}),
        case("dtype-flags-refcount",
             lambda t: entry_with(array_ops(dtype_ops("u8", (3, "<", None, None, None, -1, -1, 0x3F)), (448, 56),
                                            b"\x41" * (448 * 56 * 8))), r"image 'img0'.*int64|pickle",
             tags={"crashes"}),
        case("structured-dtype",
             lambda t: entry_with(array_ops(dtype_ops("V2", (3, "|", None, ("a",), {"a": (None, 0)}, 2, 1, 0)),
                                            (2,), b"abcd")), r"structured", tags={"crashes"}),
        case("object-dtype-scalar",
             lambda t: entry_with(b"cnumpy.core.multiarray\nscalar\n" + args_tuple(dtype_ops("O"), push([1])) + b"R"),
             r"dtype 'object' is not allowed"),
        case("memo-index-bomb", lambda t: b"\x80\x02Nr" + (1 << 24).to_bytes(4, "little") + b".", r"memo index"),
        case("deep-frozenset-chain", lambda t: b"\x80\x04" + b"(K\x01\x91" * 2000 + b".", r"must hold a dict"),
        # malformed
        case("garbage", lambda t: b"\x00garbage bytes\xff", r"not a readable pickle"),
        case("empty", lambda t: b"", r"not a readable pickle"),
        case("truncated", lambda t: valid_output("structure")[:300], r"not a readable pickle"),
        case("list-top-level", lambda t: pickle.dumps([1, 2]), r"must hold a dict"),
        case("non-string-keys", lambda t: pickle.dumps({1: _entry(), (1, 2): _entry(), b"x": _entry()}),
             r"key 1.*strings"),
        case("entry-not-dict", lambda t: pickle.dumps({**structure_preds(), "img1": [1.0]}), r"img1"),
        case("no-score", preds(score=_DROP), r"has no 'score'"),
        case("no-pred-area", preds(pred_area=_DROP), r"has no 'pred_area'"),
        case("pred-area-list", preds(pred_area=[[0, 1], [1, 0]]), r"numpy array"),
        case("pred-area-bool", preds(pred_area=np.ones((448, 448), bool)), r"boolean"),
        case("pred-area-1hw", preds(pred_area=np.ones((1, 448, 448), np.uint8)), r"\(1, 448, 448\)"),
        case("pred-area-int64", preds(pred_area=np.ones((448, 448), np.int64)), r"int64"),
        case("pred-area-object", preds(pred_area=np.array([[1, None]], dtype=object)), r"object"),
        case("pred-area-nan", preds(pred_area=np.full((448, 448), np.nan, np.float32)), r"NaN"),
        case("pred-area-1d", preds(pred_area=np.ones(448, np.uint8)), r"2-D"),
        case("pred-area-empty", preds(pred_area=np.ones((0, 448), np.uint8)), r"empty"),
        case("score-nan", preds(score=float("nan")), r"'score'"),
        case("score-inf-np", preds(score=np.float32("inf")), r"'score'"),
        case("score-str", preds(score="3.2"), r"'score'"),
        case("score-none", preds(score=None), r"'score'"),
        case("score-huge-int", preds(score=10**400), r"'score'"),
        case("empty-dict", lambda t: pickle.dumps({}), r"no images"),
    ]


def folder_cases() -> list[Case]:
    """Unpacked-folder submissions (the validator accepts a folder too)."""
    def folder(files: dict[str, bytes], links: dict[str, str] | None = None, dirs: list[str] = (),
               fifos: list[str] = ()) -> Callable[[Path], Path]:
        def build(tmp: Path) -> Path:
            import os

            root = tmp / "sub_folder"
            root.mkdir()
            for name, data in files.items():
                (root / name).write_bytes(data)
            for name, target in (links or {}).items():
                (root / name).symlink_to(target)
            for name in dirs:
                (root / name).mkdir()
            for name in fifos:
                os.mkfifo(root / name)
            return root
        return build

    secret = "/etc/hostname"
    return [
        Case("align-folder-symlink", "align", folder({"readme.txt": README_OK.encode()}, {"output.json": secret}),
             r"symbolic link"),
        Case("align-folder-subfolder", "align",
             folder({"readme.txt": README_OK.encode(), "output.json": valid_output("align")}, dirs=["nested"]),
             r"folder"),
        Case("align-folder-fifo", "align", folder({"readme.txt": README_OK.encode()}, fifos=["output.json"]),
             r"regular file", tags={"hangs"}),
    ]


def corpus() -> list[Case]:
    """Every hostile case."""
    return (structural_cases("align") + structural_cases("structure") + json_cases() + pickle_content_cases()
            + folder_cases())
