"""What ``integrity`` reads from the store: every scored submission with its per-image predictions.

One row of each matrix per distinct prediction file (by sha256); a submission entry points
at its row, so a file sent twice, or by two teams, is compared once. Predictions come from
the store's ``predictions`` table; a result stored before schema 2 (or opened read-only in
an older store) falls back to what its ``details`` still give.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import PurePath
from typing import Any

import numpy as np

from .predictions import GRID_BYTES, Predictions, meta_key, of_details
from .store import Scope, Store


@dataclass(frozen=True)
class Sub:
    """One scored submission entry: who sent which file when, and its row in the matrices."""

    id: int
    team: str
    file: str
    submitted_at: str
    sha256: str
    row: int

    def to_dict(self) -> dict[str, Any]:
        """JSON form (the file's name only, never the organizer's folders)."""
        return {"team": self.team, "file": self.file, "submitted_at": self.submitted_at, "sha256": self.sha256}


@dataclass
class Dataset:
    """Submissions and their predictions as matrices (rows: distinct files; columns: images)."""

    track: str
    subs: list[Sub]
    keys: list[str]
    totals: np.ndarray
    elements_per_image: np.ndarray | None = None
    decisions: np.ndarray | None = None
    n_decisions: int = 0
    mask_hash: np.ndarray | None = None
    mask_grid: np.ndarray | None = None
    has_masks: np.ndarray | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def n_images(self) -> int:
        """Images per submission."""
        return int(self.totals.shape[1]) if self.totals.ndim == 2 else 0

    def image_name(self, i: int) -> str:
        """An image's key, or its position in the reference's order when keys were not stored."""
        return self.keys[i] if i < len(self.keys) else f"image #{i + 1}"

    def element_spans(self) -> tuple[np.ndarray, np.ndarray] | None:
        """Track 1: (start, end) of each image's elements in the decision bits; None when unknown."""
        epi = self.elements_per_image
        if epi is None or int(epi.sum()) != self.n_decisions:
            return None
        ends = np.cumsum(epi)
        return ends - epi, ends

    def changed_images(self, a: int, b: int) -> np.ndarray:
        """Indices of the images on which rows ``a`` and ``b`` differ (total, element decision or mask)."""
        diff = self.totals[a] != self.totals[b]
        if self.mask_hash is not None and self.has_masks is not None and self.has_masks[a] and self.has_masks[b]:
            diff |= self.mask_hash[a] != self.mask_hash[b]
        spans = self.element_spans()
        if self.decisions is not None and spans is not None:
            flips = np.unpackbits(self.decisions[a] ^ self.decisions[b], count=self.n_decisions)
            counts = np.concatenate(([0], np.cumsum(flips, dtype=np.int64)))
            diff |= counts[spans[1]] > counts[spans[0]]
        return np.flatnonzero(diff)


def _image_info(store: Store, scope: Scope, any_sha: str | None) -> tuple[list[str], np.ndarray | None]:
    info = store.get_meta(meta_key(scope.track, scope.ref_sha256)) or {}
    keys = [str(k) for k in info.get("keys") or []]
    epi = info.get("elements_per_image")
    if epi is None and scope.track == "align" and any_sha is not None:
        epi = store.details(scope, any_sha).get("elements_per_image")
    return keys, (np.asarray(epi, dtype=np.int64) if epi is not None else None)


def load(store: Store, scope: Scope, phase: str | None = None) -> Dataset:
    """Every scored (``ok``) submission of the scope, with its predictions, as a :class:`Dataset`.

    A submission refused by a submission limit is left out (its team never saw a score for it),
    even when the same file was scored as another entry.
    """
    rows = [r for r in store.rows(scope, phase) if r["status"] == "ok" and not r["refused"]]
    stored = store.predictions(scope)
    preds: dict[str, Predictions] = {}
    legacy = missing = 0
    for r in rows:
        sha = r["sha256"]
        if sha in preds:
            continue
        if sha in stored:
            preds[sha] = stored[sha]
            continue
        p = of_details(scope.track, store.details(scope, sha))
        if p is None:
            missing += 1
        else:
            preds[sha], legacy = p, legacy + 1
    sizes = [p.n_images for p in preds.values()]
    n = max(set(sizes), key=sizes.count) if sizes else 0
    n_dec = [p.n_decisions for p in preds.values() if p.decisions is not None]
    n_dec_common = max(set(n_dec), key=n_dec.count) if n_dec else 0
    odd = {sha for sha, p in preds.items() if p.n_images != n or (p.decisions is not None and
                                                                  p.n_decisions != n_dec_common)}
    order = [sha for sha in preds if sha not in odd]
    index = {sha: i for i, sha in enumerate(order)}
    subs = [Sub(r["id"], r["team"], PurePath(r["path"]).name, r["submitted_at"], r["sha256"], index[r["sha256"]])
            for r in rows if r["sha256"] in index]
    keys, epi = _image_info(store, scope, order[0] if order else None)
    data = Dataset(scope.track, subs, keys if len(keys) == n else [],
                   np.stack([preds[s].totals for s in order]) if order else np.zeros((0, n)), epi)
    if scope.track == "align" and order and all(preds[s].decisions is not None for s in order):
        data.decisions, data.n_decisions = np.stack([preds[s].decisions for s in order]), n_dec_common
    if scope.track == "structure" and order:
        data.has_masks = np.array([preds[s].mask_hash is not None for s in order])
        data.mask_hash = np.stack([preds[s].mask_hash if preds[s].mask_hash is not None else
                                   np.zeros(n, np.uint64) for s in order])
        data.mask_grid = np.stack([preds[s].mask_grid if preds[s].mask_grid is not None else
                                   np.zeros((n, GRID_BYTES), np.uint8) for s in order]).reshape(len(order), -1)
        if not data.has_masks.all():
            data.notes.append(f"{int((~data.has_masks).sum()):,} submission(s) were scored before masks were "
                              "stored: they are compared on scores alone (rank them into a new store for mask "
                              "evidence).")
    if missing or odd:
        data.notes.append(f"{missing + len(odd):,} scored submission(s) have no usable stored predictions and are "
                          "left out.")
    if legacy:
        data.notes.append(f"{legacy:,} submission(s) read from results stored before schema 2.")
    return data
