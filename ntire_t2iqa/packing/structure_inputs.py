"""Track 2 predictions for ``pack``: mask images and a scores table, an ``.npz``, a dict or a DataFrame.

Every mask becomes a 2-D uint8 0/1 array at its own size (the official program resizes it).
A mask may hold 0 and one other value (0/1, 0/255, False/True): that value marks distorted
pixels. Anything with more levels (a heatmap, a JPEG's compression noise) needs a threshold:
a pixel is distorted when its value is above ``threshold x scale``, where the scale is 255 for
8-bit data, 65535 for 16-bit data and 1 otherwise (floats, other integers), so
``threshold=0.5`` means the middle of the range for images and float heatmaps alike.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..errors import Problem, ProblemLog, SubmissionError, error, warning
from ..safetext import quote
from ..tracks.common import summarize
from .tables import Table, dataframe_table, number, read_table, text

MASK_IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff")
#: The arrays of an .npz holding a whole batch (otherwise each array is one image's mask, named by its key).
BATCH_KEYS = ("names", "scores", "masks")
_SCORES_FIX = "Pass the scores as a table with the columns name and score (one row per image): --scores scores.csv."
_THRESHOLD_FIX = ("Threshold it: `--threshold 0.5` (pack(..., threshold=0.5)) counts pixels above half of the range "
                  "as distorted; or save 0/1 or 0/255 masks (PNG, not JPEG).")


def scale_of(dtype: np.dtype) -> float:
    """What ``threshold`` is a fraction of: 255 for uint8, 65535 for uint16, 1 otherwise."""
    return {np.dtype(np.uint8): 255.0, np.dtype(np.uint16): 65535.0}.get(np.dtype(dtype), 1.0)


def binary_mask(value: Any, label: str, threshold: float | None = None,
                scale: float | None = None) -> tuple[np.ndarray | None, Problem | None]:
    """A mask as a 2-D uint8 0/1 array, or ``(None, problem)``; see the module's docstring for the rule."""
    if not isinstance(value, np.ndarray):
        return None, error(label, f"the mask is {type(value).__name__}, not a numpy array.",
                           "Pass each mask as a 2-D numpy array.", "bad masks")
    a = value
    if a.ndim == 3 and 1 in (a.shape[0], a.shape[2]):
        a = a[0] if a.shape[0] == 1 else a[..., 0]
    if a.ndim != 2 or 0 in a.shape:
        return None, error(label, f"the mask has shape {value.shape}; it must be 2-D (H, W).",
                           "Pass one 2-D mask per image.", "bad masks")
    if a.dtype == bool:
        return a.astype(np.uint8), None
    if a.dtype.kind not in "iuf":
        return None, error(label, f"the mask has dtype {a.dtype}, not numbers.", "Pass a numeric mask.", "bad masks")
    if a.dtype.kind == "f" and not np.isfinite(a).all():
        return None, error(label, "the mask holds NaN or infinite values.", "Replace them (e.g. np.nan_to_num).",
                           "bad masks")
    if threshold is not None:
        return (a > threshold * (scale_of(a.dtype) if scale is None else scale)).astype(np.uint8), None
    nonzero = a[a != 0]
    if nonzero.size == 0:
        return np.zeros(a.shape, np.uint8), None
    low, high = nonzero.min(), nonzero.max()
    if low < 0:
        return None, error(label, "the mask holds negative values; the official program counts only values above "
                           "0 as distorted.", _THRESHOLD_FIX, "masks that need a threshold")
    if low != high:
        step = max(1, nonzero.size // 65536)  # a sample is enough to say how many levels there are
        levels = len(np.unique(nonzero[::step]))
        return None, error(label, f"the mask holds {levels:,}{'+' if step > 1 else ''} different non-zero values "
                           f"({float(low):.4g} to {float(high):.4g}): it looks like a heatmap.", _THRESHOLD_FIX,
                           "masks that need a threshold")
    return (a != 0).astype(np.uint8), None


def read_mask_image(path: Path) -> tuple[np.ndarray, float]:
    """A mask image's values and the scale a threshold applies to; raises ValueError saying what is wrong."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as img:
            img.load()
            mode = img.mode
            if mode == "P":
                img = img.convert("L")
                mode = "L"
            array = np.asarray(img)
    except (OSError, UnidentifiedImageError, ValueError, Image.DecompressionBombError) as exc:
        raise ValueError(f"cannot be read as an image ({type(exc).__name__}: {' '.join(str(exc).split())[:120]})") \
            from None
    if mode in ("LA", "RGB", "RGBA"):
        colour = array[..., :3] if mode != "LA" else array[..., :1]
        if colour.shape[-1] == 3 and not (np.array_equal(colour[..., 0], colour[..., 1])
                                          and np.array_equal(colour[..., 0], colour[..., 2])):
            raise ValueError("is a colour image; masks are grey (save it as greyscale, mode L)")
        array = colour[..., 0]
    scale = {"1": 1.0, "L": 255.0, "F": 1.0}.get(mode, 65535.0 if mode.startswith("I") else 255.0)
    return array, scale


def predictions_from_path(path: str | Path, scores: str | Path | None = None,
                          threshold: float | None = None) -> tuple[dict[str, Any], list[Problem]]:
    """Predictions from a folder of mask images or an ``.npz``, with ``scores`` (a name,score table) where needed."""
    path = Path(path)
    score_table = read_table(scores) if scores is not None else None
    if path.is_dir():
        return _from_folder(path, score_table, threshold)
    if path.suffix.lower() == ".npz":
        return _from_npz(path, score_table, threshold)
    raise SubmissionError([error(path.name, "is not a folder of mask images or an .npz file.",
                                 "Pass a folder of masks (one PNG per image, named like the image) with "
                                 "--scores scores.csv, or an .npz.")])


def _scores(table: Table | None, log: ProblemLog) -> dict[str, float]:
    if table is None:
        raise SubmissionError([error("pack", "the structure scores are missing.", _SCORES_FIX)])
    table.require("name", "score", fix=_SCORES_FIX)
    out: dict[str, float] = {}
    for label, row in table.rows:
        name = text(row.get("name"))
        value, problem = number(row.get("score"), label, "score", "bad scores")
        if name is None:
            log.add(error(label, "'name' is empty.", "Write the image name (file name without extension).",
                          "rows without name"))
            continue
        name = _stem(name)
        if problem is not None:
            log.add(problem)
        elif name in out:
            log.add(error(label, f"repeats image {quote(name)}.", "Give each image one row.", "repeated names"))
        else:
            out[name] = value  # type: ignore[assignment]
    return out


def _stem(name: str) -> str:
    suffix = Path(name).suffix.lower()
    return name[: -len(suffix)] if suffix in MASK_IMAGE_SUFFIXES else name


def _pair(masks: dict[str, np.ndarray], scores: dict[str, float], log: ProblemLog, where: str,
          scores_where: str) -> dict[str, Any]:
    """Masks and scores joined by image name; one without the other is an error."""
    no_score = [n for n in masks if n not in scores]
    no_mask = [n for n in scores if n not in masks]
    if no_score:
        log.add(error(scores_where, f"has no score for {len(no_score):,} mask(s): {summarize(no_score)}.",
                      "Give every image a row (name, score).", "masks without score"))
    if no_mask:
        log.add(error(where, f"has no mask for {len(no_mask):,} scored image(s): {summarize(no_mask)}.",
                      "Give every scored image a mask (an all-zero mask if nothing is distorted).",
                      "scores without mask"))
    return {name: {"score": scores[name], "pred_area": mask} for name, mask in masks.items() if name in scores}


def _from_folder(folder: Path, table: Table | None, threshold: float | None) -> tuple[dict[str, Any], list[Problem]]:
    log = ProblemLog()
    scores = _scores(table, log)
    masks: dict[str, np.ndarray] = {}
    skipped = []
    for file in sorted(folder.iterdir()):
        if file.name.startswith(".") or not file.is_file():
            continue
        if file.suffix.lower() not in MASK_IMAGE_SUFFIXES:
            skipped.append(file.name)
            continue
        label = f"mask {quote(file.name)}"
        if file.stem in masks:
            log.add(error(label, f"is a second mask for image {quote(file.stem)}.", "Keep one file per image.",
                          "repeated masks"))
            continue
        try:
            values, scale = read_mask_image(file)
        except ValueError as exc:
            log.add(error(label, str(exc) + ".", "Save each mask as a greyscale PNG.", "unreadable masks"))
            continue
        mask, problem = binary_mask(values, label, threshold, scale)
        if problem is not None:
            log.add(problem)
        else:
            masks[file.stem] = mask  # type: ignore[assignment]
    if skipped:
        log.add(warning(folder.name, f"holds {len(skipped):,} file(s) that are not mask images, left out: "
                        f"{summarize(skipped)}.", f"Masks are {', '.join(MASK_IMAGE_SUFFIXES)} files."))
    if not masks and not log.has_errors():
        raise SubmissionError([error(folder.name, "holds no mask images.",
                                     f"Put one {'/'.join(MASK_IMAGE_SUFFIXES)} mask per image in the folder.")])
    preds = _pair(masks, scores, log, folder.name, table.name if table else "scores")
    if log.has_errors():
        raise SubmissionError(log.problems())
    return preds, log.problems()


def _from_npz(path: Path, table: Table | None, threshold: float | None) -> tuple[dict[str, Any], list[Problem]]:
    log = ProblemLog()
    try:
        npz = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as exc:
        raise SubmissionError([error(path.name, f"cannot be read as .npz ({type(exc).__name__}).",
                                     "Write it with np.savez_compressed(path, **masks).")]) from None
    try:
        with npz:
            keys = list(npz.files)
            if sorted(keys) == sorted(BATCH_KEYS):
                names, values, stack = (_npz_array(npz, key, path) for key in BATCH_KEYS)
                if table is not None:
                    log.add(warning(path.name, "holds its own scores; --scores is ignored.",
                                    "Leave out --scores for a batch .npz (names, scores, masks)."))
                return _batch(names, values, stack, path.name, threshold, log)
            scores = _scores(table, log)
            masks = {}
            for key in keys:
                mask, problem = binary_mask(_npz_array(npz, key, path), f"{path.name}, array {quote(key)}", threshold)
                if problem is not None:
                    log.add(problem)
                else:
                    masks[key] = mask
    except (OSError, ValueError, EOFError) as exc:  # a damaged member, found while it is read
        raise SubmissionError([error(path.name, f"cannot be read as .npz ({type(exc).__name__}).",
                                     "Write it with np.savez_compressed(path, **masks).")]) from None
    preds = _pair(masks, scores, log, path.name, table.name if table else "scores")
    if log.has_errors():
        raise SubmissionError(log.problems())
    return preds, log.problems()


def _npz_array(npz: Any, key: str, path: Path) -> np.ndarray:
    try:
        return npz[key]
    except ValueError:  # an object array: would need pickle, which is never loaded
        raise SubmissionError([error(f"{path.name}, array {quote(key)}", "holds Python objects (it would need "
                                     "pickle to load).", "Save plain numeric arrays and a string array of names."
                                     )]) from None


def _batch(names: np.ndarray, values: np.ndarray, stack: np.ndarray, where: str, threshold: float | None,
           log: ProblemLog) -> tuple[dict[str, Any], list[Problem]]:
    """A batch .npz: ``names`` (N strings), ``scores`` (N numbers), ``masks`` (N, H, W)."""
    fix = ("Save names (N strings), scores (N numbers) and masks (N x H x W): "
           "np.savez(path, names=..., scores=..., masks=...).")
    if names.ndim != 1 or names.dtype.kind not in "US" or values.shape != names.shape or stack.ndim != 3 \
            or len(stack) != len(names):
        raise SubmissionError([error(where, f"has names {names.shape} ({names.dtype}), scores {values.shape} and "
                                     f"masks {stack.shape}; they do not fit together.", fix)])
    preds: dict[str, Any] = {}
    for i, raw in enumerate(names.tolist()):
        name = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
        label = f"{where}, image {quote(name)}"
        value, problem = number(values[i].item(), label, "score", "bad scores")
        mask, mask_problem = binary_mask(stack[i], label, threshold)
        for p in (problem, mask_problem):
            if p is not None:
                log.add(p)
        if name in preds:
            log.add(error(label, "appears twice in names.", "Give each image one entry.", "repeated names"))
        elif problem is None and mask_problem is None:
            preds[name] = {"score": value, "pred_area": mask}
    if log.has_errors():
        raise SubmissionError(log.problems())
    return preds, log.problems()


def predictions_from_memory(obj: Any, threshold: float | None = None) -> tuple[dict[str, Any], list[Problem]]:
    """A dict ``{name: {"score", "pred_area"}}`` with every mask made 2-D uint8 0/1 (the validator checks the rest)."""
    if not isinstance(obj, dict):
        raise TypeError(f"Track 2 predictions are a dict {{image_name: {{'score', 'pred_area'}}}}, not "
                        f"{type(obj).__name__}.")
    log = ProblemLog()
    out: dict[str, Any] = {}
    for name, entry in obj.items():
        if not isinstance(entry, dict) or "pred_area" not in entry:
            out[name] = entry  # the validator says what is wrong with it
            continue
        mask, problem = binary_mask(entry["pred_area"], f"image {quote(name)}", threshold)
        if problem is not None:
            log.add(problem)
        else:
            out[name] = {**entry, "pred_area": mask}
    if log.has_errors():
        raise SubmissionError(log.problems())
    return out, log.problems()


def predictions_from_dataframe(df: Any) -> dict[str, Any]:
    """A DataFrame with the columns ``name``, ``score`` and ``pred_area`` (one array per row) as a dict."""
    table = dataframe_table(df)
    table.require("name", "score", "pred_area", fix="Give the DataFrame the columns name, score and pred_area "
                  "(a 2-D mask array per row).")
    out: dict[str, Any] = {}
    log = ProblemLog()
    for label, row in table.rows:
        name = text(row["name"])
        if name is None:
            log.add(error(label, "'name' is empty or not text.", "Write the image name (file name without extension).",
                          "rows without name"))
        elif name in out:
            log.add(error(label, f"repeats image {quote(name)}.", "Give each image one row.", "repeated names"))
        else:
            out[name] = {"score": row["score"], "pred_area": row["pred_area"]}
    if log.has_errors():
        raise SubmissionError(log.problems())
    return out
