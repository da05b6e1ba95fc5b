"""Where each piece of a track's data lives, for every layout the toolkit reads.

One function turns what the user names (a folder, and optionally explicit files) into a
:class:`TrackData`: per split, the annotation or input JSON and the images folder. The
baselines, ``data folds``, ``data build-ref`` and ``validate --inputs`` all ask it, so
every command takes the same roots. Layouts, detected from what is there::

    synthetic challenge (`data synth OUT`)   OUT/manifest.json, OUT/align/..., OUT/structure/...
                                            (tree in the package docstring)

    Track 1, EvalMuse-40K release and the NTIRE 2025 phase folders
        ROOT/train_list.json                 raw training annotations (per-annotator lists)
        ROOT/images/<Model>/<id>.png         training images (img_path "<Model>/<id>.png")
        ROOT/val/val.json                    development-phase inputs (img_path "img_0001.png")
        ROOT/val/images/img_0001.png
        ROOT/test/test.json                  final-phase inputs
        ROOT/test/images/img_0001.png

    Track 2, EvalMuse-Structure
        ROOT/train/train_info.json           {stem: {prompt_en, mos, bbox_info}}
        ROOT/train/images/<stem>.jpg
        ROOT/val/val_info.json               {stem: {prompt_en}}
        ROOT/val/images/<stem>.jpg
        ROOT/test/test_info.json
        ROOT/test/images/<stem>.jpg

Explicit pieces (:class:`SplitFiles` per split) replace or complete what was detected, for
copies arranged differently. Every split keeps its own images folder, so val and test images
with the same names never mix.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from ..errors import ReferenceDataError
from .layout import MANIFEST, SPLITS, ChallengePaths

PathLike = str | os.PathLike[str]
MAX_SUBFOLDERS = 64
TRACK_NAMES = {"align": "Track 1 (alignment, EvalMuse-40K)", "structure": "Track 2 (structure, EvalMuse-Structure)"}
#: The command-line option that points at each piece, named in error messages.
OPTIONS = {("train", "annotations"): "--train-annotations FILE", ("train", "images"): "--train-images DIR",
           ("eval", "annotations"): "--inputs FILE", ("eval", "images"): "--images DIR"}


class DataLayoutError(ReferenceDataError):
    """A data folder or file cannot be used: what was looked for, where, and the option that points at it."""

    def __init__(self, where: str, what: str, fix: str = ""):
        super().__init__(where, what, fix)
        self.args = (f"data error: {where}: {what}" + (f" Fix: {fix}" if fix else ""),)


@dataclass(frozen=True)
class SplitFiles:
    """One split's pieces: annotations (train) or public inputs (val/test) JSON, images folder, name list."""

    annotations: Path | None = None
    images: Path | None = None
    #: Synthetic Track 2 only: a JSON list of the split's image names (the real layout uses the info keys).
    names: Path | None = None

    def merged(self, other: SplitFiles | None) -> SplitFiles:
        """These pieces with every piece ``other`` gives replacing ours."""
        if other is None:
            return self
        return SplitFiles(*(Path(o) if o is not None else s for s, o in
                            zip((self.annotations, self.images, self.names),
                                (other.annotations, other.images, other.names))))


@dataclass(frozen=True)
class TrackData:
    """Where one track's splits are; the accessors raise :class:`DataLayoutError` naming what is missing."""

    track: str
    layout: str
    root: Path | None
    files: Mapping[str, SplitFiles] = field(default_factory=dict)

    def _piece(self, split: str, kind: str) -> Path:
        if split not in SPLITS:
            raise ValueError(f"unknown split {split!r}; choose one of: {', '.join(SPLITS)}")
        path = getattr(self.files.get(split, SplitFiles()), kind)
        ok = path is not None and (path.is_dir() if kind == "images" else path.is_file())
        if ok:
            return path
        what = {"annotations": "training annotations" if split == "train" else f"{split} inputs JSON",
                "images": "training images folder" if split == "train" else f"{split} images folder"}[kind]
        option = OPTIONS[("train" if split == "train" else "eval", kind)]
        where = str(self.root) if self.root is not None else "the data options"
        looked = f"looked for {path}" if path is not None else "this layout has none"
        raise DataLayoutError(where, f"has no {TRACK_NAMES[self.track]} {what} ({self.layout} layout; "
                              f"{looked}).", f"Point at it with {option}"
                              + ("" if split == "train" else f" (with --split {split})") + ".")

    def annotations(self, split: str) -> Path:
        """Training annotations (``train``) or the public inputs JSON (``val``/``test``)."""
        return self._piece(split, "annotations")

    def images(self, split: str) -> Path:
        """The split's own images folder."""
        return self._piece(split, "images")

    def names(self, split: str) -> Path | None:
        """Synthetic Track 2's name list of a split, if this layout has one."""
        path = self.files.get(split, SplitFiles()).names
        return path if path is not None and path.is_file() else None

    def inputs(self, split: str) -> Path:
        """What ``validate --inputs`` takes for a split: the name list if any, else the inputs JSON."""
        return self.names(split) or self.annotations(split)

    def has(self, split: str, kind: str = "annotations") -> bool:
        """Whether a split's piece exists."""
        try:
            self._piece(split, kind)
        except DataLayoutError:
            return False
        return True


