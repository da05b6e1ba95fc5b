"""Build submissions and references in code (no committed blobs)."""

from __future__ import annotations

import json
import pickle
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from ntire_t2iqa.tracks.common import README_TEMPLATE


def write_zip(path: Path, members: dict[str, bytes], compression: int = zipfile.ZIP_DEFLATED) -> Path:
    """Write a zip with the given members."""
    with zipfile.ZipFile(path, "w", compression) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


def align_zip(path: Path, records: list[dict[str, Any]], readme: str = README_TEMPLATE) -> Path:
    """A Track 1 submission zip."""
    return write_zip(path, {"output.json": json.dumps(records).encode(), "readme.txt": readme.encode()})


def structure_zip(path: Path, preds: dict[str, Any], readme: str = README_TEMPLATE, protocol: int = 4) -> Path:
    """A Track 2 submission zip."""
    return write_zip(path, {"output.pkl": pickle.dumps(preds, protocol=protocol), "readme.txt": readme.encode()})


def random_align(n: int, seed: int = 0, n_elements: tuple[int, int] = (1, 6)) -> tuple[list[dict], list[dict]]:
    """(submission records, averaged reference records) with a correlated signal."""
    rng = np.random.default_rng(seed)
    cats = ["animal", "color", "object", "counting", "spatial"]
    sub, ref = [], []
    for i in range(n):
        path = f"Model{i % 4}/{i:05d}.png"
        keys = [f"thing{j} ({cats[j % len(cats)]})" for j in range(int(rng.integers(*n_elements)))]
        gt_el = {k: float(rng.integers(0, 4) / 3) for k in keys}
        total = float(np.clip(1 + 4 * np.mean(list(gt_el.values()) or [0.5]) + rng.normal(0, 0.5), 1, 5))
        ref.append({"img_path": path, "prompt_id": i // 3, "total_score": total, "element_score": gt_el})
        sub.append({"img_path": path, "total_score": total + float(rng.normal(0, 0.8)),
                    "element_score": {k: float(np.clip(v + rng.normal(0, 0.3), 0, 1)) for k, v in gt_el.items()}})
    return sub, ref


def blob_mask(rng: np.random.Generator, size: int, n: int) -> np.ndarray:
    """A uint8 0/1 mask with ``n`` random rectangles and ellipses."""
    import cv2

    m = np.zeros((size, size), np.uint8)
    for _ in range(n):
        x, y = (int(v) for v in rng.integers(0, size - 40, 2))
        w, h = (int(v) for v in rng.integers(8, size // 5, 2))
        if rng.random() < 0.5:
            m[y:y + h, x:x + w] = 1
        else:
            cv2.ellipse(m, (x + w // 2, y + h // 2), (max(w // 2, 1), max(h // 2, 1)), float(rng.integers(0, 180)),
                        0, 360, 1, -1)
    return m


def random_structure(n: int, seed: int = 0, pred_size: int = 448) -> tuple[dict, dict]:
    """(submission dict, reference dict) for Track 2 with partly overlapping regions."""
    import cv2

    rng = np.random.default_rng(seed)
    sub, ref = {}, {}
    for i in range(n):
        gm = blob_mask(rng, 512, int(rng.integers(0, 4)))
        noisy = cv2.resize(gm, (pred_size, pred_size), interpolation=cv2.INTER_NEAREST)
        pm = np.roll(noisy, int(rng.integers(-15, 15)), axis=int(rng.integers(0, 2)))
        pm = np.maximum(pm, blob_mask(rng, pred_size, int(rng.integers(0, 3))))
        mos = float(rng.uniform(1, 5))
        ref[f"img_{i:04d}"] = {"score": mos, "pred_area": gm}
        sub[f"img_{i:04d}"] = {"score": mos + float(rng.normal(0, 0.7)), "pred_area": pm}
    return sub, ref


def square_mask(x: int, y: int, k: int, size: int = 512, value: int = 1, into: np.ndarray | None = None) -> np.ndarray:
    """A ``k`` x ``k`` square of ``value`` at column ``x``, row ``y``: drawn into ``into``, or a new uint8 mask."""
    mask = np.zeros((size, size), np.uint8) if into is None else into
    mask[y:y + k, x:x + k] = value
    return mask


def rect_mask(x: int, y: int, w: int, h: int, size: int = 512) -> np.ndarray:
    """A uint8 0/1 mask with one ``w`` x ``h`` rectangle at column ``x``, row ``y``."""
    mask = np.zeros((size, size), np.uint8)
    mask[y:y + h, x:x + w] = 1
    return mask


def press_to_edge(mask: np.ndarray, k: int, edge: int, at: int) -> np.ndarray:
    """Set a ``k`` x ``k`` square against edge 0 (top), 1 (bottom), 2 (left) or 3 (right), ``at`` along it."""
    if edge == 0:
        mask[:k, at:at + k] = 1
    elif edge == 1:
        mask[-k:, at:at + k] = 1
    elif edge == 2:
        mask[at:at + k, :k] = 1
    else:
        mask[at:at + k, -k:] = 1
    return mask


def noisy_align(sub: list[dict[str, Any]], noise: float, seed: int) -> list[dict[str, Any]]:
    """Track 1 records with Gaussian noise on the totals (sd ``noise``) and the element scores (sd ``noise / 3``)."""
    rng = np.random.default_rng(seed)
    return [{**r, "total_score": r["total_score"] + float(rng.normal(0, noise)),
             "element_score": {k: float(np.clip(v + rng.normal(0, noise / 3), 0, 1))
                               for k, v in r["element_score"].items()}} for r in sub]


def rahf_micro(train: dict[str, Any]) -> dict[str, Any]:
    """A micro RAHF config (32 px, one ViT layer, width 32) with the given ``train`` section."""
    return {
        "name": "micro", "image_size": 32, "patch_size": 8, "width": 32,
        "vision": {"intermediate_size": 64, "num_hidden_layers": 1, "num_attention_heads": 2},
        "text": {"tokenizer": "word", "max_length": 16},
        "fusion": {"layers": 1, "ffn": 64},
        "heatmap": {"stem": [32, 16, 16], "stages": [16, 8, 8, 4, 4], "heatmap_size": 512},
        "score": {"channels": [32, 16, 8], "stride": 1, "mlp": [16]},
        "train": train,
    }
