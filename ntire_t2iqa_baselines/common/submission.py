"""Write a baseline's predictions as a submission zip, with a filled readme.txt, and validate it."""

from __future__ import annotations

import json
import pickle
import zipfile
from pathlib import Path
from typing import Any

from ntire_t2iqa import validate
from ntire_t2iqa.data.sources import TrackData, locate
from ntire_t2iqa.errors import SubmissionError
from ntire_t2iqa.tracks.common import Report

from ..registry import BaselineSpec


def readme_text(seconds_per_image: float, on_gpu: bool, spec: BaselineSpec) -> str:
    """The five readme.txt lines with the measured runtime."""
    return (f"runtime per image [s] : {seconds_per_image:.4f}\n"
            f"CPU[1] / GPU[0] : {0 if on_gpu else 1}\n"
            f"Extra Data [1] / No Extra Data [0] : {int(spec.extra_data)}\n"
            f"LLM[1] / Non-LLM[0] : {int(spec.llm)}\n"
            f"Other description : {spec.name} baseline of the ntire-t2iqa toolkit. {spec.summary}\n")


def write_submission(spec: BaselineSpec, predictions: Any, out_zip: str | Path, seconds_per_image: float,
                     on_gpu: bool, data: str | Path | TrackData | None = None, split: str | None = None,
                     track: str | None = None) -> Report:
    """Write ``out_zip`` and validate it (against the split's public inputs when ``data`` is given:
    a data folder of any layout or a resolved :class:`~ntire_t2iqa.data.sources.TrackData`).

    ``track``: one of ``spec.all_tracks`` for a baseline that submits to both (default ``spec.track``).
    Raises :class:`~ntire_t2iqa.errors.SubmissionError` when the toolkit's own validator refuses it.
    """
    track = track or spec.track
    if track not in spec.all_tracks:
        raise ValueError(f"{spec.name} submits to {' and '.join(spec.all_tracks)} only, not {track!r}")
    out_zip = Path(out_zip)
    out_zip.parent.mkdir(parents=True, exist_ok=True)
    if track == "align":
        member, blob = "output.json", json.dumps(predictions).encode()
    else:
        member, blob = "output.pkl", pickle.dumps(predictions, protocol=4)
    tmp = out_zip.with_name(out_zip.name + ".tmp")
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(member, blob)
        zf.writestr("readme.txt", readme_text(seconds_per_image, on_gpu, spec))
    inputs = locate(data, track).inputs(split) if data is not None and split else None
    report = validate(tmp, track, inputs=inputs)
    if not report.valid:
        raise SubmissionError(report.problems)
    tmp.replace(out_zip)
    return report


def timed_submission(name: str, predict: Any, data: str | Path, split: str, run: str | Path,
                     out_zip: str | Path) -> Path:
    """``predict(data, split, run, "cpu", None)`` timed per image, written with :func:`write_submission`.

    What every baseline's ``demo_submission`` does once its tiny run is trained.
    """
    import time

    from ..registry import get

    t0 = time.perf_counter()
    records = predict(Path(data), split, Path(run), "cpu", None)
    seconds = (time.perf_counter() - t0) / max(1, len(records))
    write_submission(get(name), records, out_zip, seconds, False, data, split)
    return Path(out_zip)
