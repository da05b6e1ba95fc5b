"""Track 2 (structural distortion, EvalMuse-Structure): schema, loaders, coverage and scoring."""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from .. import metrics, regions
from ..archive import PICKLE_FIX, SubmissionSource, load_pickle_restricted
from ..errors import Problem, ProblemLog, ReferenceDataError, SubmissionError, error, warning
from ..safetext import quote
from .common import README, Result, describe, is_number, read_json_file, summarize
from .structure_masks import MASK_DTYPES, MASK_DTYPES_AT_512, MASK_FIX, check_mask, heatmap_sign

__all__ = ["MASK_DTYPES", "MASK_DTYPES_AT_512", "OUTPUT", "REFERENCE_NAME", "REQUIRED", "TRACK", "StructureRecord",
           "StructureReference", "check_coverage", "compute", "expected_of", "is_reference", "load_expected",
           "load_reference", "parse_predictions", "read_predictions", "reference_file", "unchecked_coverage"]

TRACK = "structure"
OUTPUT = "output.pkl"
REQUIRED = (OUTPUT, README)
REFERENCE_NAME = "gt.pkl"
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp")
#: the fix of every problem in a reference file (organizer-facing)
REFERENCE_FIX = ("Pass the organizers' gt.pkl: a pickled dict {image_name: {'score': float, 'pred_area': "
                 "512 x 512 uint8 array, 1 for distorted pixels}} (`ntire-t2iqa data build-ref` writes one from "
                 "the raw annotations).")


@dataclass(frozen=True)
class StructureRecord:
    """One image: structure score and predicted mask."""

    score: float
    pred_area: np.ndarray


def read_predictions(source: SubmissionSource) -> tuple[dict[str, StructureRecord] | None, list[Problem]]:
    """Load output.pkl with the restricted unpickler (streamed, size-limited) and check it."""
    with source.open(OUTPUT) as stream:
        obj = load_pickle_restricted(stream, OUTPUT)
    return parse_predictions(obj)


def parse_predictions(obj: Any) -> tuple[dict[str, StructureRecord] | None, list[Problem]]:
    """Check unpickled output.pkl content; return records by image name (``None`` if unusable)."""
    if not isinstance(obj, dict):
        return None, [error(OUTPUT, f"must hold a dict {{image_name: {{'score', 'pred_area'}}}}, not "
                            f"{describe(obj)}.", PICKLE_FIX)]
    log = ProblemLog()
    records: dict[str, StructureRecord] = {}
    squeezed = 0
    first_squeezed = ""
    heatmaps: list[str] = []  # masks that look like heatmaps: (example, count) kept bounded below
    n_heatmaps = 0
    for name, entry in obj.items():
        if not isinstance(name, str):
            log.add(error(f"{OUTPUT}, key {_key_label(name)}", f"is {describe(name)}; image names must be strings.",
                          "Use the test image's file name without extension as the key.", "keys that are not strings"))
            continue
        where = f"{OUTPUT}, image {quote(name)}"
        if not isinstance(entry, dict):
            log.add(error(where, f"is {describe(entry)}; it must be a dict with 'score' and 'pred_area'.",
                          PICKLE_FIX, "entries that are not dicts"))
            continue
        ok = True
        score = entry.get("score")
        if "score" not in entry:
            log.add(error(where, "has no 'score'.", "Add 'score': float(predicted_mos).", "entries without score"))
            ok = False
        elif not _finite_score(score):
            log.add(error(where, f"'score' is {_what(score)}, not a finite number.",
                          "Write a plain finite number, e.g. float(score).", "bad scores"))
            ok = False
        if "pred_area" not in entry:
            log.add(error(where, "has no 'pred_area'.", MASK_FIX, "entries without pred_area"))
            ok = False
        else:
            mask, mask_problems = check_mask(entry["pred_area"], where)
            log.extend(replace(p, kind="bad masks") for p in mask_problems)
            if mask is None:
                ok = False
            else:
                if entry["pred_area"].ndim == 3:
                    squeezed += 1
                    first_squeezed = first_squeezed or quote(name)
                sign = heatmap_sign(mask)
                if sign:
                    n_heatmaps += 1
                    if len(heatmaps) < 3:
                        heatmaps.append(f"{quote(name)}: {sign}")
        if ok:
            records[name] = StructureRecord(float(score), mask)
    if squeezed:
        log.add(warning(OUTPUT, f"{squeezed:,} mask(s) have shape (H, W, 1) (e.g. {first_squeezed}); "
                        "they are read as (H, W).", "Submit 2-D masks: `mask[..., 0]`."))
    if n_heatmaps:
        examples = "; ".join(heatmaps)
        log.add(warning(OUTPUT, f"{n_heatmaps:,} mask(s) look like heatmaps, not 0/1 masks (e.g. {examples}). "
                        "The official program counts every pixel above 0 after resizing as distorted, so a heatmap "
                        "with a small noise floor becomes one region covering most of the image.",
                        "Threshold your heatmap first: `(heatmap > 0.5).astype(np.uint8)` "
                        "(or `ntire-t2iqa pack --threshold 0.5`)."))
    if not obj:
        log.add(error(OUTPUT, "holds no images.", PICKLE_FIX))
    return records, log.problems()


