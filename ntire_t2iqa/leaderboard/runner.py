"""Score many submissions in worker processes and write each result as it arrives.

Every participant file ends scored or invalid. An exception while reading or scoring a
participant's file (a hostile pickle's RecursionError, a MemoryError, a bug it triggers)
makes it invalid, with the exception's type as the participant-safe reason (stored with the
scoring code's fingerprint: another version of the code tries the file again, so a bug in the
toolkit never condemns a file for good); only an
OSError (an organizer-side fault: the file vanished, permission denied) leaves it failed,
reported and tried again on the next run, while the rest goes on.

Scoring always runs in worker processes, each file under a time limit that the kernel
enforces (``SIGALRM``'s default action ends the worker even inside a C loop that never
returns to Python, such as a hostile pickle's colliding dict keys). A file that kills its
worker (too slow, out of memory, a crash) is scored again alone, after a fresh worker has shown that it can load the
reference, and is invalid if it kills that worker too. Workers ignore SIGINT, die on
SIGTERM, die with the ranking process (Linux), and are terminated at once when the run
stops for any reason: a signal (see :func:`signals_raise`), Ctrl-C or a store failure.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import sys
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import tracks
from ..errors import ReferenceDataError, SubmissionError, ToolkitError
from ..safetext import clip, plain, unicode_safe
from ..scoring import Evaluation, evaluate
from .collect import NotRegularFile, open_regular, sha256_file
from .predictions import image_info, meta_key, of_result
from .store import Entry, Scope, Store, pack_details

_STOP_SIGNALS = tuple(getattr(signal, name) for name in ("SIGTERM", "SIGHUP") if hasattr(signal, name))
_MASKED = {signal.SIGINT, *_STOP_SIGNALS}
_DIED = "made the scoring process end abruptly (out of memory, or a crash), even when scored alone."
_SLOW = "took longer than {:g} s to read and score, even when scored alone."
#: Seconds one file may take to be read and scored (``rank --timeout``).
DEFAULT_TIMEOUT = 600.0
_CHECK_IT = "Check it with `ntire-t2iqa validate`; if it passes there, send it to the organizers."

# Per-worker state: the reference is loaded once per process.
_WORKER: dict[str, Any] = {}

Item = tuple[str, str]  # (sha256, path to open)


class Interrupted(BaseException):
    """A stop signal (SIGTERM, SIGHUP) raised as an exception in the main thread."""

    def __init__(self, signum: int):
        self.signum = signum
        super().__init__(signal.Signals(signum).name)


@contextmanager
def signals_raise() -> Iterator[None]:
    """Within the block, SIGTERM and SIGHUP raise :class:`Interrupted` (SIGINT raises KeyboardInterrupt)."""
    def handler(signum: int, frame: object) -> None:
        raise Interrupted(signum)

    previous = {s: signal.signal(s, handler) for s in _STOP_SIGNALS}
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


def reference_fingerprint(reference: Path, track: str) -> str:
    """sha256 of the reference file that ``track`` loads from ``reference`` (a file or a folder)."""
    file = tracks.get(track).reference_file(reference)
    try:
        return sha256_file(file)
    except (OSError, NotRegularFile) as exc:
        raise ReferenceDataError(unicode_safe(str(file)), f"cannot be read ({plain(clip(str(exc)))}).") from None


# --------------------------------------------------------------------------- in a worker


def _die_with_parent(parent: int) -> None:
    """Linux: the kernel kills this worker when the ranking process ends, however it ends."""
    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes

        ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return
    if os.getppid() != parent:  # it ended before the line above
        os._exit(1)


def _init_worker(reference: str, track: str, plcc_fit: str, parent: int, timeout: float = 0.0) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole group: the parent stops us
    for s in _STOP_SIGNALS:
        signal.signal(s, signal.SIG_DFL)
    if hasattr(signal, "pthread_sigmask"):
        signal.pthread_sigmask(signal.SIG_UNBLOCK, _MASKED)  # blocked by the parent while it started us
    _die_with_parent(parent)
    _WORKER.update(track=track, plcc_fit=plcc_fit, timeout=timeout)
    try:
        _WORKER["reference"] = tracks.get(track).load_reference(reference)
    except ReferenceDataError as exc:
        _WORKER["error"] = (exc.where, exc.what, exc.fix)
    except Exception as exc:  # noqa: BLE001 - reported by the parent as a reference error, never a traceback
        _WORKER["error"] = (reference, f"could not be loaded ({type(exc).__name__}: {plain(clip(str(exc)))}).", "")


def _ready() -> tuple[str, str, str] | None:
    """None when this worker holds the reference, else the reference error."""
    return _WORKER.get("error")


def toolkit_fingerprint() -> str:
    """sha256 of the scoring code (every module of the package), computed once per process."""
    if "toolkit" not in _WORKER:
        digest = hashlib.sha256()
        package = Path(__file__).resolve().parent.parent
        for src in sorted(package.rglob("*.py")):
            digest.update(src.relative_to(package).as_posix().encode() + b"\0" + src.read_bytes())
        _WORKER["toolkit"] = digest.hexdigest()
    return _WORKER["toolkit"]


def _invalid(reason: list[dict[str, str]], note: str = "", failure: str = "") -> dict[str, Any]:
    """An invalid result; ``failure`` names a scorer failure (not a finding about the file), which is
    stored with the scoring code's fingerprint so that another version of the code tries the file again."""
    metrics = {"scorer_failure": failure, "toolkit": toolkit_fingerprint()} if failure else None
    return {"status": "invalid", "main_score": None, "metrics": metrics, "reason": reason, "details": None,
            "note": note}


