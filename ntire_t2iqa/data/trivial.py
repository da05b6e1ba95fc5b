"""Trivial predictors that bracket the score range: every baseline must beat them.

* ``constant``: the same answer everywhere. Track 1: total 3, every element 1 (the
  "everything is there" majority guess); Track 2: score 3, empty masks. SRCC and PLCC
  are undefined and count as 0 (the scorer says so in a warning); Track 2's F1 is 0.
* ``random``: uniform scores in 1..5 and element scores in 0..1; Track 2 masks hold one
  or two random rectangles.
* ``oracle``: the hidden reference plus noise of level ``noise``: scores + N(0, noise),
  element scores + N(0, noise) clipped to 0..1; Track 2 masks are the reference regions,
  each dropped with probability ``noise / 2``, shifted by N(0, 15 noise) pixels, with a
  spurious rectangle added with probability ``noise / 2``. ``noise = 0`` is the perfect
  submission. It reads the hidden reference, so it is a yardstick, never a method.

Each writes a valid submission zip (``output.json`` or ``output.pkl`` and ``readme.txt``).
"""

from __future__ import annotations

import io
import json
import os
import pickle
import zipfile
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from ..tracks import align as align_track
from ..tracks import structure as structure_track
from ..tracks.common import README, README_KEYS
from .layout import TRIVIAL_KINDS, ChallengePaths

PathLike = str | os.PathLike[str]
KINDS = TRIVIAL_KINDS
#: Track 2 masks are submitted at the baseline's 448 x 448, so the scorer's resize is exercised.
MASK_SIZE = 448


def readme_text(description: str, runtime: float = 0.0, cpu: bool = True, extra_data: bool = False,
                llm: bool = False) -> str:
    """The five readme.txt lines of the challenge template."""
    values = (f"{runtime:.2f}", str(int(cpu)), str(int(extra_data)), str(int(llm)), description)
    return "".join(f"{k} : {v}\n" for k, v in zip(README_KEYS, values))


def _check_kind(kind: str, reference: Any) -> None:
    if kind not in KINDS:
        raise ValueError(f"unknown kind {kind!r}; choose one of: {', '.join(KINDS)}")
    if kind == "oracle" and reference is None:
        raise ValueError("the oracle needs the hidden reference; pass reference=...")


def align_predictions(kind: str, expected: dict[str, list[str]], reference: dict[str, Any] | None = None,
                      noise: float = 0.3, seed: int = 0) -> list[dict[str, Any]]:
    """Track 1 output.json records for every image of ``expected`` (img_path -> element keys)."""
    _check_kind(kind, reference)
    rng = np.random.default_rng(seed)
    out = []
    for img in sorted(expected):
        keys = expected[img]
        if kind == "constant":
            total, elements = 3.0, {k: 1.0 for k in keys}
        elif kind == "random":
            total, elements = float(rng.uniform(1, 5)), {k: float(rng.uniform(0, 1)) for k in keys}
        else:
            ref = reference[img]  # type: ignore[index]
            total = float(ref.total + rng.normal(0, noise))
            elements = {k: float(np.clip(ref.elements[k] + rng.normal(0, noise), 0, 1)) for k in keys}
        out.append({"img_path": img, "total_score": total, "element_score": elements})
    return out