def _key_label(key: Any) -> str:
    """A non-string dict key for a message: short numbers and bytes as written, anything else by type."""
    if isinstance(key, (int, float)) and not isinstance(key, bool) and abs(key) < 1e15:
        return repr(key)
    if isinstance(key, bytes):
        return repr(key[:40]) + ("…" if len(key) > 40 else "")
    return f"of type {type(key).__name__}"


def _scalar(value: Any) -> Any:
    """A 0-d numeric numpy array as its scalar (``np.array(3.5)`` is read as 3.5); anything else as given."""
    if isinstance(value, np.ndarray) and value.shape == () and value.dtype.kind in "iuf":
        return value[()]
    return value


def _finite_score(value: Any) -> bool:
    value = _scalar(value)
    if not is_number(value):
        return False
    try:
        return math.isfinite(float(value))
    except OverflowError:  # an integer too large for a float
        return False


def _what(value: Any) -> str:
    value = _scalar(value)
    if is_number(value):
        try:
            return repr(float(value))
        except OverflowError:
            return "an integer too large for a float"
    return describe(value)


def check_coverage(records: dict[str, StructureRecord], expected: list[str], against: str) -> list[Problem]:
    """Missing images (errors) and extra images (warnings: the official program ignores them)."""
    wanted = set(expected)
    missing = [n for n in expected if n not in records]
    extra = sorted(n for n in records if n not in wanted)
    problems = []
    if missing:
        problems.append(error(OUTPUT, f"misses {len(missing):,} image(s) of the {against}: {summarize(missing)}.",
                              "Add an entry for every test image (key: file name without extension)."))
    if extra:
        problems.append(warning(OUTPUT, f"has {len(extra):,} image(s) that are not in the {against} and are ignored: "
                                f"{summarize(extra)}.", "Remove them, or check the key spelling."))
    return problems


def unchecked_coverage(records: dict[str, StructureRecord]) -> list[Problem]:
    """What can be said about coverage without the inputs: nothing (image names have no fixed form)."""
    return []


# --------------------------------------------------------------------------- reference and inputs


@dataclass
class StructureReference:
    """gt.pkl: per image a MOS and a boolean 512 x 512 mask; reference regions are cached."""

    scores: dict[str, float]
    masks: dict[str, np.ndarray]
    _regions: dict[str, tuple[list[regions.Region], int, int]] = field(default_factory=dict, repr=False)
    #: Per image, the box of the mask's nonzero pixels and their count, found while loading.
    _nonzero: dict[str, tuple[tuple[int, int, int, int], int]] = field(default_factory=dict, repr=False)
    #: Images whose mask holds values other than 0 and 1 (a graded reference, e.g. levels 64..255): the pixels
    #: equal to 1 (what the official GIoU counts), their box and count. Regions still use every nonzero pixel.
    graded: dict[str, tuple[np.ndarray, tuple[int, int, int, int], int]] = field(default_factory=dict, repr=False)

    def regions_of(self, name: str) -> tuple[list[regions.Region], int, int]:
        """Reference regions (area > 150) of one image, the count dropped, and its pixel count; computed once."""
        if name not in self._regions:
            box, count = self._nonzero.get(name, (None, None))
            self._regions[name] = regions.reference_regions(self.masks[name], box, count)
        return self._regions[name]

    def box_of(self, name: str) -> tuple[int, int, int, int] | None:
        """``(x, y, w, h)`` of the mask's nonzero pixels, found while loading (``None`` if not known)."""
        known = self._nonzero.get(name)
        return None if known is None else known[0]

    def giou_mask_of(self, name: str) -> tuple[np.ndarray, int, tuple[int, int, int, int] | None]:
        """The reference pixels the official GIoU counts (those equal to 1), their count and box.

        For a 0/1 mask these are its nonzero pixels; for a graded one (levels 64..255) only the
        pixels equal to exactly 1, as the official program compares them.
        """
        if name in self.graded:
            ones, box, count = self.graded[name]
            return ones, count, box
        known = self._nonzero.get(name)
        count = int(np.count_nonzero(self.masks[name])) if known is None else known[1]
        return self.masks[name], count, self.box_of(name)