def _problem(where: str, what: str, fix: str = "") -> list[dict[str, str]]:
    return [{"severity": "error", "where": where, "what": what, "fix": fix}]


def _time_limit(seconds: float) -> None:
    """From now, the kernel ends this process after ``seconds`` (0: never); set again for each file."""
    if hasattr(signal, "setitimer"):
        signal.signal(signal.SIGALRM, signal.SIG_DFL)
        signal.setitimer(signal.ITIMER_REAL, max(seconds, 0.0))


def _score_one(path: str) -> dict[str, Any]:
    """Score one file in a worker; returns a plain dict and never raises."""
    if "error" in _WORKER:
        return {"status": "reference-error", "error": _WORKER["error"]}
    _time_limit(_WORKER.get("timeout", 0.0))
    try:
        return _score_file(path)
    finally:
        _time_limit(0)


def _score_file(path: str) -> dict[str, Any]:
    name = unicode_safe(os.path.basename(path))
    try:
        os.close(open_regular(path))  # still a regular file: a pipe swapped in is never handed to the reader
        evaluation = evaluate(path, _WORKER["reference"], _WORKER["track"], _WORKER["plcc_fit"])
        result = evaluation.result
        metrics = result.to_dict()
        json.dumps(metrics)  # storable
        return {"status": "ok", "main_score": result.main_score, "metrics": metrics, "reason": None,
                "details": pack_details(result.details), **_for_integrity(evaluation)}
    except SubmissionError as exc:
        return _invalid([p.to_dict() for p in exc.errors])
    except NotRegularFile as exc:
        return _invalid(_problem(name, f"is {exc.kind}, not a regular file.", "Submit the zip file itself."))
    except (OSError, ToolkitError) as exc:  # organizer side: not stored, so the next run tries it again
        return {"status": "failed", "reason": _problem(unicode_safe(path), f"{type(exc).__name__}: "
                                                                           f"{plain(clip(str(exc)))}")}
    except MemoryError:
        return _invalid(_problem(name, "needs more memory to read and score than this machine has.",
                                 "Submit smaller arrays (e.g. 448 x 448 uint8 masks)."), "MemoryError", "MemoryError")
    except Exception as exc:  # noqa: BLE001 - a participant's file must never make the run fail
        return _invalid(_problem(name, f"could not be read or scored (the scorer failed with {type(exc).__name__}).",
                                 _CHECK_IT), f"{type(exc).__name__}: {plain(clip(_text(exc)))}", type(exc).__name__)


def _for_integrity(evaluation: Evaluation) -> dict[str, Any]:
    """Per-image predictions (and, once per worker, the image list) for ``integrity``.

    Computed from what scoring parsed; a failure here leaves the predictions out and never
    changes the score.
    """
    track = _WORKER["track"]
    out: dict[str, Any] = {}
    try:
        out["predictions"] = of_result(track, evaluation.records, evaluation.result.details)
        if not _WORKER.get("images_sent"):
            out["images"] = image_info(track, evaluation.result.details)
            _WORKER["images_sent"] = True
    except Exception:  # noqa: BLE001 - integrity evidence is optional; the score stands
        out["predictions"] = None
    return out


def _text(exc: BaseException) -> str:
    try:
        return str(exc)
    except Exception:  # noqa: BLE001 - a message that cannot even be formatted
        return "(no message)"


# --------------------------------------------------------------------------- in the ranking process


@contextmanager
def _signals_blocked() -> Iterator[None]:
    """Workers start with stop signals blocked, until their initializer has set their own handlers."""
    if not hasattr(signal, "pthread_sigmask"):
        yield
        return
    old = signal.pthread_sigmask(signal.SIG_BLOCK, _MASKED)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


def _stop(pool: ProcessPoolExecutor) -> None:
    """Terminate every worker now (SIGTERM, then SIGKILL after 3 s) and wait for them."""
    procs = list((getattr(pool, "_processes", None) or {}).values())  # no public way before Python 3.14
    pool.shutdown(wait=False, cancel_futures=True)
    for p in procs:
        if p.is_alive():
            p.terminate()
    deadline = time.monotonic() + 3
    for p in procs:
        p.join(max(0.0, deadline - time.monotonic()))
    for p in procs:
        if p.is_alive():
            p.kill()
            p.join(1)


