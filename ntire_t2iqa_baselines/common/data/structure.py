"""Track 2 items from any layout: training targets from the raw ``train_info.json``, val/test names and prompts.

Training: per image the mean MOS and the targets asked for (``mask``: the reference's
at-least-two-annotators 0/1 mask; ``graded``: upstream's 0/64/127/180/255 heatmap), built by
:func:`ntire_t2iqa.data.build_ref.build_structure_targets` at each image's own size, so
images of mixed sizes are drawn right. An image with no annotator (``bbox_info: []``) gets
empty targets and a warning. Val/test: the names are the keys of ``{split}_info.json`` (the
synthetic layout's ``{split}_images.json`` list when present), prompts its ``prompt_en``.
"""

from __future__ import annotations

from pathlib import Path

from ntire_t2iqa.data.build_ref import build_structure_targets
from ntire_t2iqa.data.sources import DataLayoutError, TrackData, locate
from ntire_t2iqa.tracks.structure import IMAGE_SUFFIXES

from .items import StructureItem, check_found, read_json, warn

TARGETS = ("mask", "graded")


def _stem(name: str) -> str:
    suffix = Path(name).suffix
    return name[: -len(suffix)] if suffix.lower() in IMAGE_SUFFIXES else name


def _image_file(folder: Path, name: str) -> Path | None:
    if Path(name).suffix.lower() in IMAGE_SUFFIXES and (folder / name).is_file():
        return folder / name
    stem = _stem(name)
    for suffix in IMAGE_SUFFIXES:
        for candidate in (folder / f"{stem}{suffix}", folder / f"{stem}{suffix.upper()}"):
            if candidate.is_file():
                return candidate
    return None


def _info(path: Path) -> dict[str, dict]:
    obj = read_json(path)
    if not isinstance(obj, dict):
        raise DataLayoutError(str(path), f"must be a JSON object {{image_name: {{\"prompt_en\": ...}}}}, "
                              f"not {type(obj).__name__}.", "Pass the split's *_info.json.")
    return {str(k): v if isinstance(v, dict) else {} for k, v in obj.items()}


def _prompt(entry: dict) -> str:
    return str(entry.get("prompt_en") or entry.get("prompt") or "")


def structure_items(data: str | Path | TrackData, split: str, targets: tuple[str, ...] = ("mask",),
                    labels: bool = True) -> list[StructureItem]:
    """Track 2 items of ``split``: ``train`` with MOS and ``targets``, ``val``/``test`` names and prompts.

    ``labels=False``: training items with names and prompts only (no MOS or annotator shape is read).
    """
    unknown = set(targets) - set(TARGETS)
    if unknown:
        raise ValueError(f"unknown training target(s) {sorted(unknown)}; choose from {', '.join(TARGETS)}")
    source = locate(data, "structure")
    folder = source.images(split)
    annotations = source.annotations(split)
    info = _info(annotations)
    if split != "train" and source.names(split) is not None:
        listed = read_json(source.names(split))
        names = [str(n) for n in listed] if isinstance(listed, list) else list(info)
    else:
        names = list(info)
    files = {n: _image_file(folder, n) for n in names}
    option = "--train-images DIR" if split == "train" else "--images DIR"
    check_found([n for n, f in files.items() if f is None], folder, len(names), option)
    if split != "train" or not labels:
        return [StructureItem(_stem(n), files[n], _prompt(info.get(n, {}))) for n in names]  # type: ignore[arg-type]
    warnings: list[str] = []
    built = build_structure_targets(annotations, folder, tuple(targets), warnings=warnings)
    warn(warnings, "training image(s) with no annotator, trained on empty targets")
    return [StructureItem(_stem(n), files[n], _prompt(info[n]), built[_stem(n)]["score"],  # type: ignore[arg-type]
                          built[_stem(n)].get("mask"), built[_stem(n)].get("graded")) for n in names]