def _random_boxes(rng: np.random.Generator, n: int, size: int) -> np.ndarray:
    mask = np.zeros((size, size), np.uint8)
    for _ in range(n):
        w, h = rng.integers(size // 12, size // 4, 2)
        x, y = rng.integers(0, size - w), rng.integers(0, size - h)
        mask[y:y + h, x:x + w] = 1
    return mask


def _noisy_mask(gt: np.ndarray, noise: float, rng: np.random.Generator) -> np.ndarray:
    """Reference regions, some dropped, all shifted, maybe one spurious box (512 x 512 uint8)."""
    n, labels = cv2.connectedComponents(gt.astype(np.uint8))
    keep = [i for i in range(1, n) if rng.random() >= noise / 2]
    mask = np.isin(labels, keep).astype(np.uint8)
    dx, dy = np.round(rng.normal(0, 15 * noise, 2))
    shift = np.float32([[1, 0, dx], [0, 1, dy]])
    mask = cv2.warpAffine(mask, shift, mask.shape[::-1], flags=cv2.INTER_NEAREST, borderValue=0)
    if rng.random() < noise / 2:
        mask |= _random_boxes(rng, 1, gt.shape[0])
    return mask


def structure_predictions(kind: str, names: list[str], reference: Any | None = None, noise: float = 0.3,
                          seed: int = 0, mask_size: int = MASK_SIZE) -> dict[str, dict[str, Any]]:
    """Track 2 output.pkl content for every image name (masks ``mask_size`` square, uint8 0/1)."""
    _check_kind(kind, reference)
    rng = np.random.default_rng(seed)
    out: dict[str, dict[str, Any]] = {}
    for name in sorted(names):
        if kind == "constant":
            score, mask = 3.0, np.zeros((mask_size, mask_size), np.uint8)
        elif kind == "random":
            score, mask = float(rng.uniform(1, 5)), _random_boxes(rng, int(rng.integers(1, 3)), mask_size)
        else:
            score = float(reference.scores[name] + rng.normal(0, noise))  # type: ignore[union-attr]
            full = _noisy_mask(reference.masks[name], noise, rng)  # type: ignore[union-attr]
            mask = cv2.resize(full, (mask_size, mask_size), interpolation=cv2.INTER_NEAREST)
        out[name] = {"score": score, "pred_area": mask.astype(np.uint8)}
    return out


def write_submission(track: str, predictions: Any, out: PathLike, description: str) -> Path:
    """Zip predictions (Track 1 records or Track 2 dict) with a readme.txt into ``out``."""
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    if track == "align":
        member, payload = align_track.OUTPUT, json.dumps(predictions).encode("utf-8")
    elif track == "structure":
        buffer = io.BytesIO()
        pickle.dump(predictions, buffer, protocol=4)
        member, payload = structure_track.OUTPUT, buffer.getvalue()
    else:
        raise ValueError(f"unknown track {track!r}; choose align or structure")
    tmp = path.with_name(path.name + ".tmp")
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        zf.writestr(member, payload)
        zf.writestr(README, readme_text(description))
    os.replace(tmp, path)
    return path


def write_trivial(data: PathLike, track: str, kind: str, split: str = "test", out: PathLike | None = None,
                  noise: float = 0.3, seed: int = 0) -> Path:
    """Write a trivial submission for a synthetic challenge's val/test split; returns the zip path.

    ``out`` defaults to ``submissions/trivial-<track>-<kind>-<split>.zip``.
    """
    paths = ChallengePaths.locate(data)
    if noise < 0:
        raise ValueError(f"noise must be >= 0, not {noise}")
    out = Path(out) if out is not None else Path("submissions") / f"trivial-{track}-{kind}-{split}.zip"
    reference = None
    if track == "align":
        expected = align_track.load_expected(paths.align_inputs(split))
        if kind == "oracle":
            reference = align_track.load_reference(paths.align_reference(split))
        predictions: Any = align_predictions(kind, expected, reference, noise, seed)
    elif track == "structure":
        names = structure_track.load_expected(paths.structure_inputs(split))
        if kind == "oracle":
            reference = structure_track.load_reference(paths.structure_reference(split))
        predictions = structure_predictions(kind, names, reference, noise, seed)
    else:
        raise ValueError(f"unknown track {track!r}; choose align or structure")
    label = f"{kind} (noise {noise:g})" if kind == "oracle" else kind
    return write_submission(track, predictions, out,
                            f"Trivial {label} predictor from `ntire-t2iqa data trivial`; a yardstick, not a method.")