# --------------------------------------------------------------------------- layouts

def _synthetic(root: Path, track: str) -> dict[str, SplitFiles] | None:
    try:
        paths = ChallengePaths.locate(root)
    except ReferenceDataError:
        return None
    if track == "align":
        return {"train": SplitFiles(paths.align_raw("train"), paths.align_images),
                **{s: SplitFiles(paths.align_inputs(s), paths.align_images) for s in ("val", "test")}}
    return {"train": SplitFiles(paths.structure_raw("train"), paths.structure_images),
            **{s: SplitFiles(paths.structure_info(s), paths.structure_images, paths.structure_inputs(s))
               for s in ("val", "test")}}


def _evalmuse_40k(root: Path) -> dict[str, SplitFiles]:
    return {"train": SplitFiles(root / "train_list.json", root / "images"),
            **{s: SplitFiles(root / s / f"{s}.json", root / s / "images") for s in ("val", "test")}}


def _evalmuse_structure(root: Path) -> dict[str, SplitFiles]:
    return {s: SplitFiles(root / s / f"{s}_info.json", root / s / "images") for s in SPLITS}


#: Per track: (layout name, pieces under a root). A layout fits when one of its JSON files exists.
REAL_LAYOUTS: dict[str, tuple[str, Callable[[Path], dict[str, SplitFiles]]]] = {
    "align": ("EvalMuse-40K / NTIRE phase", _evalmuse_40k),
    "structure": ("EvalMuse-Structure", _evalmuse_structure),
}


def _fits(files: dict[str, SplitFiles]) -> bool:
    return any(f.annotations is not None and f.annotations.is_file() for f in files.values())


def detect(root: PathLike, track: str) -> TrackData | None:
    """The layout of ``track`` under ``root`` (synthetic first, then the released one), or ``None``."""
    root = Path(root)
    synthetic = _synthetic(root, track)
    if synthetic is not None:
        return TrackData(track, "synthetic", ChallengePaths.locate(root).root, synthetic)
    name, pieces = REAL_LAYOUTS[track]
    files = pieces(root)
    return TrackData(track, name, root, files) if _fits(files) else None


def looked_for(root: Path, track: str) -> str:
    """The files a track's layouts look for under ``root``, for error messages."""
    _, pieces = REAL_LAYOUTS[track]
    files = [str(f.annotations.relative_to(root)) for f in pieces(root).values() if f.annotations is not None]
    return f"{MANIFEST} (synthetic challenge, here or one level up), or " + ", ".join(files)


def _hint(root: Path, track: str) -> str:
    """Where the data probably is: the folder is the other track's, or a subfolder fits."""
    other = "structure" if track == "align" else "align"
    if detect(root, other) is not None:
        return f" It looks like a {TRACK_NAMES[other]} folder."
    try:
        subfolders = sorted(p for p in root.iterdir() if p.is_dir())[:MAX_SUBFOLDERS]
    except OSError:
        return ""
    fits = [p for p in subfolders if detect(p, track) is not None]
    return f" Its subfolder {fits[0].name!r} fits: pass --data {fits[0]}." if fits else ""


def locate(data: PathLike | TrackData | None, track: str,
           overrides: Mapping[str, SplitFiles] | None = None) -> TrackData:
    """Resolve ``data`` (a root folder, or an already resolved :class:`TrackData`) for ``track``.

    ``overrides`` maps a split to explicit pieces, which replace the detected ones; with
    overrides alone (``data`` ``None``) the layout is ``explicit``. Raises
    :class:`DataLayoutError` listing what was looked for when nothing fits.
    """
    if track not in TRACK_NAMES:
        raise ValueError(f"unknown track {track!r}; choose one of: {', '.join(TRACK_NAMES)}")
    overrides = {s: f for s, f in (overrides or {}).items() if f != SplitFiles()}
    if isinstance(data, TrackData):
        found: TrackData | None = data
    elif data is None:
        found = None
    else:
        root = Path(data)
        if not root.is_dir():
            raise DataLayoutError(str(root), "is not a folder.", "Pass the folder holding the data (--data ROOT).")
        found = detect(root, track)
        if found is None and not overrides:
            raise DataLayoutError(str(root), f"holds no {TRACK_NAMES[track]} data: looked in it for "
                                  f"{looked_for(root, track)}.{_hint(root, track)}",
                                  "Pass the folder laid out as in the README (\"Your own copy of the data\"), "
                                  "or point at each piece with --train-annotations/--train-images "
                                  "(train) or --inputs/--images (val, test).")
    if found is None:
        if not overrides:
            raise DataLayoutError("the data options", f"name no {TRACK_NAMES[track]} data.",
                                  "Pass --data ROOT, or the pieces (--train-annotations and --train-images, "
                                  "or --inputs and --images).")
        found = TrackData(track, "explicit", None if data is None else Path(data), {})
    if not overrides:
        return found
    files = {s: found.files.get(s, SplitFiles()).merged(overrides.get(s)) for s in SPLITS}
    layout = found.layout if found.layout == "explicit" else f"{found.layout} + explicit pieces"
    return replace(found, layout=layout, files=files)


__all__ = ["DataLayoutError", "SplitFiles", "TrackData", "detect", "locate", "looked_for"]