def _pool_pass(items: list[Item], workers: int, initargs: tuple[Any, ...],
               on_result: Callable[[Item, dict[str, Any]], None],
               check_ready: bool = False) -> tuple[list[Item], list[Item]]:
    """Score ``items`` in one pool; returns (items whose worker died, items not yet started)."""
    queue = deque(items)
    lost: list[Item] = []
    with _signals_blocked():
        pool = ProcessPoolExecutor(max_workers=max(1, min(workers, len(items))), initializer=_init_worker,
                                   initargs=initargs)
    try:
        if check_ready:
            with _signals_blocked():
                ready = pool.submit(_ready)
            try:
                error = ready.result()
            except BrokenProcessPool:
                error = (initargs[0], "could not be loaded: the scoring process ended abruptly while loading it "
                                      "(out of memory?).", "Free memory, or use fewer --workers.")
            if error:
                raise ReferenceDataError(*error)
        pending: dict[Future[dict[str, Any]], Item] = {}
        while queue or pending:
            try:
                while queue and len(pending) < workers * 2:
                    with _signals_blocked():
                        pending[pool.submit(_score_one, queue[0][1])] = queue[0]
                    queue.popleft()
            except BrokenProcessPool:
                pass
            if not pending:
                break
            complete, _ = wait(pending, return_when=FIRST_COMPLETED)
            for fut in complete:
                item = pending.pop(fut)
                try:
                    out = fut.result()
                except BrokenProcessPool:
                    lost.append(item)
                    continue
                if out["status"] == "reference-error":
                    raise ReferenceDataError(*out["error"])
                on_result(item, out)
    except BaseException:
        _stop(pool)
        raise
    pool.shutdown(wait=True)
    return lost, list(queue)


@dataclass
class RunSummary:
    """What one ranking run did; ``notes`` are organizer-only details of unexpected scorer failures.

    ``refused``: ``team: file (time): reason`` of each submission over a limit (never scored).
    """

    total: int
    already_scored: int
    scored: int
    invalid: int
    failed: list[str]
    notes: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)


def score_entries(store: Store, scope: Scope, entries: list[Entry], reference: Path, workers: int = 1,
                  progress: Callable[[int, int], None] | None = None,
                  timeout: float = DEFAULT_TIMEOUT) -> RunSummary:
    """Record entries, then score each distinct hash not yet scored in ``scope``.

    ``timeout``: seconds one file may take (0: no limit); a file over it is invalid.

    Each result is committed on its own as soon as it is known, so an interrupted run
    loses at most the submissions being scored at that moment.
    """
    store.add_entries(entries)
    done = store.scored(scope, toolkit_fingerprint())
    todo: dict[str, str] = {}
    rejected: dict[str, Entry] = {}
    for e in entries:
        if e.sha256 not in done and e.sha256 not in todo and e.sha256 not in rejected:
            if e.rejected:
                rejected[e.sha256] = e
            else:
                todo[e.sha256] = e.file
    summary = RunSummary(len(entries), len(entries) - sum(1 for e in entries if e.sha256 in todo or
                                                          e.sha256 in rejected), 0, 0, [])
    total = len(todo) + len(rejected)
    finished = 0
    if progress:
        progress(0, total)

    def record(item: Item, out: dict[str, Any]) -> None:
        nonlocal finished
        sha, path = item
        finished += 1
        if out["status"] == "failed":  # not stored: the next run tries again
            summary.failed.append(f"{unicode_safe(path)}: {out['reason'][0]['what']}")
        else:
            if out.get("images") and not (store.get_meta(meta_key(scope.track, scope.ref_sha256)) or {}).get("keys"):
                store.set_meta(meta_key(scope.track, scope.ref_sha256), out["images"])
            store.add_result(scope, sha, out["status"], out["main_score"], out["metrics"], out["reason"],
                             out["details"], out.get("predictions"))
            summary.scored += 1
            summary.invalid += out["status"] == "invalid"
            if out.get("note"):
                summary.notes.append(f"{unicode_safe(path)}: invalid after {out['note']}")
        if progress:
            progress(finished, total)

    for sha, e in rejected.items():
        name = os.path.basename(e.path)
        record((sha, e.path), _invalid(_problem(name, e.rejected, "Submit the zip file itself.")))
    remaining = list(todo.items())
    initargs = (str(reference), scope.track, scope.plcc_fit, os.getpid(), timeout)
    suspects: list[Item] = []
    while remaining:
        lost, remaining = _pool_pass(remaining, workers, initargs, record)
        suspects += lost
    for item in suspects:  # each alone, in a fresh worker that first shows it can load the reference
        start = time.monotonic()
        lost, _ = _pool_pass([item], 1, initargs, record, check_ready=True)
        slow = bool(timeout) and time.monotonic() - start >= timeout
        for dead in lost:
            what = _SLOW.format(timeout) if slow else _DIED
            record(dead, _invalid(_problem(unicode_safe(os.path.basename(dead[1])), what, _CHECK_IT),
                                  "the time limit" if slow else "the scoring process ended abruptly",
                                  "time limit" if slow else "crash"))
    return summary
