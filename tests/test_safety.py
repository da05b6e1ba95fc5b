"""Hostile and malformed submissions: each gives a clear error (exit 1, no traceback, a fix),
nothing in it runs, nothing is written, and no reference value leaks into a message.

The corpus is built in code by ``tests/hostile.py``. Cases that crashed the interpreter
(segfault) or hung before they were fixed run in child processes only, so a regression
fails one test instead of killing the test session.
"""

from __future__ import annotations

import io
import json
import os
import pickle
import re
import resource
import shutil
import subprocess
import sys
import textwrap
import tracemalloc
import zipfile
from pathlib import Path
from typing import Any

import hostile
import numpy as np
import pytest
from click.testing import CliRunner

from ntire_t2iqa import score, validate
from ntire_t2iqa.archive import Limits, MiB, load_json_strict, load_pickle_restricted, open_submission
from ntire_t2iqa.cli import main
from ntire_t2iqa.errors import SubmissionError

CASES = hostile.corpus()
ISOLATED = {"crashes", "hangs"}
IN_PROCESS = [c for c in CASES if not c.tags & ISOLATED]
CHILD_ONLY = [c for c in CASES if c.tags & ISOLATED]
CLI = [sys.executable, "-m", "ntire_t2iqa.cli"]


@pytest.fixture(scope="module")
def refs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return hostile.write_references(tmp_path_factory.mktemp("refs"))


def _files(*roots: Path) -> dict[str, tuple[int, int]]:
    """Every file under the roots with its size and mtime."""
    out = {}
    for root in roots:
        for dirpath, dirnames, filenames in os.walk(root):
            for name in filenames + dirnames:
                p = Path(dirpath) / name
                st = p.lstat()
                out[str(p)] = (st.st_size, st.st_mtime_ns)
    return out


def _assert_refused(output: str, code: int, case: hostile.Case, how: str) -> None:
    assert code == 1, f"{case.id} ({how}): exit {code}\n{output}"
    assert "Traceback" not in output, f"{case.id} ({how}): traceback\n{output}"
    assert re.search(case.expect, output, re.I | re.S), f"{case.id} ({how}): no /{case.expect}/ in\n{output}"
    if case.fix:
        assert re.search(r"\bfix\b", output, re.I), f"{case.id} ({how}): no fix in\n{output}"
    for secret in hostile.SECRETS:
        assert secret not in output, f"{case.id} ({how}): reference value {secret} leaked\n{output}"


def _invoke(args: list[str]) -> tuple[int, str]:
    res = CliRunner().invoke(main, args)
    if res.exception is not None and not isinstance(res.exception, SystemExit):
        import traceback

        raise AssertionError("uncaught exception:\n" + "".join(traceback.format_exception(*res.exc_info)))
    return res.exit_code, res.output


def _json_errors(output: str) -> list[dict[str, str]]:
    data = json.loads(output)
    assert data.get("valid") is False
    return data["errors"]


# --------------------------------------------------------------------------- the corpus through the CLI


