"""``data folds``: prompt-grouped K-fold splits of the training images.

No prompt is in two folds: images are grouped by prompt (Track 1: records sharing a
``prompt_id`` *or* a prompt text are one group; Track 2: images sharing ``prompt_en``),
and whole groups are dealt to folds, largest first, each to the fold with the fewest
images so far (ties: lowest fold index). Groups of equal size are taken in an order
shuffled by ``seed``, so the folds are deterministic for a seed and differ between
seeds. A T2I model may appear in every fold.

``folds.json``::

    {"track": "align", "k": 5, "seed": 0, "source": "train_list.json",
     "folds": [{"fold": 0, "prompt_ids": [...], "prompts": [...], "images": [...]}, ...]}

``images`` are Track 1 ``img_path`` values or Track 2 image names; ``prompt_ids`` is
Track 1 only. :func:`fold_assignment` maps each image to its fold.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ReferenceDataError
from ..tracks.common import read_json_file
from .layout import MANIFEST, write_json
from .sources import TRACK_NAMES, DataLayoutError, detect, looked_for

PathLike = str | os.PathLike[str]
FOLDS_NAME = "folds.json"


class _Groups:
    """Union-find over item indices."""

    def __init__(self, n: int):
        self.parent = list(range(n))

    def find(self, i: int) -> int:
        while self.parent[i] != i:
            self.parent[i] = self.parent[self.parent[i]]
            i = self.parent[i]
        return i

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)


def _items(obj: Any, file: str) -> tuple[str, list[tuple[str, str | None, str | None]]]:
    """(track, [(image, prompt_id, prompt)]) from a raw Track 1 list or Track 2 info dict."""
    out: list[tuple[str, str | None, str | None]] = []
    bad: list[str] = []
    if isinstance(obj, list):
        for i, rec in enumerate(obj):
            img = rec.get("img_path") if isinstance(rec, dict) else None
            pid, text = (rec.get("prompt_id"), rec.get("prompt")) if isinstance(rec, dict) else (None, None)
            if not isinstance(img, str) or not img:
                bad.append(f"record {i} has no string 'img_path'")
            elif pid is None and not text:
                bad.append(f"image {img!r} has neither 'prompt_id' nor 'prompt', so it cannot be grouped")
            else:
                out.append((img, None if pid is None else str(pid), text or None))
        track = "align"
    elif isinstance(obj, dict):
        for name, entry in obj.items():
            text = entry.get("prompt_en") if isinstance(entry, dict) else None
            if not isinstance(text, str) or not text:
                bad.append(f"image {name!r} has no 'prompt_en', so it cannot be grouped")
            else:
                out.append((name, None, text))
        track = "structure"
    else:
        raise ReferenceDataError(file, "must be a Track 1 list (train_list.json) or a Track 2 object "
                                 "(train_info.json).", "Pass the training annotations.")
    if bad:
        more = f" (and {len(bad) - 5} more)" if len(bad) > 5 else ""
        raise ReferenceDataError(file, "; ".join(bad[:5]) + more + ".", "Add the prompt fields, then run again.")
    images = [img for img, _, _ in out]
    if len(set(images)) != len(images):
        dup = next(i for i in images if images.count(i) > 1)
        raise ReferenceDataError(file, f"lists image {dup!r} more than once.", "Give each image one record.")
    return track, out


def assign_folds(items: list[tuple[str, str | None, str | None]], k: int, seed: int) -> list[int]:
    """Fold index per item; items sharing a prompt id or prompt text share a fold."""
    groups = _Groups(len(items))
    first: dict[tuple[str, str], int] = {}
    for i, (_, pid, text) in enumerate(items):
        for key in (("id", pid), ("text", text)):
            if key[1] is None:
                continue
            if key in first:
                groups.union(first[key], i)
            else:
                first[key] = i  # type: ignore[index]
    members: dict[int, list[int]] = {}
    for i in range(len(items)):
        members.setdefault(groups.find(i), []).append(i)
    if not 2 <= k <= len(members):
        raise ValueError(f"k must be between 2 and the number of prompt groups ({len(members)}), not {k}")
    ordered = sorted(members.values(), key=lambda m: min(items[i][0] for i in m))
    rng = np.random.default_rng(seed)
    ordered = [ordered[i] for i in rng.permutation(len(ordered))]
    ordered.sort(key=len, reverse=True)  # stable: equal sizes keep the shuffled order
    load = [0] * k
    fold = [0] * len(items)
    for m in ordered:
        f = int(np.argmin(load))
        load[f] += len(m)
        for i in m:
            fold[i] = f
    return fold


def make_folds(train: PathLike, k: int = 5, seed: int = 0, out: PathLike | None = None) -> dict[str, Any]:
    """Prompt-grouped folds of a raw training file; written to ``out`` when given. Returns the folds.json dict."""
    path = Path(train)
    obj = read_json_file(path, "Pass train_list.json (Track 1) or train_info.json (Track 2).")
    track, items = _items(obj, path.name)
    fold = assign_folds(items, k, seed)
    folds: list[dict[str, Any]] = []
    for f in range(k):
        idx = [i for i in range(len(items)) if fold[i] == f]
        entry: dict[str, Any] = {"fold": f}
        if track == "align":
            entry["prompt_ids"] = sorted({items[i][1] for i in idx if items[i][1] is not None})
        entry["prompts"] = sorted({items[i][2] for i in idx if items[i][2] is not None})
        entry["images"] = sorted(items[i][0] for i in idx)
        folds.append(entry)
    result = {"track": track, "k": k, "seed": seed, "source": path.name, "n_images": len(items), "folds": folds}
    if out is not None:
        write_json(Path(out), result, indent=1)
    return result


def training_files(data: PathLike, track: str | None = None) -> list[Path]:
    """The raw training file(s) that ``data`` names: a file, or a folder of any layout (a synthetic challenge
    or one of its track folders, a Track 1 root with ``train_list.json``, a Track 2 root with ``train/``)."""
    p = Path(data)
    if p.is_file():
        return [p]
    if track is None and p.name in TRACK_NAMES and (p.parent / MANIFEST).is_file():
        track = p.name  # a synthetic challenge's track folder
    wanted = [track] if track else ["align", "structure"]
    found = []
    for t in wanted:
        source = detect(p, t)
        if source is not None and source.has("train"):
            found.append(source.annotations("train"))
    if not found:
        looked = "; ".join(f"{TRACK_NAMES[t]}: {looked_for(p, t)}" for t in wanted)
        raise DataLayoutError(str(p), f"holds no training annotations (looked in it for {looked}).",
                                 "Pass a training annotation file or a data folder laid out as in the README.")
    return found


def load_folds(path: PathLike) -> dict[str, Any]:
    """Read a folds.json written by :func:`make_folds`."""
    p = Path(path)
    try:
        obj = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ReferenceDataError(str(p), f"cannot be read ({exc}).", "Run `ntire-t2iqa data folds` first.") from exc
    if not isinstance(obj, dict) or not isinstance(obj.get("folds"), list):
        raise ReferenceDataError(str(p), "is not a folds file (no 'folds' list).", "Run `ntire-t2iqa data folds`.")
    return obj


def fold_assignment(folds: dict[str, Any]) -> dict[str, int]:
    """Image -> fold index, from a folds.json dict."""
    return {img: entry["fold"] for entry in folds["folds"] for img in entry["images"]}
