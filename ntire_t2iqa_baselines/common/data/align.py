"""Track 1 items from any layout: raw training annotations averaged, val/test from the public inputs.

Training records are the EvalMuse-40K ``train_list.json`` form (per-annotator lists, averaged
by :func:`ntire_t2iqa.data.build_align_reference`, the function ``data build-ref`` uses).
Val/test records are the NTIRE phase inputs (``val.json``/``test.json``) or the synthetic
``*_inputs.json``: only ``img_path``, ``prompt`` and the element keys are read; score values
(absent, ``null``, ``0``, ``[]`` or averaged floats) are ignored.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ntire_t2iqa.data import build_align_reference
from ntire_t2iqa.data.sources import DataLayoutError, TrackData, locate

from .items import MAX_SHOWN, AlignItem, check_found, prompt_ratings, read_json


def _relative(img: str) -> bool:
    p = Path(img)
    return not p.is_absolute() and ".." not in p.parts


def read_align_inputs(path: Path) -> list[dict[str, Any]]:
    """Public inputs of a val/test split, checked: a list of records with a unique relative ``img_path``.

    ``element_score`` becomes a dict of the element keys (``{}`` when absent, ``null`` or ``[]``).
    """
    obj = read_json(path)
    if not isinstance(obj, list):
        raise DataLayoutError(str(path), f"must be a JSON list of records, not {type(obj).__name__}.",
                              "Pass the split's inputs (val.json, test.json).")
    problems: list[str] = []
    records: list[dict[str, Any]] = []
    seen: set[str] = set()
    for i, rec in enumerate(obj):
        img = rec.get("img_path") if isinstance(rec, dict) else None
        if not isinstance(img, str) or not img or not _relative(img):
            problems.append(f"record {i} has no relative string 'img_path'")
            continue
        elements = rec.get("element_score")
        if elements in (None, [], 0, ""):
            elements = {}
        if not isinstance(elements, dict):
            problems.append(f"image {img!r}: 'element_score' must be an object of element keys")
            continue
        if img in seen:
            problems.append(f"image {img!r} appears twice")
        seen.add(img)
        records.append({**rec, "element_score": elements})
    if problems:
        more = f" (and {len(problems) - MAX_SHOWN} more)" if len(problems) > MAX_SHOWN else ""
        raise DataLayoutError(str(path), "; ".join(problems[:MAX_SHOWN]) + more + ".",
                              "Fix these records (the released inputs have one record per image).")
    return records


def align_items(data: str | Path | TrackData, split: str, labels: bool = True) -> list[AlignItem]:
    """Track 1 items of ``split``: ``train`` with averaged targets, ``val``/``test`` from the public inputs.

    ``labels=False``: training items read as the public inputs are (images, prompts, element keys; no score,
    vote or rating is read, so any values there are accepted), for label-free training.
    """
    source = locate(data, "align")
    train = split == "train" and labels
    file = source.annotations(split)
    records = build_align_reference(file) if train else read_align_inputs(file)
    folder = source.images(split)
    out, missing = [], []
    for rec in records:
        img = rec["img_path"]
        if not _relative(img):
            raise DataLayoutError(str(file), f"image {img!r}: 'img_path' must be relative "
                                  "to the images folder.", "Fix the record.")
        if not (folder / img).is_file():
            missing.append(img)
        out.append(AlignItem(
            img_path=img, image_file=folder / img, prompt=str(rec.get("prompt") or ""),
            elements=list(rec["element_score"]), prompt_id=str(rec.get("prompt_id", rec.get("prompt", ""))),
            model=img.split("/")[0] if "/" in img else "", prompt_type=str(rec.get("type") or ""),
            total=float(rec["total_score"]) if train else None,
            element_scores={k: float(v) for k, v in rec["element_score"].items()} if train else None,
            ratings=prompt_ratings(rec) if labels else {}))
    check_found(missing, folder, len(records), "--train-images DIR" if split == "train" else "--images DIR")
    return out
