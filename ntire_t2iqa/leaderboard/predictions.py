"""Compact per-image predictions kept with every scored submission, for ``integrity``.

They are taken from what scoring already parsed (no zip is read again) and hold what
comparing two submissions needs, in the reference's image order:

* ``totals``: each image's total score (Track 1) or structure score (Track 2), float64;
* Track 1: every element's decision (value >= 0.5, the scorer's threshold), bit-packed in the
  reference's element order (``elements_per_image`` in the scope's image list maps them to images);
* Track 2: per image, a 64-bit checksum of the submitted mask array and a 32 x 32 grid of it (a
  cell is set when at least half of its pixels are nonzero), bit-packed.

Size per submission: Track 1, 8 bytes per image plus one bit per element (57 KB for 6,500
images and 39,000 elements); Track 2, 144 bytes per image.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np

from ..metrics import ELEMENT_THRESHOLD

try:  # zlib-ng checksums several times faster than zlib, with the same interface and results
    from zlib_ng import zlib_ng as _zlib
except ImportError:  # pragma: no cover - a core dependency
    import zlib as _zlib  # type: ignore[no-redef]

#: Cells per side of a Track 2 mask grid (of the scorer's 512 x 512 mask: 16 x 16 pixels a cell).
GRID = 32
GRID_BYTES = GRID * GRID // 8

#: A stored row: (n_images, totals, decisions, n_decisions, mask_hash, mask_grid).
Row = tuple[Any, ...]


@dataclass
class Predictions:
    """One submission's per-image predictions (see the module docstring)."""

    totals: np.ndarray
    decisions: np.ndarray | None = None
    n_decisions: int = 0
    mask_hash: np.ndarray | None = None
    mask_grid: np.ndarray | None = None

    @property
    def n_images(self) -> int:
        """Images covered."""
        return int(self.totals.size)

    def row(self) -> Row:
        """The stored form: (n_images, totals, decisions, n_decisions, mask_hash, mask_grid) as bytes."""
        def raw(a: np.ndarray | None, dtype: str) -> bytes | None:
            return None if a is None else np.ascontiguousarray(a, dtype=dtype).tobytes()

        return (self.n_images, raw(self.totals, "<f8"), raw(self.decisions, "u1"),
                self.n_decisions if self.decisions is not None else None, raw(self.mask_hash, "<u8"),
                raw(self.mask_grid, "u1"))

    @classmethod
    def from_row(cls, row: tuple[Any, ...]) -> Predictions:
        """Inverse of :meth:`row`; raises ValueError for blobs whose sizes disagree."""
        n, totals, decisions, n_decisions, mask_hash, mask_grid = row
        out = cls(np.frombuffer(totals, dtype="<f8"))
        if out.n_images != n:
            raise ValueError("stored totals do not match the image count")
        if decisions is not None:
            out.decisions, out.n_decisions = np.frombuffer(decisions, dtype=np.uint8), int(n_decisions or 0)
            if out.decisions.size != (out.n_decisions + 7) // 8:
                raise ValueError("stored decisions do not match their count")
        if mask_hash is not None:
            out.mask_hash = np.frombuffer(mask_hash, dtype="<u8")
            if out.mask_hash.size != n:
                raise ValueError("stored mask hashes do not match the image count")
        if mask_grid is not None:
            out.mask_grid = np.frombuffer(mask_grid, dtype=np.uint8).reshape(-1, GRID_BYTES)
            if out.mask_grid.shape[0] != n:
                raise ValueError("stored mask grids do not match the image count")
        return out

    def decision_bits(self) -> np.ndarray:
        """Track 1 element decisions as a bool array (empty when none are stored)."""
        if self.decisions is None:
            return np.zeros(0, dtype=bool)
        return np.unpackbits(self.decisions, count=self.n_decisions).view(bool)


