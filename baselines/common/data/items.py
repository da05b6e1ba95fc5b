"""Training and inference items read from a challenge folder (the synthetic layout, see ``ntire_t2iqa.data``).

Real data works the same once arranged in that layout: ``align/images/...``,
``align/train_list.json``, ``align/{val,test}_inputs.json``; ``structure/images/...``,
``structure/train_info.json``, ``structure/{val,test}_info.json`` and ``..._images.json``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ntire_t2iqa.data import ChallengePaths, build_align_reference, build_structure_reference
from ntire_t2iqa.errors import ReferenceDataError
from ntire_t2iqa.tracks.structure import IMAGE_SUFFIXES

_CATEGORY = re.compile(r"^(.*?)\s*\(([^()]*)\)\s*$")


def split_element(key: str) -> tuple[str, str]:
    """``"pig giants (animal)"`` -> ``("pig giants", "animal")``; no suffix -> category ``""``."""
    m = _CATEGORY.match(key)
    return (m.group(1), m.group(2)) if m else (key, "")


@dataclass(frozen=True)
class AlignItem:
    """One Track 1 image: its file, prompt, element keys and (train only) targets."""

    img_path: str
    image_file: Path
    prompt: str
    elements: list[str]
    prompt_id: str
    model: str
    prompt_type: str
    total: float | None = None
    element_scores: dict[str, float] | None = None


@dataclass(frozen=True)
class StructureItem:
    """One Track 2 image: its file, prompt and (train only) MOS and 512 x 512 0/1 target mask."""

    name: str
    image_file: Path
    prompt: str
    mos: float | None = None
    mask: np.ndarray | None = None


def _read(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ReferenceDataError(str(path), f"cannot be read ({exc}).",
                                 "Pass a challenge folder (data synth).") from exc


def align_items(data: str | Path, split: str) -> list[AlignItem]:
    """Track 1 items: ``train`` with averaged targets, ``val``/``test`` from the public inputs."""
    paths = ChallengePaths.locate(data)
    if split == "train":
        records = build_align_reference(paths.align_raw("train"))
    else:
        records = _read(paths.align_inputs(split))
    out = []
    for rec in records:
        img = rec["img_path"]
        elements = list(rec.get("element_score") or {})
        train = split == "train"
        out.append(AlignItem(
            img_path=img, image_file=paths.align_images / img, prompt=str(rec.get("prompt", "")),
            elements=elements, prompt_id=str(rec.get("prompt_id", rec.get("prompt", ""))),
            model=img.split("/")[0] if "/" in img else "", prompt_type=str(rec.get("type", "")),
            total=float(rec["total_score"]) if train else None,
            element_scores={k: float(v) for k, v in rec["element_score"].items()} if train else None))
    return out


def _image_file(folder: Path, name: str) -> Path:
    for suffix in IMAGE_SUFFIXES:
        if (folder / f"{name}{suffix}").is_file():
            return folder / f"{name}{suffix}"
    raise ReferenceDataError(str(folder), f"has no image file for {name!r}.", "Check the images folder.")


def structure_items(data: str | Path, split: str) -> list[StructureItem]:
    """Track 2 items: ``train`` with MOS and the at-least-two-annotators mask, ``val``/``test`` names and prompts."""
    paths = ChallengePaths.locate(data)
    folder = paths.structure_images
    if split == "train":
        info = _read(paths.structure_raw("train"))
        gt = build_structure_reference(paths.structure_raw("train"), folder)
        items = []
        for name, entry in info.items():
            stem = name[: -len(Path(name).suffix)] if Path(name).suffix.lower() in IMAGE_SUFFIXES else name
            items.append(StructureItem(stem, _image_file(folder, stem), str(entry.get("prompt_en", "")),
                                       gt[stem]["score"], gt[stem]["pred_area"]))
        return items
    info = _read(paths.structure_info(split))
    names = _read(paths.structure_inputs(split))
    return [StructureItem(n, _image_file(folder, n), str(info.get(n, {}).get("prompt_en", ""))) for n in names]