def is_reference(obj: Any) -> bool:
    """True for what :func:`load_reference` returns."""
    return isinstance(obj, StructureReference)


def reference_file(path: str | Path) -> Path:
    """The reference file itself: ``path``, or gt.pkl (or the only *.pkl) in the folder ``path``."""
    file = Path(path)
    if file.is_dir():
        candidates = [file / REFERENCE_NAME] if (file / REFERENCE_NAME).is_file() else sorted(file.glob("*.pkl"))
        if len(candidates) != 1:
            raise ReferenceDataError(str(file), "holds no gt.pkl (and not exactly one *.pkl file).",
                                     "Pass the gt.pkl file itself.")
        file = candidates[0]
    if not file.is_file():
        raise ReferenceDataError(str(file), "does not exist.", "Pass the path of gt.pkl.")
    return file


def load_reference(path: str | Path) -> StructureReference:
    """Load gt.pkl (restricted unpickler: a reference file is never trusted to run code)."""
    file = reference_file(path)
    # Each mask is checked for 0/1 values, and the box of its nonzero pixels found, as soon as it is
    # read: while its data is still in the processor's cache.
    checked: dict[int, tuple[Any, np.ndarray, tuple[int, int, int, int], int]] = {}

    def check(array: np.ndarray) -> None:
        if array.shape == (regions.SIZE, regions.SIZE) and array.dtype.kind in "biuf":
            checked[id(array.base)] = (array.base, *regions.reference_mask(array))

    try:
        with open(file, "rb") as stream:
            obj = load_pickle_restricted(stream, file.name, on_array=check, scan=False)
    except SubmissionError as exc:
        raise ReferenceDataError(file.name, str(exc.problems[0].what), REFERENCE_FIX) from None
    if not isinstance(obj, dict):
        raise ReferenceDataError(file.name, f"must hold a dict {{image_name: {{'score', 'pred_area'}}}}, not "
                                 f"{describe(obj)}.", REFERENCE_FIX)
    if not obj:
        raise ReferenceDataError(file.name, "holds no images.", REFERENCE_FIX)
    scores: dict[str, float] = {}
    masks: dict[str, np.ndarray] = {}
    nonzero: dict[str, tuple[tuple[int, int, int, int], int]] = {}
    graded: dict[str, tuple[np.ndarray, tuple[int, int, int, int], int]] = {}
    for name, entry in obj.items():
        where = f"{file.name}, image {name!r}"
        if not isinstance(name, str) or not isinstance(entry, dict):
            raise ReferenceDataError(where, f"maps {describe(name)} to {describe(entry)}; it must map a string "
                                     "image name to a dict {'score', 'pred_area'}.", REFERENCE_FIX)
        score = entry.get("score")
        if not _finite_score(score):
            raise ReferenceDataError(where, f"'score' is {_what(score)}, not a finite number.", REFERENCE_FIX)
        mask = entry.get("pred_area")
        if not isinstance(mask, np.ndarray) or mask.shape != (regions.SIZE, regions.SIZE) or \
                mask.dtype.kind not in "biuf":
            found = describe(mask) + (f" of dtype {mask.dtype}" if isinstance(mask, np.ndarray) else "")
            raise ReferenceDataError(where, f"'pred_area' must be a {regions.SIZE} x {regions.SIZE} array of bool, "
                                     f"integer or float values, not {found}.", REFERENCE_FIX)
        scores[name] = float(score)
        # Nonzero is True (a uint8 0/1 mask is viewed, not copied); the pass that checks it also finds
        # the box of its nonzero pixels, where its regions are searched later, and counts them.
        done = checked.get(id(mask.base))
        if done is not None and done[0] is mask.base:
            masks[name], box, count = done[1:]
        else:
            masks[name], box, count = regions.reference_mask(mask)
        nonzero[name] = (box, count)
        if mask.dtype != bool and not np.may_share_memory(masks[name], mask):  # not viewed: not proven 0/1
            ones = np.ascontiguousarray(mask == 1)
            n_ones = int(np.count_nonzero(ones))
            if n_ones != count:  # some nonzero pixel is not 1
                graded[name] = (ones, regions.nonzero_box(ones), n_ones)
    return StructureReference(scores, masks, _nonzero=nonzero, graded=graded)


