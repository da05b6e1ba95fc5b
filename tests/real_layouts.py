"""Small data folders in exactly the released formats, built in code.

Track 1: the EvalMuse-40K release (``train_list.json`` with per-annotator lists, ``images/<Model>/<id>.png``)
and the NTIRE 2025 phase folders (``val/val.json`` + ``val/images/``, ``test/test.json`` + ``test/images/``,
flat image names shared by val and test, flags averaged, score values absent/null/0/[]).
Track 2: EvalMuse-Structure (``train/train_info.json`` with one ``bbox_info`` entry per annotator,
``{split}/images/<stem>.jpg`` of mixed sizes, ``val/val_info.json`` and ``test/test_info.json``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

MODELS = ("SDXL-Turbo", "Kolors", "DALLE3")
#: (prompt, type, element keys): Unicode, nested parentheses, slash categories, no elements at all.
PROMPTS = (
    ("a red cat (with a tiny hat) on a sofa", "real", ["red (color)", "cat (with a tiny hat) (animal)",
                                                       "sofa (object)"]),
    ("Zwei Bäume im Schnee, 雪の中の木", "real", ["Bäume (object)", "Schnee (object)"]),
    ("a wizard waving at two dragons", "synth", ["wizard (animal/human)", "two (counting)", "dragons (animal)"]),
    ("abstract swirl", "synth", []),
    ("three apples and a pear", "real", ["three (counting)", "apples (object)", "pear (object)"]),
)
SIZES = ((64, 48), (48, 64), (80, 80))


def _png(path: Path, rng: np.random.Generator, size: tuple[int, int], fmt: str = "PNG") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path, fmt)


def write_track1_root(root: Path, seed: int = 0) -> dict[str, Any]:
    """A Track 1 root: 15 training images (5 prompts x 3 models), 4 val and 4 test images with the same names."""
    rng = np.random.default_rng(seed)
    train = []
    for p, (prompt, kind, elements) in enumerate(PROMPTS):
        for m, model in enumerate(MODELS):
            votes = 6 if (p + m) % 4 == 0 else 3  # some records were annotated twice
            img = f"{model}/{p * 3 + m:05d}.png"
            train.append({
                "prompt_id": f"{1000 + p}", "prompt": prompt, "type": kind, "img_path": img,
                "total_score": [int(v) for v in rng.integers(1, 6, votes)],
                "element_score": {e: [int(v) for v in rng.integers(0, 2, votes)] for e in elements},
                "promt_meaningless": [0] * votes, "split_confidence": [int(v) for v in rng.integers(3, 6, votes)],
                "attribute_confidence": [int(v) for v in rng.integers(3, 6, votes)],
                "fidelity_label": ["no obvious distortion"] * votes,
            })
            _png(root / "images" / img, rng, SIZES[(p + m) % 3])
    (root / "train_list.json").write_text(json.dumps(train, ensure_ascii=False, indent=1), encoding="utf-8")
    empties: list[Any] = [None, 0, [], "absent"]
    phases = {}
    for split in ("val", "test"):
        records = []
        for i in range(4):
            prompt, kind, elements = PROMPTS[(i + (split == "test")) % len(PROMPTS)]
            elements = elements + (["joy (emotion)"] if i == 1 else [])  # a category the training set lacks
            empty = empties[i]
            record = {"prompt_id": f"{split}_{i + 1:04d}", "prompt": prompt, "type": kind,
                      "img_path": f"img_{i + 1:04d}.png",
                      "element_score": {e: empty for e in elements} if empty != "absent" else dict.fromkeys(elements),
                      "promt_meaningless": 0.0, "split_confidence": 4.333333, "attribute_confidence": 4.0,
                      "fidelity_label": "no obvious distortion"}
            if empty != "absent":
                record["total_score"] = empty
            records.append(record)
            _png(root / split / "images" / record["img_path"], rng, SIZES[i % 3])
        (root / split / f"{split}.json").write_text(json.dumps(records, ensure_ascii=False), encoding="utf-8")
        phases[split] = records
    return {"train": train, **phases}


def rect(x0: int, y0: int, x1: int, y1: int) -> dict[str, Any]:
    """A rectangle shape as released: two ``{"x", "y"}`` corners."""
    return {"bbox_type": 1, "bbox": [{"x": x0, "y": y0}, {"x": x1, "y": y1}]}


def poly(*points: tuple[int, int]) -> dict[str, Any]:
    """A polygon shape as released: ``[[x, y], ...]``."""
    return {"bbox_type": 2, "bbox": [list(p) for p in points]}


def write_track2_root(root: Path, seed: int = 0) -> dict[str, Any]:
    """A Track 2 root: 8 training JPGs of mixed sizes (one never annotated), 3 val and 3 test with the same names."""
    rng = np.random.default_rng(seed)
    sizes = ((96, 64), (64, 96), (80, 80), (128, 96))
    train: dict[str, Any] = {}
    for i in range(8):
        w, h = sizes[i % 4]
        stem = f"{i:04d}_{'abcdefgh'[i]}"
        a = rect(4, 4, w // 2, h // 2)
        b = poly((2, 2), (w // 2 + 6, 3), (w // 3, h // 2 + 5))
        bbox_info: list[Any] = [[a], [a, b], []] if i % 2 else [[b], [], [rect(w // 2, h // 2, w - 1, h - 1)]]
        if i == 5:
            bbox_info = []  # nobody annotated this image
        train[stem] = {"prompt_en": ["a hand with five fingers", "ein Pferd läuft", "两只猫 (cats) playing",
                                     "a bicycle"][i % 4],
                       "prompt_cn": "一张图片", "mos": float(rng.uniform(1, 5)), "bbox_info": bbox_info}
        _png(root / "train" / "images" / f"{stem}.jpg", rng, (w, h), "JPEG")
    (root / "train").mkdir(parents=True, exist_ok=True)
    (root / "train" / "train_info.json").write_text(json.dumps(train, ensure_ascii=False), encoding="utf-8")
    phases = {}
    for split in ("val", "test"):
        info = {f"{i:05d}": {"prompt_en": f"{split} prompt {i}: a dog (with a bone)", "prompt_cn": "狗"}
                for i in range(3)}
        for i, stem in enumerate(info):
            _png(root / split / "images" / f"{stem}.jpg", rng, sizes[(i + (split == "test")) % 4], "JPEG")
        (root / split / f"{split}_info.json").write_text(json.dumps(info, ensure_ascii=False), encoding="utf-8")
        phases[split] = info
    return {"train": train, **phases}