@lru_cache(maxsize=16)
def _cells(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Along a side of ``n`` pixels: the GRID cells' pixel boundaries, and each pixel's cell."""
    edges = (np.arange(GRID + 1) * n + GRID // 2) // GRID
    return edges, np.repeat(np.arange(GRID), np.diff(edges))


def _checksum(data: bytes) -> int:
    """64 bits from two fast checksums (CRC-32 and Adler-32) of ``data``."""
    return (_zlib.crc32(data) << 32) | _zlib.adler32(data)


def mask_fingerprint(pred_area: np.ndarray) -> tuple[int, np.ndarray]:
    """(64-bit checksum, packed 32 x 32 grid) of a submitted mask array.

    The checksum covers the array's shape, type and every value in its nonzero box: any
    change to the submitted mask changes it (but for a chance of 2**-64). The grid splits the
    mask into 32 x 32 cells (16 x 16 pixels at 512 x 512, proportionally at other sizes); a
    cell is set when at least half of its pixels are nonzero. Only the cells around the
    nonzero box are read.
    """
    import cv2  # Track 2 only: Track 1 ranking never needs OpenCV

    from ..regions import nonzero_box

    grid = np.zeros((GRID, GRID), dtype=bool)
    h, w = pred_area.shape
    bx, by, bw, bh = nonzero_box(pred_area)
    if bw == 0:
        return 0, np.packbits(grid)
    head = struct.pack("<6i", h, w, by, bx, bh, bw) + pred_area.dtype.str.encode()
    digest = _checksum(head + np.ascontiguousarray(pred_area[by:by + bh, bx:bx + bw]).tobytes())
    (ey, cy), (ex, cx) = _cells(h), _cells(w)
    r0, r1, c0, c1 = int(cy[by]), int(cy[by + bh - 1]) + 1, int(cx[bx]), int(cx[bx + bw - 1]) + 1
    y0, x0 = int(ey[r0]), int(ex[c0])
    region = pred_area[y0:ey[r1], x0:ex[c1]]
    if region.dtype == np.uint8:
        region = cv2.threshold(region, 0, 1, cv2.THRESH_BINARY)[1]
    else:
        region = region.view(np.uint8) if region.dtype == bool else (region != 0).view(np.uint8)
    ys, xs = ey[r0:r1 + 1] - y0, ex[c0:c1 + 1] - x0
    corners = cv2.integral(region)[ys][:, xs]  # running sums at the cell corners
    sums = corners[1:, 1:] - corners[:-1, 1:] - corners[1:, :-1] + corners[:-1, :-1]
    grid[r0:r1, c0:c1] = 2 * sums >= np.outer(np.diff(ys), np.diff(xs))
    return digest, np.packbits(grid)


def _align(details: dict[str, Any]) -> Predictions:
    """Track 1: totals and bit-packed element decisions, from a result's details."""
    decisions = np.asarray(details["pred_element"]) >= ELEMENT_THRESHOLD
    return Predictions(np.asarray(details["pred_total"], dtype=np.float64), np.packbits(decisions),
                       int(decisions.size))


def of_result(track: str, records: Any, details: dict[str, Any]) -> Predictions:
    """Predictions of a scored submission from its checked records and the result's details."""
    if track == "align":
        return _align(details)
    names = details["image"]
    hashes = np.zeros(len(names), dtype=np.uint64)
    grids = np.zeros((len(names), GRID_BYTES), dtype=np.uint8)
    for i, name in enumerate(names):
        hashes[i], grids[i] = mask_fingerprint(records[name].pred_area)
    return Predictions(np.asarray(details["pred_score"], dtype=np.float64), mask_hash=hashes, mask_grid=grids)


def of_details(track: str, details: dict[str, np.ndarray]) -> Predictions | None:
    """What a result stored before schema 2 still gives from its ``details`` (no Track 2 masks)."""
    if track == "align" and "pred_total" in details and "pred_element" in details:
        return _align(details)
    if track == "structure" and "pred_score" in details:
        return Predictions(details["pred_score"].astype(np.float64))
    return None


def image_info(track: str, details: dict[str, Any]) -> dict[str, list[Any]]:
    """The scope's image keys (and Track 1 elements per image), in the order predictions use."""
    keys = details.get("img_path" if track == "align" else "image")
    info: dict[str, list[Any]] = {"keys": [str(k) for k in keys] if keys is not None else []}
    if "elements_per_image" in details:
        info["elements_per_image"] = [int(v) for v in np.asarray(details["elements_per_image"])]
    return info


def meta_key(track: str, ref_sha256: str) -> str:
    """The store's meta key of a scope's image list."""
    return f"images:{track}:{ref_sha256}"
