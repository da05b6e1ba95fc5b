"""`rank` and the results store against hostile participants' files and broken organizer inputs.

Every case builds its own hostile input here. What must hold: every participant file ends
scored or invalid (only organizer-side read failures are retried), the run never hangs or
ends in a traceback, a signal stops every worker, stored confidence is never stale, a
store file that is not ours is never written, read-only commands write nothing, and every
organizer-side problem exits 2 with a message that names the file and the fix.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from helpers import align_zip, random_align

from ntire_t2iqa import score
from ntire_t2iqa.cli import main
from ntire_t2iqa.errors import StoreError
from ntire_t2iqa.leaderboard import rank, render, runner
from ntire_t2iqa.leaderboard.store import APPLICATION_ID, SCHEMA_VERSION, Scope, Store


def _noisy(sub: list[dict], noise: float, seed: int) -> list[dict]:
    rng = np.random.default_rng(seed)
    return [{**r, "total_score": r["total_score"] + float(rng.normal(0, noise))} for r in sub]


def _challenge(tmp_path: Path, plan: dict[str, list[float]], n: int = 40, seed: int = 31) -> tuple[Path, Path]:
    """``subs/<team>/s<k>.zip`` with the given noise levels, and ``eval.json``; distinct mtimes."""
    sub, ref = random_align(n, seed=seed)
    (tmp_path / "eval.json").write_text(json.dumps(ref))
    root = tmp_path / "subs"
    for t, (team, noises) in enumerate(plan.items()):
        (root / team).mkdir(parents=True, exist_ok=True)
        for k, noise in enumerate(noises):
            z = align_zip(root / team / f"s{k}.zip", _noisy(sub, noise, seed=100 * t + k))
            os.utime(z, (1_700_000_000 + 10 * t + k,) * 2)
    return root, tmp_path / "eval.json"


def _cli(*args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    """Run the real command line in a subprocess; no output may hold a traceback."""
    proc = subprocess.run([sys.executable, "-m", "ntire_t2iqa", *args], capture_output=True, text=True,
                          timeout=timeout)
    assert "Traceback" not in proc.stdout + proc.stderr, proc.stderr
    return proc


def _rank_args(root: Path, ref: Path, db: Path, *more: str) -> list[str]:
    return ["rank", str(root), "--track", "align", "--ref", str(ref), "--db", str(db), *more]


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _header_ids(db: Path) -> tuple[int, int]:
    head = db.read_bytes()[:100]
    return int.from_bytes(head[68:72], "big"), int.from_bytes(head[60:64], "big")


# --------------------------------------------------------------------------- participant files


def test_undecodable_team_and_file_names_are_stored_and_scored(tmp_path) -> None:
    root, ref = _challenge(tmp_path, {"alpha": [0.3]})
    cafe = root / os.fsdecode(b"caf\xe9")
    cafe.mkdir()
    sub, _ = random_align(40, seed=31)
    real = align_zip(cafe / os.fsdecode(b"s\xff.zip"), _noisy(sub, 0.1, seed=5))
    board, summary = rank(root, "align", ref, tmp_path / "lb.db")
    assert (summary.scored, summary.invalid, summary.failed) == (2, 0, [])
    team = next(r for r in board.rows if r.team != "alpha")
    assert team.team == "caf\\xe9" and team.path.endswith("caf\\xe9/s\\xff.zip")
    assert team.main_score == score(real, ref, track="align").main_score  # the real file was opened and scored
    with sqlite3.connect(tmp_path / "lb.db") as con:  # every stored text is valid UTF-8
        con.text_factory = bytes
        texts = [t for row in con.execute("SELECT team, path FROM submissions") for t in row]
    con.close()
    assert len(texts) == 4 and all(t.decode("utf-8") for t in texts)
    again = _cli(*_rank_args(root, ref, tmp_path / "lb.db"))
    assert again.returncode == 0 and "2 already in" in again.stderr


def test_anything_but_a_regular_file_is_invalid_and_never_opened(tmp_path) -> None:
    root, ref = _challenge(tmp_path, {"alpha": [0.3], "beta": [0.6]})
    sub, _ = random_align(40, seed=31)
    outside = align_zip(tmp_path / "outside.zip", sub)  # a perfect submission outside the folder
    (root / "alpha" / "folder.zip").mkdir()
    os.mkfifo(root / "alpha" / "fifo.zip")
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(root / "alpha" / "socket.zip"))
    (root / "beta" / "outside.zip").symlink_to(outside)
    (root / "beta" / "device.zip").symlink_to("/dev/zero")
    (root / "beta" / "to-fifo.zip").symlink_to(root / "alpha" / "fifo.zip")
    (root / "beta" / "nowhere.zip").symlink_to(root / "beta" / "gone.zip")
    (root / "beta" / "inside.zip").symlink_to(root / "alpha" / "s0.zip")  # a link to a file inside: fine
    (tmp_path / "linked").mkdir()
    align_zip(tmp_path / "linked" / "s0.zip", sub)
    (root / "gamma").symlink_to(tmp_path / "linked", target_is_directory=True)  # a team folder leading out
    db = tmp_path / "lb.db"
    try:
        proc = _cli(*_rank_args(root, ref, db, "--workers", "2"), timeout=120)  # a FIFO opened would hang here
    finally:
        sock.close()
    assert proc.returncode == 0, proc.stderr
    board, summary = rank(root, "align", ref, db)
    assert summary.already_scored == summary.total == 11
    reasons = {Path(r["path"]).name: r["reason"][0]["what"] for r in board.invalid}
    assert set(reasons) == {"folder.zip", "fifo.zip", "socket.zip", "outside.zip", "device.zip", "to-fifo.zip",
                            "nowhere.zip", "s0.zip"}
    assert "is a folder" in reasons["folder.zip"] and "named pipe" in reasons["fifo.zip"]
    assert "socket" in reasons["socket.zip"] and "to a named pipe" in reasons["to-fifo.zip"]
    assert "outside the submissions folder" in reasons["outside.zip"]
    assert reasons["device.zip"] == reasons["outside.zip"]
    assert "leads nowhere" in reasons["nowhere.zip"] and "outside the submissions folder" in reasons["s0.zip"]
    assert all(r["reason"][0]["where"] == Path(r["path"]).name for r in board.invalid)  # no organizer path shown
    assert sorted(r.team for r in board.rows) == ["alpha", "beta"]
    assert next(r for r in board.rows if r.team == "beta").path == str((root / "alpha" / "s0.zip").resolve())


def test_manifest_rows_that_are_not_regular_files(tmp_path) -> None:
    root, ref = _challenge(tmp_path, {"alpha": [0.3]})
    os.mkfifo(root / "alpha" / "fifo.zip")
    (root / "alpha" / "folder.zip").mkdir()
    (root / "alpha" / "etc.zip").symlink_to("/etc/hostname")
    manifest = tmp_path / "m.csv"
    manifest.write_text("path,team,leader,submitted_at,phase\n"
                        "subs/alpha/s0.zip,alpha,A,2025-03-01T10:00:00Z,test\n"
                        "subs/alpha/fifo.zip,alpha,A,2025-03-01T11:00:00Z,test\n"
                        "subs/alpha/folder.zip,alpha,A,,test\n"
                        "subs/alpha/etc.zip,alpha,A,,test\n"
                        "subs/alpha/vanished.zip,alpha,A,,test\n")
    db = tmp_path / "lb.db"
    proc = _cli("rank", "--manifest", str(manifest), "--track", "align", "--ref", str(ref), "--db", str(db),
                timeout=120)
    assert proc.returncode == 1  # only the missing file is retried; the rest was scored
    assert "not scored (will be retried): m.csv, line 6" in proc.stderr and "vanished.zip" in proc.stderr
    board, summary = rank(None, "align", ref, db, manifest=manifest)
    assert len(board.rows) == 1 and len(board.invalid) == 3 and len(summary.failed) == 1
    align_zip(root / "alpha" / "vanished.zip", random_align(40, seed=31)[0])
    assert _cli("rank", "--manifest", str(manifest), "--track", "align", "--ref", str(ref), "--db", str(db)
                ).returncode == 0


def test_unexpected_scorer_failures_are_invalid_and_organizer_faults_retried(tmp_path, monkeypatch) -> None:
    """Files whose reading raises RecursionError, MemoryError, any other exception, or kills the
    worker end invalid with a bounded participant-safe reason; an OSError is retried without
    blocking the rest. (Workers are forked, so they inherit the patched scorer.)"""
    root, ref = _challenge(tmp_path, {"ok": [0.3], "deep": [0.4], "huge": [0.5], "odd": [0.6], "crash": [0.7],
                                      "flaky": [0.8]})
    secret = "reference value 4.123456"
    real_evaluate = runner.evaluate

    def hostile_score(path, *args, **kwargs):
        team = Path(path).parent.name
        if team == "deep":
            raise RecursionError("maximum recursion depth exceeded")
        if team == "huge":
            raise MemoryError
        if team == "odd":
            raise KeyError(secret)  # a message may hold anything: never shown to a participant
        if team == "crash":
            os.kill(os.getpid(), signal.SIGKILL)
        if team == "flaky" and not (tmp_path / "fixed").exists():
            raise PermissionError(errno.EACCES, "Permission denied", path)
        return real_evaluate(path, *args, **kwargs)

    monkeypatch.setattr(runner, "evaluate", hostile_score)
    db = tmp_path / "lb.db"
    board, summary = rank(root, "align", ref, db, workers=2)
    assert (summary.scored, summary.invalid) == (5, 4)
    assert len(summary.failed) == 1 and "flaky" in summary.failed[0] and "PermissionError" in summary.failed[0]
    reasons = {r["team"]: r["reason"] for r in board.invalid}
    assert set(reasons) == {"deep", "huge", "odd", "crash"}
    assert "RecursionError" in reasons["deep"][0]["what"] and "more memory" in reasons["huge"][0]["what"]
    assert "KeyError" in reasons["odd"][0]["what"] and secret not in json.dumps(reasons)
    assert "end abruptly" in reasons["crash"][0]["what"]
    assert all(len(r) == 1 and r[0]["where"] == "s0.zip" for r in reasons.values())
    assert any(secret in note for note in summary.notes)  # the organizer still sees what happened
    assert [r.team for r in board.rows] == ["ok"]
    (tmp_path / "fixed").touch()
    board, again = rank(root, "align", ref, db, workers=2)
    assert (again.scored, again.failed) == (1, [])  # only the retried file; invalid ones are not scored again
    assert sorted(r.team for r in board.rows) == ["flaky", "ok"]


def _children(pid: int) -> list[int]:
    out = []
    for stat_file in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat_file.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            out.append(int(stat_file.parent.name))
    return out


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _results_count(db: Path) -> int:
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1) as con:
            return con.execute("SELECT count(*) FROM results").fetchone()[0]
    except sqlite3.Error:
        return -1


@pytest.fixture(scope="module")
def big_challenge(tmp_path_factory) -> tuple[Path, Path, Path]:
    """48 submissions of 3000 images (a few seconds of scoring) and the store of an undisturbed run."""
    tmp_path = tmp_path_factory.mktemp("big")
    plan = {f"team{t}": [0.3 + 0.1 * t + 0.05 * k for k in range(4)] for t in range(12)}
    root, ref = _challenge(tmp_path, plan, n=3000, seed=41)
    rank(root, "align", ref, tmp_path / "clean.db", workers=2)
    return root, ref, tmp_path / "clean.db"


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc")
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_stops_every_worker_and_a_rerun_completes_the_same(tmp_path, big_challenge, signum) -> None:
    root, ref, clean = big_challenge
    stopped = tmp_path / "stopped.db"
    args = [sys.executable, "-m", "ntire_t2iqa", *_rank_args(root, ref, stopped, "--workers", "2")]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None and _results_count(stopped) < 3:
        time.sleep(0.01)
    workers = _children(proc.pid)
    assert proc.poll() is None and len(workers) == 2, "the run ended before it could be stopped"
    proc.send_signal(signum)  # the ranking process alone, as `kill -TERM PID` does
    _, stderr = proc.communicate(timeout=10)
    gone_by = time.monotonic() + 5
    while time.monotonic() < gone_by and any(_alive(w) for w in workers):
        time.sleep(0.05)
    assert not any(_alive(w) for w in workers)
    assert proc.returncode == 128 + signum
    assert f"stopped by {signal.Signals(signum).name}" in stderr and len(stderr.strip().splitlines()) == 1
    assert "Traceback" not in stderr and 0 <= _results_count(stopped) < 48
    rerun = _cli(*_rank_args(root, ref, stopped, "--workers", "2"))
    assert rerun.returncode == 0, rerun.stderr
    assert render(stopped, "align", "json") == render(clean, "align", "json")


# --------------------------------------------------------------------------- stored results


def test_bootstrap_results_are_dropped_when_the_board_changes(tmp_path) -> None:
    root, ref = _challenge(tmp_path, {"a": [0.2], "b": [3.0]}, n=60)
    db = tmp_path / "lb.db"
    board, _ = rank(root, "align", ref, db, resamples=40)
    assert [r.team for r in board.rows] == ["a", "b"] and board.rows[0].flip_next is not None
    again, _ = rank(root, "align", ref, db)  # the same board: kept
    assert [(r.ci, r.flip_next) for r in again.rows] == [(r.ci, r.flip_next) for r in board.rows]
    sub, _ = random_align(60, seed=31)
    (root / "m").mkdir()
    align_zip(root / "m" / "s0.zip", _noisy(sub, 1.0, seed=7))
    changed, _ = rank(root, "align", ref, db)  # a team between a and b, no --bootstrap
    assert [r.team for r in changed.rows] == ["a", "m", "b"]
    assert all(r.ci is None and r.flip_next is None for r in changed.rows) and changed.resamples == 0
    assert all(r["ci_low"] is None and r["flip_next"] is None for r in json.loads(render(db, "align", "json"))["rows"])
    fresh, _ = rank(root, "align", ref, db, resamples=40)
    assert all(r.ci is not None for r in fresh.rows) and fresh.rows[1].flip_next is not None


def test_a_stored_reason_is_bounded(tmp_path) -> None:
    big = "x" * 1_000_000
    reason = [{"severity": "error", "where": big, "what": big, "fix": big}] * 1000  # ~3 GB as text
    scope = Scope("align", "0" * 64, "official")
    with Store(tmp_path / "lb.db") as store:
        store.add_result(scope, "f" * 64, "invalid", None, None, reason, None)
        metrics = {"main_score": 0.5, "warnings": [big] * 1000, "track": big}
        store.add_result(scope, "e" * 64, "ok", 0.5, metrics, None, None)
    with sqlite3.connect(tmp_path / "lb.db") as con:
        stored_reason, = con.execute("SELECT reason FROM results WHERE sha256 = ?", ("f" * 64,)).fetchone()
        stored_metrics, = con.execute("SELECT metrics FROM results WHERE sha256 = ?", ("e" * 64,)).fetchone()
    kept = json.loads(stored_reason)
    assert len(kept) == 21 and "980 more problem(s)" in kept[-1]["what"]
    assert all(len(p[k]) < 600 for p in kept for k in ("where", "what", "fix"))
    assert len(stored_reason) < 40_000 and len(stored_metrics) < 20_000
    assert json.loads(stored_metrics)["main_score"] == 0.5


# --------------------------------------------------------------------------- the store file


def _store_made_by_rank(tmp_path: Path, name: str = "lb.db") -> tuple[Path, Path, Path]:
    root, ref = _challenge(tmp_path, {"a": [0.3], "b": [0.8]}, n=40)
    db = tmp_path / name
    rank(root, "align", ref, db)
    return root, ref, db


def _other_program(db: Path, wal: bool) -> None:
    with sqlite3.connect(db) as con:
        if wal:
            con.execute("PRAGMA journal_mode=WAL")
            con.execute("PRAGMA application_id = 1234")
        con.execute("CREATE TABLE meta (k TEXT, v TEXT)")  # a table of the same name, other columns
        con.execute("CREATE TABLE results (x)")
        con.execute("INSERT INTO meta VALUES ('a', 'b')")
    con.close()


@pytest.mark.parametrize("kind", ["garbage", "truncated", "damaged", "other-sqlite", "other-sqlite-wal", "newer"])
def test_a_file_that_is_not_our_store_is_refused_and_left_unchanged(tmp_path, kind) -> None:
    root, ref, ours = _store_made_by_rank(tmp_path, "ours.db")
    db = tmp_path / "target.db"
    if kind == "garbage":
        db.write_bytes(np.random.default_rng(0).bytes(5000))
    elif kind == "truncated":
        db.write_bytes(ours.read_bytes()[: ours.stat().st_size // 2])
    elif kind == "damaged":  # a valid header, garbage pages
        data = ours.read_bytes()
        db.write_bytes(data[:4096] + np.random.default_rng(1).bytes(len(data) - 4096))
    elif kind == "newer":
        db.write_bytes(ours.read_bytes())
        with sqlite3.connect(db) as con:
            con.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
        con.close()
    else:
        _other_program(db, wal=kind.endswith("wal"))
    before, listing = _sha(db), sorted(os.listdir(tmp_path))
    for args in (_rank_args(root, ref, db), ["leaderboard", "--db", str(db), "--track", "align"],
                 ["leaderboard", "--db", str(db), "--track", "align", "--format", "csv"]):
        res = CliRunner().invoke(main, args)
        assert res.exit_code == 2 and isinstance(res.exception, SystemExit), res.output
        assert "target.db" in res.stderr and "Fix:" in res.stderr and "Traceback" not in res.output
    assert _sha(db) == before and sorted(os.listdir(tmp_path)) == listing  # no -wal, -shm or -journal either


def test_a_store_of_the_first_version_is_read_and_then_stamped(tmp_path) -> None:
    root, ref, db = _store_made_by_rank(tmp_path)
    with sqlite3.connect(db) as con:  # what the first version wrote: WAL, no id, no user_version
        con.execute("PRAGMA application_id = 0")
        con.execute("PRAGMA user_version = 0")
        con.execute("PRAGMA journal_mode=WAL")
    con.close()
    assert _header_ids(db) == (0, 0)
    expected = render(db, "align", "json")
    assert _header_ids(db) == (0, 0)  # a read-only open never stamps
    proc = _cli(*_rank_args(root, ref, db))
    assert proc.returncode == 0 and "2 already in" in proc.stderr
    assert _header_ids(db) == (APPLICATION_ID, SCHEMA_VERSION)
    assert render(db, "align", "json") == expected


def test_a_new_store_carries_our_id(tmp_path) -> None:
    _, _, db = _store_made_by_rank(tmp_path)
    assert _header_ids(db) == (APPLICATION_ID, SCHEMA_VERSION)
    assert not Path(f"{db}-wal").exists() and not Path(f"{db}-shm").exists()  # back to a rollback journal


def test_read_only_commands_write_nothing(tmp_path, monkeypatch) -> None:
    _, _, db = _store_made_by_rank(tmp_path, "ro/lb.db")
    folder = db.parent
    expected = render(db, "align", "json")
    stamp = (_sha(db), db.stat().st_mtime_ns)
    db.chmod(0o444)
    folder.chmod(0o555)
    try:
        for fmt in ("table", "csv", "md", "json"):
            proc = _cli("leaderboard", "--db", str(db), "--track", "align", "--format", fmt)
            assert proc.returncode == 0, proc.stderr
        assert json.loads(proc.stdout) == json.loads(expected)
        # root ignores permissions: check that the opens were read-only ones, and that nothing changed
        uris: list[str] = []
        real_connect = sqlite3.connect
        monkeypatch.setattr(sqlite3, "connect", lambda db, *a, **k: uris.append(db) or real_connect(db, *a, **k))
        assert render(db, "align", "json") == expected
        monkeypatch.undo()
        assert uris and all(u.startswith("file:") and u.endswith("?mode=ro") for u in uris)
        assert (_sha(db), db.stat().st_mtime_ns) == stamp and os.listdir(folder) == ["lb.db"]
    finally:
        folder.chmod(0o755)
        db.chmod(0o644)
    with Store(db, readonly=True) as store, pytest.raises(StoreError, match="read-only"):
        store.set_meta("x", 1)


def test_a_wal_store_on_a_read_only_disk_is_read_without_side_files(tmp_path, monkeypatch) -> None:
    _, _, db = _store_made_by_rank(tmp_path)
    expected = render(db, "align", "json")
    with sqlite3.connect(db) as con:
        con.execute("PRAGMA journal_mode=WAL")  # header says WAL; the -wal file is gone after close
    con.close()
    assert not Path(f"{db}-wal").exists()
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda p, mode, **k: False if mode == os.W_OK else real_access(p, mode, **k))
    stamp = (_sha(db), db.stat().st_mtime_ns)
    assert render(db, "align", "json") == expected
    assert (_sha(db), db.stat().st_mtime_ns) == stamp
    assert not Path(f"{db}-wal").exists() and not Path(f"{db}-shm").exists()


def test_a_full_disk_exits_2_and_a_rerun_gives_the_undisturbed_board(tmp_path, monkeypatch) -> None:
    root, ref = _challenge(tmp_path, {f"t{i}": [0.2 + 0.3 * i, 0.4 + 0.2 * i] for i in range(4)}, n=40)
    clean, full = tmp_path / "clean.db", tmp_path / "full.db"
    rank(root, "align", ref, clean)
    real_add = Store.add_result
    calls = []

    def disk_fills_up(self, *args, **kwargs):
        calls.append(1)
        if len(calls) > 3:
            raise sqlite3.OperationalError("database or disk is full")
        return real_add(self, *args, **kwargs)

    monkeypatch.setattr(Store, "add_result", disk_fills_up)
    res = CliRunner().invoke(main, _rank_args(root, ref, full, "--workers", "2"))
    assert res.exit_code == 2
    assert "full.db" in res.stderr and "disk is full" in res.stderr and "Fix:" in res.stderr
    monkeypatch.undo()
    assert _results_count(full) == 3
    res = CliRunner().invoke(main, _rank_args(root, ref, full))
    assert res.exit_code == 0, res.output
    assert render(full, "align", "json") == render(clean, "align", "json")


def test_leaderboard_out_into_a_missing_folder(tmp_path) -> None:
    _, _, db = _store_made_by_rank(tmp_path)
    target = tmp_path / "new" / "deeper" / "board.csv"
    res = CliRunner().invoke(main, ["leaderboard", "--db", str(db), "--track", "align", "--format", "csv",
                                    "--out", str(target)])
    assert res.exit_code == 0 and target.read_text().startswith("rank,")
    (tmp_path / "plain").write_text("a file, not a folder")
    res = CliRunner().invoke(main, ["leaderboard", "--db", str(db), "--track", "align", "--format", "csv",
                                    "--out", str(tmp_path / "plain" / "board.csv")])
    assert res.exit_code == 2 and "cannot write" in res.stderr and "Fix:" in res.stderr


@pytest.mark.parametrize("when", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00", "2025-02-30T00:00:00Z"])
def test_a_manifest_time_out_of_range_names_the_line(tmp_path, when) -> None:
    root, ref = _challenge(tmp_path, {"a": [0.3]})
    manifest = tmp_path / "m.csv"
    manifest.write_text(f"path,team,leader,submitted_at,phase\nsubs/a/s0.zip,a,A,2025-03-01T10:00:00Z,test\n"
                        f"subs/a/s0.zip,b,B,{when},test\n")
    proc = _cli("rank", "--manifest", str(manifest), "--track", "align", "--ref", str(ref), "--db",
                str(tmp_path / "lb.db"))
    assert proc.returncode == 2 and "m.csv, line 3" in proc.stderr and when in proc.stderr


def _colliding_keys_pickle(n: int) -> bytes:
    """A dict of ``n`` integer keys that all hash alike (multiples of 2**61 - 1): loading it takes
    quadratic time inside the C unpickler, where no Python-level timer can interrupt it."""
    modulus = (1 << 61) - 1
    out = bytearray(b"\x80\x04}(")  # PROTO 4, EMPTY_DICT, MARK
    for i in range(1, n + 1):
        key = (modulus * i).to_bytes(12, "little", signed=True)
        out += b"\x8a\x0c" + key + b"K\x00"  # LONG1 key, BININT1 0
    return bytes(out + b"u.")  # SETITEMS, STOP


def test_a_file_that_hangs_the_unpickler_is_stopped_by_the_time_limit(tmp_path) -> None:
    import pickle
    import zipfile

    from helpers import random_structure, structure_zip

    from ntire_t2iqa.tracks.common import README_TEMPLATE

    sub, ref = random_structure(6, seed=5)
    (tmp_path / "gt.pkl").write_bytes(pickle.dumps(ref))
    root = tmp_path / "subs"
    (root / "honest").mkdir(parents=True)
    (root / "flood").mkdir()
    structure_zip(root / "honest" / "s.zip", sub)
    with zipfile.ZipFile(root / "flood" / "s.zip", "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("output.pkl", _colliding_keys_pickle(200_000))  # minutes of work unbounded
        zf.writestr("readme.txt", README_TEMPLATE)
    db = tmp_path / "lb.db"
    proc = _cli("rank", str(root), "--track", "structure", "--ref", str(tmp_path / "gt.pkl"), "--db", str(db),
                "--timeout", "2", "--workers", "2", timeout=120)
    assert proc.returncode == 0, proc.stderr
    board = json.loads(_cli("leaderboard", "--db", str(db), "--track", "structure", "--format", "json").stdout)
    assert [r["team"] for r in board["rows"]] == ["honest"]
    (bad,) = board["invalid"]
    assert bad["team"] == "flood" and "took longer than 2 s" in bad["reasons"][0]["what"]


def test_a_scorer_failure_is_tried_again_by_other_scoring_code(tmp_path, monkeypatch) -> None:
    """A file made invalid by an unexpected failure of the scorer (a bug) is scored again once the scoring
    code changes; a file that is invalid on its own merits is not."""
    root, ref = _challenge(tmp_path, {"ok": [0.3], "bug": [0.4]})
    (root / "bad").mkdir()
    align_zip(root / "bad" / "s0.zip", [{"img_path": "x"}])
    entry = "evaluate" if hasattr(runner, "evaluate") else "score"  # what the worker calls to score a file
    real_score = getattr(runner, entry)

    def buggy_score(path, *args, **kwargs):
        if Path(path).parent.name == "bug":
            raise AttributeError("a bug in this version of the scorer")
        return real_score(path, *args, **kwargs)

    db = tmp_path / "lb.db"
    monkeypatch.setattr(runner, entry, buggy_score)
    monkeypatch.setattr(runner, "toolkit_fingerprint", lambda: "version-1")
    board, _ = rank(root, "align", ref, db, workers=2)
    assert sorted(r["team"] for r in board.invalid) == ["bad", "bug"]
    board, again = rank(root, "align", ref, db, workers=2)  # the same code: nothing to do
    assert again.scored == 0
    monkeypatch.setattr(runner, entry, real_score)
    monkeypatch.setattr(runner, "toolkit_fingerprint", lambda: "version-2")
    board, fixed = rank(root, "align", ref, db, workers=2)
    assert fixed.scored == 1  # only the scorer failure, not the file that is invalid on its own
    assert sorted(r.team for r in board.rows) == ["bug", "ok"] and [r["team"] for r in board.invalid] == ["bad"]
