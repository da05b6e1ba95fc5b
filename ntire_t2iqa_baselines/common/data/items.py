"""The item types every baseline reads, whatever the data layout, and helpers shared by the readers."""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ntire_t2iqa.data.sources import DataLayoutError
from ntire_t2iqa.safetext import plain
from ntire_t2iqa.tracks.common import read_json_file

_CATEGORY = re.compile(r"^(.*?)\s*\(([^()]*)\)\s*$")
MAX_SHOWN = 5


def split_element(key: str) -> tuple[str, str]:
    """``"pig giants (animal)"`` -> ``("pig giants", "animal")``; only the last parentheses are the category.

    ``"hat (with a brim) (object)"`` -> ``("hat (with a brim)", "object")``; no suffix -> category ``""``.
    """
    m = _CATEGORY.match(key)
    return (m.group(1), m.group(2)) if m else (key, "")


#: EvalMuse's ratings of the prompt itself (per annotator in training, averaged in the phase inputs) -> item key.
#: ``promt_meaningless`` is spelled as released; ``prompt_meaningless`` is read too.
PROMPT_RATING_FIELDS = {"promt_meaningless": "meaningless", "prompt_meaningless": "meaningless",
                        "split_confidence": "split_confidence", "attribute_confidence": "attribute_confidence"}


def prompt_ratings(record: dict[str, Any]) -> dict[str, float]:
    """The prompt ratings a record holds (a number, or the mean of a list of numbers); others left out."""
    out: dict[str, float] = {}
    for field_name, key in PROMPT_RATING_FIELDS.items():
        value = record.get(field_name)
        values = value if isinstance(value, list) else [value]
        if values and all(isinstance(v, (int, float)) and not isinstance(v, bool) and np.isfinite(v) for v in values):
            out.setdefault(key, float(np.mean(values)))
    return out


@dataclass(frozen=True)
class AlignItem:
    """One Track 1 image: its file, prompt, element keys, the prompt's ratings and (train only) targets.

    ``ratings``: :data:`PROMPT_RATING_FIELDS` the data provides (``meaningless``, ``split_confidence``,
    ``attribute_confidence``), averaged over annotators; empty when the split's records lack them.
    """

    img_path: str
    image_file: Path
    prompt: str
    elements: list[str]
    prompt_id: str
    model: str
    prompt_type: str
    total: float | None = None
    element_scores: dict[str, float] | None = None
    ratings: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class StructureItem:
    """One Track 2 image: its file, prompt and (train only) MOS and 512 x 512 targets.

    ``mask``: 0/1, pixels marked by at least two annotators (the reference's rule);
    ``graded``: uint8 levels 0/64/127/180/255 by annotator count (upstream's heatmap target).
    A reader fills the ones asked for.
    """

    name: str
    image_file: Path
    prompt: str
    mos: float | None = None
    mask: np.ndarray | None = None
    graded: np.ndarray | None = None


def read_json(path: Path) -> Any:
    """A JSON file (UTF-8, BOM allowed) or a :class:`DataLayoutError` naming it."""
    return read_json_file(path, "Pass the file as released (UTF-8 JSON).", DataLayoutError)


def check_found(missing: list[str], folder: Path, total: int, option: str) -> None:
    """Raise when images named by the annotations are not in ``folder`` (a few named, the rest counted)."""
    if not missing:
        return
    shown = ", ".join(repr(m) for m in missing[:MAX_SHOWN])
    more = f" and {len(missing) - MAX_SHOWN} more" if len(missing) > MAX_SHOWN else ""
    raise DataLayoutError(str(folder), f"lacks {len(missing)} of the {total} images its split's JSON names "
                          f"({shown}{more}).", f"Point at the folder that holds them with {option}.")


def warn(lines: list[str], what: str) -> None:
    """A short summary of reader warnings on stderr (a few lines, the rest counted)."""
    if not lines:
        return
    sys.stderr.write(f"warning: {len(lines)} {what}:\n")
    for line in lines[:MAX_SHOWN]:
        sys.stderr.write(f"  - {plain(line)}\n")
    if len(lines) > MAX_SHOWN:
        sys.stderr.write(f"  ... and {len(lines) - MAX_SHOWN} more\n")
