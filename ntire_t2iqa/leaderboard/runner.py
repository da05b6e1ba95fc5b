"""Score many submissions in parallel worker processes and write each result as it arrives."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import tracks
from ..errors import SubmissionError
from ..scoring import score
from .collect import sha256_file
from .store import Entry, Scope, Store, pack_details

# Per-worker state: the reference is loaded once per process.
_WORKER: dict[str, Any] = {}


def reference_fingerprint(reference: Path, track: str) -> str:
    """sha256 of the reference file that ``track`` loads from ``reference`` (a file or a folder)."""
    return sha256_file(tracks.get(track).reference_file(reference))


def _init_worker(reference: str, track: str, plcc_fit: str) -> None:
    _WORKER.update(reference=tracks.get(track).load_reference(reference), track=track, plcc_fit=plcc_fit)


def _score_one(path: str) -> dict[str, Any]:
    """Score one file in a worker; returns a plain dict (never raises for a bad submission)."""
    try:
        result = score(path, _WORKER["reference"], _WORKER["track"], _WORKER["plcc_fit"])
    except SubmissionError as exc:
        return {"status": "invalid", "main_score": None, "metrics": None,
                "reason": [p.to_dict() for p in exc.errors], "details": None}
    except Exception as exc:  # noqa: BLE001 - reported, not stored, so a rerun retries it
        return {"status": "failed", "main_score": None, "metrics": None,
                "reason": [{"severity": "error", "where": path, "what": f"{type(exc).__name__}: {exc}", "fix": ""}],
                "details": None}
    return {"status": "ok", "main_score": result.main_score, "metrics": result.to_dict(), "reason": None,
            "details": pack_details(result.details)}


@dataclass
class RunSummary:
    """What one ranking run did."""

    total: int
    already_scored: int
    scored: int
    invalid: int
    failed: list[str]


def score_entries(store: Store, scope: Scope, entries: list[Entry], reference: Path, workers: int = 1,
                  progress: Callable[[int, int], None] | None = None) -> RunSummary:
    """Record entries, then score each distinct hash not yet scored in ``scope``.

    Each result is committed on its own as soon as it is known, so an interrupted run
    loses at most the submissions being scored at that moment.
    """
    store.add_entries(entries)
    done = store.scored(scope)
    todo: dict[str, str] = {}
    for e in entries:
        if e.sha256 not in done and e.sha256 not in todo:
            todo[e.sha256] = e.path
    invalid = 0
    failed: list[str] = []
    total = len(todo)
    if progress:
        progress(0, total)

    def record(sha: str, out: dict[str, Any]) -> None:
        nonlocal invalid
        if out["status"] == "failed":  # not stored: the next run tries again
            failed.append(f"{todo[sha]}: {out['reason'][0]['what']}")
            return
        invalid += out["status"] == "invalid"
        store.add_result(scope, sha, out["status"], out["main_score"], out["metrics"], out["reason"], out["details"])

    finished = 0
    if total and (workers <= 1 or total == 1):
        _init_worker(str(reference), scope.track, scope.plcc_fit)
        for sha, path in todo.items():
            record(sha, _score_one(path))
            finished += 1
            if progress:
                progress(finished, total)
    elif total:
        with ProcessPoolExecutor(max_workers=workers, initializer=_init_worker,
                                 initargs=(str(reference), scope.track, scope.plcc_fit)) as pool:
            pending: dict[Future[dict[str, Any]], str] = {}
            queue = list(todo.items())
            while queue or pending:
                while queue and len(pending) < workers * 2:
                    sha, path = queue.pop(0)
                    pending[pool.submit(_score_one, path)] = sha
                complete, _ = wait(pending, return_when=FIRST_COMPLETED)
                for fut in complete:
                    record(pending.pop(fut), fut.result())
                    finished += 1
                    if progress:
                        progress(finished, total)
    return RunSummary(len(entries), len(entries) - sum(1 for e in entries if e.sha256 in todo), total - len(failed),
                      invalid, failed)
