"""Where each file of a synthetic challenge lives (see the package docstring for the tree)."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ReferenceDataError

MANIFEST = "manifest.json"
SPLITS = ("train", "val", "test")
EVAL_SPLITS = ("val", "test")
#: Sizes of a synthetic challenge (``data synth --size``); what each one holds is ``synth.SIZES``.
SYNTH_SIZES = ("small", "medium")
#: The trivial predictors (``data trivial --kind``), written by ``trivial.write_trivial``.
TRIVIAL_KINDS = ("constant", "random", "oracle")
#: Bump when the generated files change meaning; ``demo`` regenerates older challenges.
FORMAT_VERSION = 1


@dataclass(frozen=True)
class ChallengePaths:
    """Paths of one synthetic challenge rooted at ``root``."""

    root: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "root", Path(self.root))

    @classmethod
    def locate(cls, path: str | os.PathLike[str]) -> ChallengePaths:
        """The challenge holding ``path``: its root, or its ``align``/``structure`` folder."""
        p = Path(path)
        for candidate in (p, p.parent):
            if (candidate / MANIFEST).is_file():
                return cls(candidate)
        raise ReferenceDataError(str(p), f"is not a synthetic challenge (no {MANIFEST} here or one level up).",
                                 "Pass the folder written by `ntire-t2iqa data synth OUT`.")

    # ------------------------------------------------------------------ shared
    @property
    def manifest(self) -> Path:
        """manifest.json at the root."""
        return self.root / MANIFEST

    @property
    def align(self) -> Path:
        """Track 1 folder."""
        return self.root / "align"

    @property
    def structure(self) -> Path:
        """Track 2 folder."""
        return self.root / "structure"

    # ------------------------------------------------------------------ Track 1
    @property
    def align_images(self) -> Path:
        """Track 1 images: ``<Model>/<nnnnn>.png``."""
        return self.align / "images"

    def align_raw(self, split: str) -> Path:
        """Raw annotations (per-annotator lists); public for train, hidden for val/test."""
        return self.align / f"{_split(split)}_list.json"

    def align_inputs(self, split: str) -> Path:
        """Public inputs of val/test: element keys present, scores null."""
        return self.align / f"{_eval_split(split)}_inputs.json"

    def align_reference(self, split: str) -> Path:
        """Hidden averaged reference (eval.json form) of val/test."""
        return self.align / f"{_eval_split(split)}_eval.json"

    # ------------------------------------------------------------------ Track 2
    @property
    def structure_images(self) -> Path:
        """Track 2 images: ``<split>_<nnnnn>.jpg``."""
        return self.structure / "images"

    def structure_raw(self, split: str) -> Path:
        """Raw annotations (train_info.json form); public for train, hidden for val/test."""
        s = _split(split)
        return self.structure / ("train_info.json" if s == "train" else f"{s}_annotations.json")

    def structure_info(self, split: str) -> Path:
        """Public prompts of val/test: ``{name: {"prompt_en": ...}}``."""
        return self.structure / f"{_eval_split(split)}_info.json"

    def structure_inputs(self, split: str) -> Path:
        """Public JSON list of the val/test image names (no extension)."""
        return self.structure / f"{_eval_split(split)}_images.json"

    def structure_reference(self, split: str) -> Path:
        """Hidden gt.pkl of val/test."""
        return self.structure / f"{_eval_split(split)}_gt.pkl"

    # ------------------------------------------------------------------ per track
    def inputs(self, track: str, split: str) -> Path:
        """Public inputs that ``validate --inputs`` takes, per track."""
        return self.align_inputs(split) if track == "align" else self.structure_inputs(split)

    def reference(self, track: str, split: str) -> Path:
        """Hidden reference that ``score --ref`` takes, per track."""
        return self.align_reference(split) if track == "align" else self.structure_reference(split)

    def read_manifest(self) -> dict[str, Any]:
        """The manifest as a dict (raises ReferenceDataError when unreadable)."""
        try:
            return json.loads(self.manifest.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise ReferenceDataError(str(self.manifest), f"cannot be read ({exc}).",
                                     "Regenerate the challenge with `ntire-t2iqa data synth OUT`.") from exc

    def is_complete(self) -> bool:
        """True when every file the manifest promises exists and the format is current."""
        if not self.manifest.is_file():
            return False
        try:
            manifest = self.read_manifest()
        except ReferenceDataError:
            return False
        if manifest.get("format_version") != FORMAT_VERSION:
            return False
        files = [self.root / f for f in manifest.get("files", {})]
        return bool(files) and all(f.exists() for f in files)


def _split(split: str) -> str:
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; choose one of: {', '.join(SPLITS)}")
    return split


def _eval_split(split: str) -> str:
    if split not in EVAL_SPLITS:
        raise ValueError(f"split {split!r} has no inputs or reference; choose one of: {', '.join(EVAL_SPLITS)}")
    return split


def write_text_atomic(path: Path, text: str) -> None:
    """Write UTF-8 text through a temporary file beside ``path``, then rename it into place.

    A failed write leaves the old file whole and removes the temporary one.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_json(path: Path, obj: Any, indent: int | None = None) -> None:
    """Write JSON atomically (see :func:`write_text_atomic`)."""
    write_text_atomic(path, json.dumps(obj, indent=indent, ensure_ascii=False))
