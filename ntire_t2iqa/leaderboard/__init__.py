"""Organizer ranking: results store, leaderboards, confidence and exports.

Example:
    >>> from ntire_t2iqa.leaderboard import rank, render          # doctest: +SKIP
    >>> board, summary = rank("subs/", "align", "eval.json", "lb.db", workers=2)   # doctest: +SKIP
    >>> print(render("lb.db", "align", "latex"))                  # doctest: +SKIP
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ReferenceDataError
from ..metrics import PLCC_FITS
from ..safetext import quote, unicode_safe
from ..svgplot import Plot
from . import collect, export, html, ranking
from . import limits as submission_limits
from .limits import SubmissionLimits
from .ranking import Leaderboard
from .runner import DEFAULT_TIMEOUT, RunSummary, reference_fingerprint, score_entries
from .store import Entry, Scope, Store
from .storefile import store_error

FORMATS = ("table", "csv", "md", "latex", "html", "json")
#: Formats that can highlight a team's row (CSV and JSON are plain data).
HIGHLIGHT_FORMATS = ("table", "md", "latex", "html")
Progress = Callable[[str, int, int], None]


def rank(submissions: str | Path | None, track: str, reference: str | Path, db: str | Path,
         manifest: str | Path | None = None, pick: str = "best", workers: int = 1, resamples: int = 0,
         plcc_fit: str = "official", seed: int = 0, progress: Progress | None = None,
         phase: str | None = None, timeout: float = DEFAULT_TIMEOUT,
         limits: SubmissionLimits | Mapping[str, Any] | None = None) -> tuple[Leaderboard, RunSummary]:
    """Score every new submission into the store at ``db`` and build the leaderboard.

    ``submissions`` is a folder laid out ``<team>/<file>.zip``; or give ``manifest``, a
    CSV with ``path, team, leader, submitted_at, phase``. Each distinct file (by sha256)
    is scored once per reference and PLCC fit; re-running scores only what is new. A file
    that takes longer than ``timeout`` seconds to read and score (0: no limit) is invalid.

    ``limits`` (:class:`~.limits.SubmissionLimits`, or a mapping of the fields to change;
    None: those stored by an earlier run) refuses submissions over a per-day or per-phase
    limit: they are listed in ``RunSummary.refused`` and never scored or ranked.
    """
    if plcc_fit not in PLCC_FITS:
        raise ValueError(f"unknown plcc_fit {plcc_fit!r}")
    if manifest is None and submissions is None:
        raise ReferenceDataError("rank", "needs a submissions folder or a manifest.")
    reference = Path(reference)
    scope = Scope(track, reference_fingerprint(reference, track), plcc_fit)
    try:
        with Store(db) as store:
            if manifest is not None:
                found = collect.from_manifest(Path(manifest), track, store)
            else:
                found = collect.from_folder(Path(submissions), track, store)  # type: ignore[arg-type]
            store.set_meta(f"scope:{track}", {"ref_sha256": scope.ref_sha256, "plcc_fit": plcc_fit,
                                              "reference": unicode_safe(str(reference.resolve()))})
            chosen = submission_limits.resolve(store, track, limits)

            def run(entries: list[Entry]) -> RunSummary:
                return score_entries(store, scope, entries, reference, workers,
                                     (lambda done, total: progress("scoring", done, total)) if progress else None,
                                     timeout)

            if chosen.active:
                summary = submission_limits.score_within(store, scope, found.entries, chosen, run)
            else:
                store.set_refused(track, {})
                summary = run(found.entries)
            summary.total += len(found.failed)
            summary.failed[:0] = found.failed
            board = ranking.build(store, scope, pick, phase)
            if resamples > 0:
                ranking.bootstrap(store, scope, board, resamples, seed,
                                  (lambda done, total: progress("bootstrap", done, total)) if progress else None)
    except sqlite3.Error as exc:  # the store's own methods say this already; anything else that touched it
        raise store_error(db, exc) from None
    return board, summary


def stored_scope(store: Store, track: str) -> Scope:
    """The scope (reference and fit) of the latest ``rank`` run for a track."""
    meta = store.get_meta(f"scope:{track}")
    if meta is None:
        raise ReferenceDataError(str(store.path), f"holds no ranking run for track {track!r}.",
                                 f"Run `ntire-t2iqa rank ... --track {track} --db {store.path}` first.")
    return Scope(track, meta["ref_sha256"], meta["plcc_fit"])


def render(db: str | Path, track: str, fmt: str, pick: str = "best", phase: str | None = None,
           team: str | None = None, private: bool = False) -> str | Leaderboard:
    """Render a stored leaderboard in ``fmt`` (``table`` returns the :class:`Leaderboard` itself).

    Every format without ``private`` is fit to publish: per-submission aggregates only, no
    per-image value. ``team`` highlights that team's row (``table``, ``md``, ``latex``,
    ``html``; a highlight reveals nothing, so public pages take it too). ``private=True``
    (HTML only) adds the predicted-vs-reference scatter of ``team`` (default: the top row),
    which shows hidden reference scores: the page says on top that it is for organizers only.
    """
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
    if private and fmt != "html":
        raise ValueError("private applies to the HTML page only")
    if team is not None and fmt not in HIGHLIGHT_FORMATS:
        raise ValueError(f"team highlights a row in {', '.join(HIGHLIGHT_FORMATS)} output; {fmt} carries no styling")
    with Store(db, readonly=True) as store:
        scope = stored_scope(store, track)
        board = ranking.build(store, scope, pick, phase)
        _check_team(store, scope, board, team)
        if fmt == "table":
            return board
        if fmt == "html":
            scores, scatter = _page_data(store, scope, board, phase, team, private)
            return html.to_html(board, scores, scatter, private=private, highlight=team)
    if fmt == "md":
        return export.to_markdown(board, team)
    if fmt == "latex":
        return export.to_latex(board, team)
    return {"csv": export.to_csv, "json": export.to_json}[fmt](board)


def plots(db: str | Path, track: str, pick: str = "best", phase: str | None = None, team: str | None = None,
          private: bool = False) -> dict[str, Plot]:
    """The HTML page's plots by name (``histogram``, ``components``; ``scatter`` only with ``private``).

    ``team`` is highlighted in the component bars (and picks the private scatter). Write them
    as PNG, PDF or SVG files with :func:`ntire_t2iqa.plotimage.write_plots`.
    """
    with Store(db, readonly=True) as store:
        scope = stored_scope(store, track)
        board = ranking.build(store, scope, pick, phase)
        _check_team(store, scope, board, team)
        scores, scatter = _page_data(store, scope, board, phase, team, private)
    return html.plots(board, scores, scatter, team)


def _check_team(store: Store, scope: Scope, board: Leaderboard, team: str | None) -> None:
    if team is not None and not any(team in (r.team, r.display_team) for r in [*board.rows, *board.baselines]):
        names = ", ".join(quote(r.display_team) for r in [*board.rows, *board.baselines][:10])
        raise ReferenceDataError(str(store.path), f"has no team {quote(team)} on the {scope.track} leaderboard "
                                 f"(teams: {names or 'none'}).", "Pass --team a team shown there.")


def _page_data(store: Store, scope: Scope, board: Leaderboard, phase: str | None, team: str | None,
               private: bool) -> tuple[list[float], tuple[str, np.ndarray, np.ndarray] | None]:
    """The page's main scores of every valid submission and, organizer-only, the scatter's data."""
    scores = [r["main_score"] for r in store.rows(scope, phase) if r["status"] == "ok" and not r["refused"]]
    return scores, (_private_scatter(store, scope, board, team) if private else None)


def _private_scatter(store: Store, scope: Scope, board: Leaderboard,
                     team: str | None) -> tuple[str, np.ndarray, np.ndarray] | None:
    """(team, predicted, reference) per image for the organizer-only page: hidden reference values."""
    pool = [*board.rows, *board.baselines]
    chosen = next((r for r in pool if team in (r.team, r.display_team)), None) if team else \
        (pool[0] if pool else None)
    if team and chosen is None:
        raise ReferenceDataError(str(store.path), f"has no team {team!r} on the {scope.track} leaderboard.")
    if chosen is None:
        return None
    d = store.details(scope, chosen.sha256)
    key_pred, key_gt = ("pred_total", "gt_total") if scope.track == "align" else ("pred_score", "gt_score")
    return (chosen.display_team, d[key_pred], d[key_gt]) if key_pred in d else None


__all__ = ["FORMATS", "HIGHLIGHT_FORMATS", "Leaderboard", "RunSummary", "Scope", "Store", "SubmissionLimits", "plots",
           "rank", "render", "stored_scope"]