def load_expected(path: str | Path) -> list[str]:
    """Public test images: a JSON list of names (extensions dropped), a ``{name: {...}}`` info file, or a folder.

    A folder is a split folder holding ``<folder>_info.json`` (EvalMuse-Structure: ``val/val_info.json``,
    whose keys are the names) or ``images/``, or a folder of images itself.
    """
    p = Path(path)
    if p.is_dir() and (p / f"{p.name}_info.json").is_file():
        p = p / f"{p.name}_info.json"
    elif p.is_dir():
        p = p / "images" if (p / "images").is_dir() else p
        names = sorted(f.stem for f in p.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES)
        if not names:
            raise ReferenceDataError(str(p), "holds no images.", f"Pass a folder of {', '.join(IMAGE_SUFFIXES)} files.")
        return names
    obj = read_json_file(p, "Pass a JSON list of image names or a folder of images.")
    if isinstance(obj, dict):
        obj = list(obj)
    if not isinstance(obj, list) or not all(isinstance(n, str) for n in obj):
        raise ReferenceDataError(str(p), f"must be a JSON list of image names (strings), not {_listing(obj)}.",
                                 "Pass a JSON list of image names, a {name: {...}} info file (its keys are the names) "
                                 "or a folder of images.")
    return [n[: -len(Path(n).suffix)] if Path(n).suffix.lower() in IMAGE_SUFFIXES else n for n in obj]


def _listing(obj: Any) -> str:
    """What a public inputs file holds instead of a list of names: its type, or its first item that is no name."""
    if isinstance(obj, list):
        return f"a list holding {describe(next(n for n in obj if not isinstance(n, str)))}"
    return describe(obj)


def expected_of(reference: StructureReference) -> list[str]:
    """Coverage implied by a reference."""
    return list(reference.scores)


# --------------------------------------------------------------------------- scoring


def compute(records: dict[str, StructureRecord], reference: StructureReference, fit: str,
            check: bool = True) -> Result:
    """Score checked records against the reference, pooling region counts over all images.

    ``check=False`` skips the coverage check when the caller has already made it.
    """
    problems = check_coverage(records, expected_of(reference), "reference") if check else []
    if any(p.severity == "error" for p in problems):
        raise SubmissionError(problems)
    names = list(reference.scores)
    matches = []
    for name in names:
        gt_regions, gt_dropped, _ = reference.regions_of(name)
        giou_mask, giou_count, giou_box = reference.giou_mask_of(name)  # regions are given: the mask serves GIoU only
        matches.append(regions.match_image(records[name].pred_area, giou_mask, gt_regions, gt_dropped,
                                           giou_count, giou_box))
    n_pred = sum(m.n_pred for m in matches)
    n_pred_hit = sum(m.n_pred_hit for m in matches)
    n_gt = sum(m.n_gt for m in matches)
    n_gt_missed = sum(m.n_gt_missed for m in matches)
    (f1, precision, recall), n0 = metrics.region_scores_with_notes(n_pred, n_pred_hit, n_gt, n_gt_missed)
    gt = np.array([reference.scores[n] for n in names], dtype=np.float64)
    pred = np.array([records[n].score for n in names], dtype=np.float64)
    srcc, n1 = metrics.srcc_with_notes(gt, pred)
    plcc, used, n2 = metrics.plcc_with_notes(gt, pred, metrics.resolve_fit(TRACK, fit))
    giou = metrics.mean([m.giou for m in matches])
    if reference.graded:
        n0 = n0 + [f"GIoU: {len(reference.graded):,} of the reference's {len(names):,} masks hold values other than 0 "
                   "and 1 (a graded reference, e.g. levels 64..255). As in the official program, GIoU counts only "
                   "reference pixels equal to 1, so those images' GIoU terms are near 0 (regions, F1 and the main "
                   "score use every nonzero pixel and are unaffected). Organizers: binarise the reference "
                   "(`(mask > 0).astype(np.uint8)`, or `ntire-t2iqa data build-ref`) for a meaningful GIoU."]
    return Result(
        track=TRACK,
        main_score=metrics.structure_main(f1, srcc, plcc),
        srcc=srcc,
        plcc=plcc,
        plcc_fit=fit if used != "none" else "none",
        plcc_fit_used=used,
        n_images=len(names),
        warnings=[str(p) for p in problems] + n0 + n1 + n2 + metrics.sign_disagreement(srcc, plcc),
        components={"f1": f1, "precision": precision, "recall": recall, "giou": giou},
        details={"image": names, "gt_score": gt, "pred_score": pred, "matches": matches,
                 **{key: np.array([getattr(m, key) for m in matches]) for key in
                    ("n_pred", "n_pred_hit", "n_gt", "n_gt_missed", "giou", "pred_dropped", "gt_dropped")}},
    )
