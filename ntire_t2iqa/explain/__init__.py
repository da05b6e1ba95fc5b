"""Diagnostics: where a submission loses points, per element category, T2I model, prompt type and image.

:func:`explain` scores the submission with the scoring core (so the headline equals
``score``'s to the last bit) and breaks the result down; :mod:`.report` renders it as a
terminal summary, JSON or one self-contained HTML page.

Example:
    >>> from ntire_t2iqa.explain import explain                          # doctest: +SKIP
    >>> report = explain("sub.zip", "val_eval.json", "align")            # doctest: +SKIP
    >>> report.data["categories"][0]["category"], report.data["calibration"]["best_threshold"]  # doctest: +SKIP
"""

from __future__ import annotations

import base64
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2

from .. import metrics
from ..archive import Limits
from ..scoring import evaluate
from ..tracks.common import Result
from . import align, structure

PathLike = str | os.PathLike[str]
THUMB_SIZE = 112


@dataclass
class Explanation:
    """A scored submission broken down: ``result`` is exactly ``score``'s, ``data`` the tables."""

    track: str
    submission: str
    result: Result
    data: dict[str, Any]
    figures: dict[str, Any] = field(default_factory=dict, repr=False)

    def to_dict(self) -> dict[str, Any]:
        """JSON form: the headline (``score --json``'s object) and every table."""
        return {"track": self.track, "submission": self.submission, "headline": self.result.to_dict(), **self.data}


def explain(submission: PathLike, reference: Any, track: str, images: PathLike | None = None,
            plcc_fit: str = "official", top: int = 20, overlays: int = 50, limits: Limits | None = None) -> Explanation:
    """Score ``submission`` against ``reference`` (a path or a loaded reference) and break the score down.

    ``images``: the test pictures (Track 2 overlays are drawn over them, Track 1's largest
    rank errors get thumbnails); ``top``: rows in the worst-of lists; ``overlays``: how
    many of the worst Track 2 images get an overlay picture. Raises the same errors as
    :func:`ntire_t2iqa.score`.
    """
    evaluation = evaluate(submission, reference, track, plcc_fit, limits)
    result = evaluation.result
    fit_mode = metrics.resolve_fit(track, plcc_fit)
    folder = Path(images) if images is not None else None
    if track == "align":
        data = align.analyse(result, evaluation.reference, fit_mode, top)
    else:
        data = structure.analyse(result, evaluation.records, evaluation.reference, fit_mode, top, folder, overlays)
    figures = data.pop("figures")
    if track == "align" and folder is not None:
        figures["thumbs"] = _thumbnails(folder, [row["name"] for row in data["rank_errors"]])
    return Explanation(track, Path(submission).name, result, data, figures)


def _thumbnails(folder: Path, names: list[str]) -> dict[str, str]:
    """``{img_path: data URI}`` of small JPEG thumbnails of the pictures that exist under ``folder``."""
    out = {}
    root = folder.resolve()
    for name in names:
        path = (folder / name).resolve()
        if root not in path.parents or not path.is_file():
            continue
        picture = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if picture is None:
            continue
        h, w = picture.shape[:2]
        scale = THUMB_SIZE / max(h, w)
        small = cv2.resize(picture, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)
        ok, data = cv2.imencode(".jpg", small, [cv2.IMWRITE_JPEG_QUALITY, 80])
        if ok:
            out[name] = "data:image/jpeg;base64," + base64.b64encode(data.tobytes()).decode("ascii")
    return out


__all__ = ["Explanation", "explain", "align", "structure"]