@pytest.mark.parametrize("case", IN_PROCESS, ids=lambda c: c.id)
def test_hostile_submission_is_refused(case: hostile.Case, tmp_path: Path, refs: dict[str, Path],
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # anything written relative to the working folder would show up here
    sub = case.build(tmp_path)
    before = _files(tmp_path, refs[case.track].parent)
    ref = str(refs[case.track])
    for how, args in (("validate", ["validate", "--track", case.track, str(sub)]),
                      ("score", ["score", "--track", case.track, "--ref", ref, str(sub)])):
        code, output = _invoke(args)
        _assert_refused(output, code, case, how)
    code, output = _invoke(["validate", "--track", case.track, "--json", str(sub)])
    assert code == 1 and "Traceback" not in output, f"{case.id} (validate --json)\n{output}"
    errors = _json_errors(output)
    text = "\n".join(f"{e['where']}: {e['what']}" for e in errors)
    assert re.search(case.expect, text, re.I | re.S), f"{case.id} (validate --json): no /{case.expect}/ in\n{text}"
    if case.fix:
        assert all(e["fix"] for e in errors), f"{case.id} (validate --json): an error without a fix\n{output}"
    assert not hostile.marker_of(tmp_path).exists(), f"{case.id}: the payload ran"
    assert _files(tmp_path, refs[case.track].parent) == before, f"{case.id}: something was written"


_DRIVER = textwrap.dedent("""
    import json, sys
    from ntire_t2iqa import validate
    for track, path in json.loads(sys.argv[1]):
        print("START", path, flush=True)
        report = validate(path, track)
        print("RESULT", json.dumps([p.to_dict() for p in report.errors]), flush=True)
""")


def _limit_memory() -> None:  # pragma: no cover - runs in the child
    limit = 2 << 30
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def test_crash_cases_in_a_child_process(tmp_path: Path) -> None:
    """Pickles that segfaulted CPython/numpy and a folder whose named pipe hung the reader, in one child."""
    runnable = [c for c in CHILD_ONLY if hasattr(os, "mkfifo") or "hangs" not in c.tags]
    jobs = []
    for case in runnable:
        folder = tmp_path / case.id
        folder.mkdir()
        jobs.append((case.track, str(case.build(folder))))
    try:
        proc = subprocess.run([sys.executable, "-c", _DRIVER, json.dumps(jobs)], capture_output=True, text=True,
                              timeout=60, preexec_fn=_limit_memory, cwd=tmp_path)
    except subprocess.TimeoutExpired as exc:
        out = exc.stdout.decode() if isinstance(exc.stdout, bytes) else (exc.stdout or "")
        pytest.fail(f"child hung after: {[ln for ln in out.splitlines() if ln.startswith('START')][-1:]}")
    lines = proc.stdout.splitlines()
    results = [json.loads(line[len("RESULT "):]) for line in lines if line.startswith("RESULT ")]
    if len(results) < len(runnable):
        started = [line for line in lines if line.startswith("START ")]
        pytest.fail(f"child died (exit {proc.returncode}) on {started[-1] if started else '?'}\n{proc.stderr[-2000:]}")
    assert proc.returncode == 0, proc.stderr[-2000:]
    for case, errors in zip(runnable, results):
        text = "\n".join(f"{e['where']}: {e['what']} fix: {e['fix']}" for e in errors)
        assert errors and re.search(case.expect, text, re.I | re.S), f"{case.id}:\n{text}"


def test_deep_tuple_pickle_through_the_real_cli(tmp_path: Path) -> None:
    """`python -m ntire_t2iqa.cli validate` on a pickle whose dict key nests 300000 tuples (segfaulted)."""
    case = next(c for c in CASES if c.id == "structure-pkl-deep-tuple-key")
    sub = case.build(tmp_path)
    proc = subprocess.run([*CLI, "validate", "--track", "structure", str(sub)], capture_output=True, text=True,
                          timeout=60, preexec_fn=_limit_memory, cwd=tmp_path)
    _assert_refused(proc.stdout + proc.stderr, proc.returncode, case, "subprocess")


def test_os_system_pickle_through_the_installed_script(tmp_path: Path, refs: dict[str, Path]) -> None:
    """The console script, scoring a pickle that would run `touch`: refused, no file anywhere, no temp files."""
    script = Path(sys.executable).with_name("ntire-t2iqa")
    if not script.exists():
        pytest.skip("console script not installed next to the interpreter")
    case = next(c for c in CASES if c.id == "structure-pkl-os-system")
    work = tmp_path / "work"
    work.mkdir()
    sub = case.build(work)
    home, tmpdir = tmp_path / "home", tmp_path / "tmp"
    home.mkdir()
    tmpdir.mkdir()
    env = {**os.environ, "HOME": str(home), "TMPDIR": str(tmpdir)}
    before = _files(work)
    proc = subprocess.run([str(script), "score", "--track", "structure", "--ref", str(refs["structure"]), str(sub)],
                          capture_output=True, text=True, timeout=60, cwd=work, env=env)
    _assert_refused(proc.stdout + proc.stderr, proc.returncode, case, "script")
    assert not hostile.marker_of(work).exists()
    assert _files(work) == before
    assert not any(home.iterdir()) and not any(tmpdir.iterdir()), "files written to HOME or TMPDIR"


# --------------------------------------------------------------------------- several problems at once


def test_every_bad_record_is_reported(tmp_path: Path) -> None:
    recs = hostile.align_records()
    recs[0]["total_score"] = "high"
    recs[2]["element_score"] = {hostile.ELEMENTS[0]: None, hostile.ELEMENTS[1]: 0.5}
    recs[4] = "not a record"
    text = json.dumps(recs).replace('"total_score": 0.2', '"total_score": NaN')  # record 1
    sub = tmp_path / "s.zip"
    sub.write_bytes(hostile.zip_bytes(hostile.submission("align", output=text.encode())))
    code, output = _invoke(["validate", "--track", "align", "--json", str(sub)])
    assert code == 1
    where = [e["where"] for e in _json_errors(output)]
    assert len(where) == 4, where
    for i in (0, 1, 2, 4):
        assert any(f"record {i}" in w for w in where), (i, where)


def test_archive_readme_and_output_problems_together(tmp_path: Path) -> None:
    members = [("output.json", b"[{]"), ("readme.txt", b"CPU[1] / GPU[0] : yes\n"), (".DS_Store", b"x")]
    sub = tmp_path / "s.zip"
    sub.write_bytes(hostile.zip_bytes(members))
    code, output = _invoke(["validate", "--track", "align", "--json", str(sub)])
    assert code == 1
    text = "\n".join(e["where"] + ": " + e["what"] for e in _json_errors(output))
    for expect in (r"DS_Store", r"not valid JSON", r"readme\.txt, line 1", r"readme\.txt, line 5"):
        assert re.search(expect, text), (expect, text)


def test_every_pickle_entry_problem_is_reported(tmp_path: Path) -> None:
    preds: dict[Any, Any] = hostile.structure_preds()
    preds["img0"]["score"] = float("nan")
    preds["img1"]["pred_area"] = np.ones((1, 448, 448), np.uint8)
    preds["img2"] = {"score": 1.0}
    preds[7] = {"score": 1.0, "pred_area": np.zeros((4, 4), np.uint8)}
    sub = tmp_path / "s.zip"
    sub.write_bytes(hostile.zip_bytes(hostile.submission("structure", output=pickle.dumps(preds))))
    code, output = _invoke(["validate", "--track", "structure", "--json", str(sub)])
    assert code == 1
    where = [e["where"] for e in _json_errors(output)]
    for expect in ("img0", "img1", "img2", "key 7"):
        assert any(expect in w for w in where), (expect, where)


# --------------------------------------------------------------------------- reference values never leak


def test_coverage_errors_do_not_leak_reference_values(tmp_path: Path, refs: dict[str, Path]) -> None:
    recs = hostile.align_records()[:3]  # misses three reference images
    recs.append({"img_path": "M/99999.png", "total_score": 1.0, "element_score": {}})
    recs[0]["element_score"] = {}  # misses the reference's element keys
    sub = tmp_path / "s.zip"
    sub.write_bytes(hostile.zip_bytes(hostile.submission("align", output=json.dumps(recs).encode())))
    for extra in ([], ["--json"]):
        code, output = _invoke(["score", "--track", "align", "--ref", str(refs["align"]), *extra, str(sub)])
        assert code == 1 and "misses" in output
        assert not any(s in output for s in hostile.SECRETS), output
    preds = hostile.structure_preds()
    del preds["img3"]
    sub2 = tmp_path / "s2.zip"
    sub2.write_bytes(hostile.zip_bytes(hostile.submission("structure", output=pickle.dumps(preds))))
    code, output = _invoke(["score", "--track", "structure", "--ref", str(refs["structure"]), str(sub2)])
    assert code == 1 and "img3" in output
    assert not any(s in output for s in hostile.SECRETS), output


# --------------------------------------------------------------------------- valid submissions still pass


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
@pytest.mark.parametrize("score_type", [float, np.float32, np.float64, np.int64], ids=lambda t: t.__name__)
def test_valid_pickles_of_every_protocol(protocol: int, score_type: Any, tmp_path: Path,
                                         refs: dict[str, Path]) -> None:
    preds = hostile.structure_preds(score_type)
    preds["img2"]["pred_area"] = preds["img2"]["pred_area"].astype(np.float32)
    preds["img3"]["pred_area"] = np.asfortranarray(preds["img3"]["pred_area"].astype(np.uint16))
    sub = tmp_path / "s.zip"
    sub.write_bytes(hostile.zip_bytes(hostile.submission("structure", output=pickle.dumps(preds, protocol))))
    code, output = _invoke(["validate", "--track", "structure", str(sub)])
    assert code == 0, output
    code, output = _invoke(["score", "--track", "structure", "--ref", str(refs["structure"]), "--json", str(sub)])
    assert code == 0, output
    assert json.loads(output)["n_images"] == len(hostile.STRUCTURE_REF_SCORES)


def test_restricted_unpickler_round_trips_plain_data() -> None:
    import collections

    objs = [
        {"a": {"score": np.float32(2.5), "pred_area": np.arange(12, dtype=">f4").reshape(3, 4)}},
        {np.str_("img"): {"score": np.int64(3), "pred_area": np.zeros((0, 5), np.uint16)}},
        [1, 2.5, "x", b"y", b"", bytearray(b"z"), (1, (2, (3,))), {1, 2}, frozenset({3}),
         collections.OrderedDict(a=1), None, True, 1 + 2j, 10**50],
        {"m": np.ones((3, 3), bool), "c": np.complex64(1j), "u": np.array(["ab", "c"]), "s": np.array([b"ab"])},
    ]
    for protocol in range(pickle.HIGHEST_PROTOCOL + 1):
        for obj in objs:
            data = pickle.dumps(obj, protocol)
            got = load_pickle_restricted(io.BytesIO(data), "x")
            assert pickle.dumps(got, 4) == pickle.dumps(pickle.loads(data), 4), (protocol, obj)


def _valid_members(track: str) -> list[hostile.Member]:
    return hostile.submission(track)


@pytest.mark.parametrize("compression", [zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2,
                                         zipfile.ZIP_LZMA])
@pytest.mark.parametrize("track", ["align", "structure"])
def test_valid_zip_variants(track: str, compression: int, tmp_path: Path) -> None:
    sub = tmp_path / "s.zip"
    sub.write_bytes(hostile.zip_bytes(_valid_members(track), compression))
    assert validate(sub, track).valid


@pytest.mark.parametrize("variant", ["streamed", "zip64", "prefixed", "folder"])
def test_valid_unusual_layouts(variant: str, tmp_path: Path) -> None:
    """Data descriptors (a zip written to a pipe), forced zip64, a stub before the archive, a folder."""
    members = _valid_members("align")
    sub = tmp_path / "s.zip"
    if variant == "folder":
        sub = tmp_path / "folder"
        sub.mkdir()
        for name, data in members:
            (sub / str(name)).write_bytes(data)
    else:
        class Unseekable(io.RawIOBase):
            def __init__(self) -> None:
                self.data = bytearray()

            def writable(self) -> bool:
                return True

            def write(self, b: Any) -> int:
                self.data += b
                return len(b)

        out: Any = Unseekable() if variant == "streamed" else io.BytesIO()
        with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
            for name, data in members:
                with zf.open(str(name), "w", force_zip64=variant == "zip64") as f:
                    f.write(data)
        raw = bytes(out.data) if variant == "streamed" else out.getvalue()
        if variant == "streamed":
            assert zipfile.ZipFile(io.BytesIO(raw)).infolist()[0].flag_bits & 0x08
        sub.write_bytes((b"#!/bin/sh\nexit 0\n" if variant == "prefixed" else b"") + raw)
    report = validate(sub, "align")
    assert report.valid, [str(p) for p in report.problems]


@pytest.mark.skipif(shutil.which("zip") is None, reason="needs the zip tool")
def test_zip_made_by_the_zip_tool(tmp_path: Path) -> None:
    for name, data in _valid_members("structure"):
        (tmp_path / str(name)).write_bytes(data)
    subprocess.run(["zip", "-q", "-X", "sub.zip", "output.pkl", "readme.txt"], cwd=tmp_path, check=True)
    assert validate(tmp_path / "sub.zip", "structure").valid


# --------------------------------------------------------------------------- limits (library API)


def _align_zip(tmp_path: Path, output: bytes, compression: int = zipfile.ZIP_DEFLATED, **patch: Any) -> Path:
    data = hostile.zip_bytes(hostile.submission("align", output=output), compression)
    if patch:
        data = hostile.patch_zip(data, "output.json", **patch)
    sub = tmp_path / "s.zip"
    sub.write_bytes(data)
    return sub


def _small(json_bytes: int, **kw: Any) -> Limits:
    return Limits(member_bytes={"output.json": json_bytes, "output.pkl": json_bytes, "readme.txt": 64 * 1024}, **kw)


def _error_text(report: Any) -> str:
    assert not report.valid
    return "\n".join(str(p) for p in report.errors)


def test_output_over_a_custom_limit(tmp_path: Path) -> None:
    """A 3 MiB output.json against a 1 MiB limit stands for a 300 MiB one against the default 256 MiB."""
    big = hostile.valid_output("align") + b" " * (3 * MiB)
    text = _error_text(validate(_align_zip(tmp_path, big), "align", limits=_small(MiB)))
    assert re.search(r"output\.json: is 3\.0 MiB uncompressed; the limit is 1\.0 MiB", text), text
    assert "Fix:" in text


@pytest.mark.parametrize("compression", [zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2,
                                         zipfile.ZIP_LZMA])
def test_header_that_understates_the_size_is_caught_while_reading(compression: int, tmp_path: Path) -> None:
    big = hostile.valid_output("align") + b" " * (3 * MiB)
    sub = _align_zip(tmp_path, big, compression, file_size=1000)
    text = _error_text(validate(sub, "align", limits=_small(MiB)))
    assert re.search(r"output\.json: is damaged: it holds more data than the 1000 bytes its header declares", text)


def test_bz2_bomb_with_a_small_declared_size_stays_small_in_memory(tmp_path: Path) -> None:
    """64 MiB of zeros in ~100 bytes of bzip2, declared as 100 bytes: decompression stops at 101."""
    case = next(c for c in CASES if c.id == "align-bz2-bomb-disguised")
    sub = case.build(tmp_path)
    tracemalloc.start()
    try:
        report = validate(sub, "align")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert re.search(case.expect, _error_text(report))
    assert peak < 16 * MiB, f"peak {peak / MiB:.0f} MiB"


def test_memo_index_bomb_allocates_nothing(tmp_path: Path) -> None:
    data = b"\x80\x02Nr" + (1 << 24).to_bytes(4, "little") + b"."  # the C unpickler would clear 2**25 slots
    tracemalloc.start()
    try:
        with pytest.raises(SubmissionError, match="memo index"):
            load_pickle_restricted(io.BytesIO(data), "output.pkl")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 16 * MiB, f"peak {peak / MiB:.0f} MiB"


def test_ratio_total_and_member_count_limits(tmp_path: Path) -> None:
    big = hostile.valid_output("align") + b" " * (2 * MiB)
    sub = _align_zip(tmp_path, big)
    assert re.search(r"expands \d+-fold; at most 10-fold", _error_text(validate(sub, "align",
                                                                                 limits=Limits(max_ratio=10))))
    assert re.search(r"expands to .* the limit is", _error_text(validate(sub, "align",
                                                                         limits=Limits(max_total_bytes=MiB))))
    assert re.search(r"holds 2 members; at most 1", _error_text(validate(sub, "align", limits=Limits(max_members=1))))


def test_limit_errors_stop_before_scoring(tmp_path: Path, refs: dict[str, Path]) -> None:
    sub = _align_zip(tmp_path, hostile.valid_output("align") + b" " * 5000)
    with pytest.raises(SubmissionError) as info:
        score(sub, refs["align"], "align", limits=_small(4096))
    assert "limit" in str(info.value)


def test_open_submission_never_extracts(tmp_path: Path) -> None:
    sub = tmp_path / "s.zip"
    sub.write_bytes(hostile.zip_bytes(hostile.submission("align")))
    before = _files(tmp_path)
    source, problems = open_submission(sub, ("output.json", "readme.txt"), Limits())
    assert source is not None and not problems
    with source:
        assert json.loads(source.read("output.json"))
    assert _files(tmp_path) == before


def test_json_loader_contract() -> None:
    obj = load_json_strict(b'[1e999, -1e999, NaN, 1' + b"0" * 500 + b', 7, {"a": 1, "a": 2}]', "f", "fix")
    assert [repr(float(x)) for x in obj[:4]] == ["inf", "-inf", "nan", "inf"]
    assert obj[4] == 7 and type(obj[4]) is int
    assert obj[5].duplicates == ["a"]
    for bad, what in ((b"\xff", "not UTF-8"), (b"[" * 100_000, "nested too deeply"), (b"[1,]", "not valid JSON")):
        with pytest.raises(SubmissionError, match=what):
            load_json_strict(bad, "f", "fix")


# --------------------------------------------------------------------------- fast paths keep the checks

_INFLATE_CASES = ["valid", "bad-crc", "corrupt-deflate", "declared-size-lie", "truncated-tail"]


@pytest.mark.parametrize("backend", ["zlib-ng", "zlib"])
@pytest.mark.parametrize("name", _INFLATE_CASES)
def test_inflate_backends_agree(backend: str, name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Deflated members read the same, and damage is caught the same, with zlib-ng and the zlib fallback."""
    import zlib

    from ntire_t2iqa.archive import zipread

    if backend == "zlib":
        monkeypatch.setattr(zipread, "_zlib", zlib)
    else:
        pytest.importorskip("zlib_ng")
        assert zipread._zlib is not zlib
    for track in ("align", "structure"):
        if name == "valid":
            sub = tmp_path / f"{track}.zip"
            sub.write_bytes(hostile.zip_bytes(hostile.submission(track, output=hostile.valid_output(track)
                                                                 + (b" " * (3 * MiB) if track == "align" else b""))))
            assert validate(sub, track).valid
            continue
        case = next(c for c in CASES if c.id == f"{track}-{name}")
        assert re.search(case.expect, _error_text(validate(case.build(tmp_path), track)), re.I)


class _Trickle(io.RawIOBase):
    """A stream that returns at most ``step`` bytes per read, as a slow pipe or decompressor may."""

    def __init__(self, data: bytes, step: int):
        self._data, self._pos, self._step = data, 0, step

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        n = min(len(buffer), self._step, len(self._data) - self._pos)
        buffer[:n] = self._data[self._pos:self._pos + n]
        self._pos += n
        return n


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
@pytest.mark.parametrize("step", [1, 7, 4096, 1 << 20])
def test_pickle_scanner_with_short_reads_and_truncation(protocol: int, step: int) -> None:
    """Payloads pass straight into the unpickler's buffers; short reads and a cut anywhere change nothing."""
    obj = {f"img{i}": {"score": float(i), "pred_area": np.full((300, 200 + i), i, np.uint8)} for i in range(3)}
    data = pickle.dumps(obj, protocol)
    got = load_pickle_restricted(_Trickle(data, step), "output.pkl")
    assert pickle.dumps(got, 4) == pickle.dumps(obj, 4)
    if step in (1, 1 << 20):
        return
    for cut in (len(data) // 3, len(data) // 2, len(data) - 2):
        with pytest.raises(SubmissionError, match="not a readable pickle"):
            load_pickle_restricted(_Trickle(data[:cut], step), "output.pkl")


def _scan_outcome(data: bytes, fast: bool) -> tuple[str, Any]:
    """What the pickle scanner hands on (or raises) for ``data``, with or without its inline fast paths."""
    from ntire_t2iqa.archive import pickle_scan

    scanner = pickle_scan._PickleScanner(io.BytesIO(data))
    if not fast:
        kinds, sizes, names = scanner._fast
        scanner._fast = ((pickle_scan._K_GENERIC,) * 256, sizes, names)
    try:
        return "ok", io.BufferedReader(scanner, 64).read()
    except Exception as exc:  # noqa: BLE001 - the outcome is compared, whatever it is
        return type(exc).__name__, str(exc)


def test_pickle_scanner_fast_paths_match_the_generic_path() -> None:
    """The inline opcode handling accepts, refuses and hands on exactly what the generic path does."""
    rng = np.random.default_rng(7)
    seeds = [pickle.dumps(obj, protocol) for protocol in range(pickle.HIGHEST_PROTOCOL + 1) for obj in (
        hostile.structure_preds(), {"a": [(1, (2, (3,))), {"b": b"x" * 300}], "c": {1, 2}},
        [((),) * 3, [1, 2], (1, 2, 3, 4)])]
    deep = b"\x80\x04" + b"(" * 150 + b"t" * 150 + b"."  # tuples nested 150 deep
    cases = [*seeds, deep, b"\x80\x02)\x85\x85\x85.", b"\x80\x02N\x86.", b"\x80\x02Nt.", b"\x80\x02(Nu.",
             b"\x80\x02NNR."]
    for data in seeds:
        for _ in range(60):
            mutant = bytearray(data)
            for _ in range(int(rng.integers(1, 4))):
                at = int(rng.integers(0, len(mutant)))
                op = rng.integers(0, 3)
                if op == 0:
                    mutant[at] = int(rng.integers(0, 256))
                elif op == 1:
                    mutant.insert(at, int(rng.choice(list(b"()tu\x85\x86\x87RbseN\x94h"))))
                else:
                    del mutant[at]
            cases.append(bytes(mutant))
    cases += [_as_value(_mixed_levels(150)), _as_value(_memo_list_links(5)), _as_key(_memo_tuple_doubling(30)),
              b"\x80\x04]\x94h\x00a.", b"\x80\x04K\x01\x85K\x02b."]  # a self-append; BUILD on a tuple
    for data in cases:
        assert _scan_outcome(data, fast=True) == _scan_outcome(data, fast=False), data


# --------------------------------------------------------------------------- nesting and re-use in pickles

_DEEP = 100_000


def _long_get(i: int) -> bytes:
    return b"j" + i.to_bytes(4, "little")  # LONG_BINGET


def _as_key(key_ops: bytes) -> bytes:
    """``{<key>: None}`` around opcodes that push the key."""
    return b"\x80\x04}" + key_ops + b"Ns."


def _as_value(value_ops: bytes) -> bytes:
    """``{"img0": <value>}`` around opcodes that push the value."""
    return b"\x80\x04}\x8c\x04img0" + value_ops + b"s."


def _mixed_levels(depth: int) -> bytes:
    """A list in a tuple in a dict value in a list ... ``depth`` levels, each built on the stack."""
    levels = [(b"]", b"a"), (b"(", b"t"), (b"}K\x01", b"s")]  # list+APPEND, MARK+TUPLE, dict+SETITEM
    open_ = b"".join(levels[i % 3][0] for i in range(depth))
    close = b"".join(levels[i % 3][1] for i in reversed(range(depth)))
    return open_ + b"N" + close


def _memo_tuple_chain(depth: int) -> bytes:
    """Tuples nested by re-use: t0 = (); t(i+1) = (t(i),), each fetched again from the memo."""
    ops = b")\x94"
    for i in range(depth):
        ops += b"0" + _long_get(i) + b"\x85\x94"  # POP, GET t(i), TUPLE1, MEMOIZE
    return ops


def _memo_list_links(depth: int) -> bytes:
    """``depth`` empty lists, then each appended to the one before through memo references."""
    ops = b"]\x94" * depth
    for i in range(depth - 1):
        ops += _long_get(i) + _long_get(i + 1) + b"a0"  # GET l(i), GET l(i+1), APPEND, POP
    return ops + b"0" * depth + _long_get(0)


def _memo_tuple_doubling(levels: int) -> bytes:
    """t0 = (); t(i+1) = (t(i), t(i)): a few hundred bytes that stand for 2**levels tuples."""
    ops = b")\x94"
    for i in range(levels):
        ops += b"0" + _long_get(i) + _long_get(i) + b"\x86\x94"
    return ops


_HOSTILE_NESTING = {
    "frozenset-key-mark-based": (_as_key(b"(" * _DEEP + b"\x91" * _DEEP), "nested more than 100 levels"),
    "tuple-value-stack-based": (_as_value(b")" + b"\x85" * _DEEP), "nested more than 100 levels"),
    "tuple-value-mark-based": (_as_value(b"(" * _DEEP + b"t" * _DEEP), "nested more than 100 levels"),
    "list-value-mark-based": (_as_value(b"(" * _DEEP + b"l" * _DEEP), "nested more than 100 levels"),
    "list-value-append": (_as_value(b"]" * _DEEP + b"a" * (_DEEP - 1)), "nested more than 100 levels"),
    "dict-value-setitem": (_as_value(b"}K\x01" * _DEEP + b"N" + b"s" * _DEEP), "nested more than 100 levels"),
    "dict-value-mark-based": (_as_value(b"(K\x01" * _DEEP + b"N" + b"d" * _DEEP), "nested more than 100 levels"),
    "frozensets-in-a-set": (_as_value(b"\x8f(" + b"(" * _DEEP + b"\x91" * _DEEP + b"\x90"),
                            "nested more than 100 levels"),
    "list-tuple-dict-mixed": (_as_value(_mixed_levels(_DEEP)), "nested more than 100 levels"),
    "tuple-key-memo-chain": (_as_key(_memo_tuple_chain(_DEEP)), "nested more than 100 levels"),
    "list-value-memo-links": (_as_value(_memo_list_links(_DEEP)), "after storing it in another one or fetching"),
    "tuple-key-memo-doubling": (_as_key(_memo_tuple_doubling(200)), "re-uses its own parts"),
}


@pytest.mark.parametrize("name", list(_HOSTILE_NESTING))
def test_deep_or_exploding_pickle_is_refused_before_it_is_built(name: str) -> None:
    """Any container nesting past the bound, however built, is a SubmissionError in well under 2 s."""
    import time

    data, expect = _HOSTILE_NESTING[name]
    start = time.perf_counter()
    with pytest.raises(SubmissionError) as info:
        load_pickle_restricted(io.BytesIO(data), "output.pkl")
    assert time.perf_counter() - start < 2.0
    text = str(info.value)
    assert "output.pkl" in text and "refused to load" in text and expect in text, text


def test_nesting_bound_is_exact_and_honest_submissions_load() -> None:
    """100 levels of any container load, 101 do not; a normal submission, with or without shared arrays, loads."""
    from ntire_t2iqa.archive import MAX_NESTING_DEPTH

    assert MAX_NESTING_DEPTH == 100
    for build in (lambda d: b")" + b"\x85" * (d - 1), lambda d: b"(" * d + b"\x91" * d,
                  lambda d: b"]" * d + b"a" * (d - 1), _mixed_levels):
        assert load_pickle_restricted(io.BytesIO(b"\x80\x04" + build(100) + b"."), "x.pkl") is not None
        with pytest.raises(SubmissionError, match="nested more than 100 levels"):
            load_pickle_restricted(io.BytesIO(b"\x80\x04" + build(101) + b"."), "x.pkl")
    rng = np.random.default_rng(3)
    shared = np.ones((448, 448), np.uint8)
    for preds in ({f"img{i}": {"score": float(i), "pred_area": (rng.random((64, 48)) > 0.5).astype(np.uint8)}
                   for i in range(50)},
                  {f"img{i}": {"score": float(i), "pred_area": shared} for i in range(50)}):
        for protocol in range(pickle.HIGHEST_PROTOCOL + 1):
            got = load_pickle_restricted(io.BytesIO(pickle.dumps(preds, protocol)), "output.pkl")
            assert got.keys() == preds.keys()
            for name, entry in preds.items():
                assert got[name]["score"] == entry["score"]
                assert np.array_equal(got[name]["pred_area"], entry["pred_area"])
                assert got[name]["pred_area"].dtype == np.uint8 and type(got[name]["pred_area"]) is np.ndarray


def test_deep_frozenset_key_through_the_score_command(tmp_path: Path) -> None:
    """`ntire-t2iqa score` on output.pkl keyed by a frozenset nested 100,000 deep: exit 1, a message, no traceback."""
    import helpers

    _, ref = helpers.random_structure(3, pred_size=64)
    gt = tmp_path / "gt.pkl"
    gt.write_bytes(pickle.dumps(ref, protocol=4))
    data, _ = _HOSTILE_NESTING["frozenset-key-mark-based"]
    sub = tmp_path / "submission.zip"
    sub.write_bytes(hostile.zip_bytes(hostile.submission("structure", output=data)))
    script = Path(sys.executable).with_name("ntire-t2iqa")
    command = [str(script)] if script.exists() else CLI
    proc = subprocess.run([*command, "score", str(sub), "--track", "structure", "--ref", str(gt)],
                          capture_output=True, text=True, timeout=60, preexec_fn=_limit_memory, cwd=tmp_path)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 1, output
    assert "Traceback" not in output and "RecursionError" not in output, output
    assert "output.pkl" in output and "nested more than 100 levels" in output, output
