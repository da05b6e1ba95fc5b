"""Track 1 (image-text alignment, EvalMuse-40K): schema, loaders, coverage and scoring."""

from __future__ import annotations

import math
import re
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .. import metrics
from ..archive import DuplicateKeys, SubmissionSource, load_json_strict
from ..errors import Problem, ProblemLog, ReferenceDataError, SubmissionError, error, warning
from ..safetext import quote
from .common import README, Result, describe, is_number, read_json_file, summarize

TRACK = "align"
OUTPUT = "output.json"
REQUIRED = (OUTPUT, README)
REFERENCE_NAME = "eval.json"
_JSON_FIX = "Pass a valid JSON file."
#: The fix of every problem with a reference file (organizer-facing), and with a public inputs file.
REFERENCE_FIX = ('Pass the organizers\' eval.json: a JSON list of records {"img_path": "MODEL/00001.png", '
                 '"total_score": number, "element_score": {"<element> (<category>)": number, ...}}; lists of '
                 'per-annotator votes are averaged (`ntire-t2iqa data build-ref` writes one from the raw annotations).')
INPUTS_FIX = ('Pass the split\'s public inputs (e.g. val/val.json): a JSON list of records {"img_path": '
              '"MODEL/00001.png", "element_score": {"<element> (<category>)": null, ...}}.')

_SHAPE_FIX = ('Write a JSON list of objects: [{"img_path": "MODEL/00001.png", "total_score": 3.2, '
              '"element_score": {"cat (animal)": 0.9}}, ...].')


@dataclass(frozen=True)
class AlignRecord:
    """One image: overall score and element scores (and, in a reference, the prompt's ``type`` and text if given)."""

    total: float
    elements: dict[str, float]
    prompt_type: str | None = None
    prompt: str | None = None


#: Expected coverage: img_path -> element keys (a list read from the inputs, or a reference's keys view).
Expected = dict[str, Collection[str]]


#: The UTF-8 byte-order mark some Windows tools write at the start of a file.
UTF8_BOM = b"\xef\xbb\xbf"


def read_predictions(source: SubmissionSource) -> tuple[dict[str, AlignRecord] | None, list[Problem]]:
    """Load and check output.json from a submission; every record problem is reported."""
    data = source.read(OUTPUT)
    records, problems = parse_predictions(load_json_strict(data, OUTPUT, _SHAPE_FIX))
    if data.startswith(UTF8_BOM):
        problems.append(warning(OUTPUT, "starts with a UTF-8 byte-order mark (BOM). This toolkit reads it, but the "
                                "official scoring program does not: there the upload fails with `JSONDecodeError: "
                                "Unexpected UTF-8 BOM`.",
                                "Save it as plain UTF-8 without a BOM: in Python `open('output.json', 'w', "
                                "encoding='utf-8')` (not 'utf-8-sig'); in an editor choose 'UTF-8', not "
                                "'UTF-8 with BOM'."))
    return records, problems


def _where(i: int, path: Any) -> str:
    if isinstance(path, str) and path:
        return f"{OUTPUT}, record {i} (img_path {quote(path)})"
    return f"{OUTPUT}, record {i}"


def parse_predictions(obj: Any) -> tuple[dict[str, AlignRecord] | None, list[Problem]]:
    """Check parsed output.json content; return records by img_path (``None`` if unusable).

    Problems are collected in a :class:`ProblemLog`, so a file with a million bad records
    gives a report of a few dozen lines and the count of the rest.
    """
    if not isinstance(obj, list):
        fix = _SHAPE_FIX
        if isinstance(obj, dict):
            fix = "Put the records in a list instead of an object keyed by img_path. " + fix
        return None, [error(OUTPUT, f"must be a JSON list of objects, not {describe(obj)}.", fix)]
    log = ProblemLog()
    add = log.add
    records: dict[str, AlignRecord] = {}
    first_index: dict[str, int] = {}
    out_of_range = 0
    first_out_of_range = ""
    for i, rec in enumerate(obj):
        if not isinstance(rec, dict):
            add(error(f"{OUTPUT}, record {i}", f"is {describe(rec)}, not an object.", _SHAPE_FIX,
                      "records that are not objects"))
            continue
        path = rec.get("img_path")
        if isinstance(rec, DuplicateKeys):
            add(error(_where(i, path), f"repeats key(s) {summarize(rec.duplicates)}.", "Write each key once.",
                      "records with repeated keys"))
        ok = True
        if "img_path" not in rec:
            add(error(_where(i, path), "has no 'img_path'.", 'Add "img_path": "MODEL/00001.png".',
                      "records without img_path"))
            ok = False
        elif not isinstance(path, str) or not path:
            add(error(_where(i, path), f"'img_path' is {describe(path)}; it must be a non-empty string.",
                      'Write the image path as in the inputs, e.g. "SDXL-Turbo/00805.png".', "bad img_paths"))
            ok = False
        elif path in first_index:
            add(error(_where(i, path), f"repeats the img_path of record {first_index[path]}.",
                      "Give each image exactly one record.", "repeated img_paths"))
            ok = False
        total = rec.get("total_score")
        if "total_score" not in rec:
            add(error(_where(i, path), "has no 'total_score'.", 'Add "total_score": <number>.',
                      "records without total_score"))
            ok = False
        elif not _finite_number(total):
            add(_bad_number(_where(i, path), "'total_score'", total, "bad total scores"))
            ok = False
        elements = rec.get("element_score")
        if "element_score" not in rec:
            add(error(_where(i, path), "has no 'element_score'.",
                      'Add "element_score": {"<element> (<category>)": <0..1>, ...} ({} if none).',
                      "records without element_score"))
            ok = False
        elif not isinstance(elements, dict):
            add(error(_where(i, path), f"'element_score' is {describe(elements)}; it must be an object.",
                      'Write {"<element> (<category>)": <0..1>, ...}.', "bad element_score objects"))
            ok = False
        else:
            if isinstance(elements, DuplicateKeys):
                add(error(_where(i, path), f"'element_score' repeats key(s) {summarize(elements.duplicates)}.",
                          "Write each element once.", "repeated element keys"))
                ok = False
            for key, value in elements.items():
                if not _finite_number(value):
                    add(_bad_number(_where(i, path), f"element {quote(key)}", value, "bad element scores"))
                    ok = False
                elif not 0 <= value <= 1:
                    out_of_range += 1
                    if out_of_range == 1:
                        first_out_of_range = f"{quote(path)}: {quote(key)}"
        if ok:
            first_index[path] = i
            records[path] = AlignRecord(float(total), {k: float(v) for k, v in elements.items()})
    if out_of_range:
        add(warning(OUTPUT, f"{out_of_range:,} element score(s) lie outside 0..1 (e.g. {first_out_of_range}); "
                    "they are thresholded at 0.5 as they are.", "Submit element presence probabilities in 0..1."))
    if not obj:
        add(error(OUTPUT, "holds no records.", _SHAPE_FIX))
    return records, log.problems()


_FLOAT_MAX = 1.7976931348623157e308


def _finite_number(value: Any) -> bool:
    kind = type(value)
    if kind is float:  # the common case, kept fast: JSON numbers parse to exactly float or int
        return math.isfinite(value)
    if kind is int:
        return -_FLOAT_MAX <= value <= _FLOAT_MAX  # a JSON integer too large for a float is refused
    if not is_number(value):
        return False
    try:  # NaN and infinity (also numpy's) fail isfinite; float() of a huge Fraction overflows
        return math.isfinite(float(value))
    except OverflowError:
        return False


def _bad_number(where: str, what: str, value: Any, kind: str) -> Problem:
    if is_number(value):  # a JSON NaN or Infinity too: it parses to a float
        if isinstance(value, int):  # beyond the float range (JSON literals far beyond it parse to inf)
            return error(where, f"{what} is an integer too large for a float, not a finite number.",
                         "Write a number within the range of a float (about ±1.8e308).", kind)
        return error(where, f"{what} is {value!r}, not a finite number.",
                     "Replace NaN/Infinity with a finite number (check for failed predictions).", kind)
    return error(where, f"{what} is {describe(value)}, not a number.", "Write a plain JSON number, e.g. 0.87.", kind)


def check_coverage(records: dict[str, AlignRecord], expected: Expected, against: str) -> list[Problem]:
    """Missing and extra images and missing element keys, compared with ``against`` (inputs or reference)."""
    problems = ProblemLog()
    missing = [p for p in expected if p not in records]
    extra = sorted(p for p in records if p not in expected)
    if missing:
        problems.add(error(OUTPUT, f"misses {len(missing):,} image(s) of the {against}: {summarize(missing)}.",
                           "Add one record for every img_path of the test inputs."))
    if extra:
        problems.add(error(OUTPUT, f"has {len(extra):,} img_path(s) that are not in the {against}: "
                           f"{summarize(extra)}.",
                           "Remove them, or fix the paths to match the inputs exactly (e.g. 'MODEL/00001.png')."))
    n_extra_keys = 0
    bare_records = 0  # records whose missing keys are all present without their " (category)" suffix
    bare_example = ""
    for path, keys in expected.items():
        rec = records.get(path)
        if rec is None or rec.elements.keys() == keys:  # a reference's keys (expected_of): a set comparison
            continue
        lost = [k for k in keys if k not in rec.elements]
        unused = set(rec.elements) - set(keys)
        if lost:
            bare = {k: without_category(k) for k in lost}
            if all(b != k and b in unused for k, b in bare.items()):
                bare_records += 1
                unused -= set(bare.values())
                if not bare_example:
                    key = lost[0]
                    bare_example = f"{quote(bare[key])} for {quote(key)} (img_path {quote(path)})"
            else:
                problems.add(error(f"{OUTPUT}, img_path {quote(path)}", f"'element_score' misses {summarize(lost)}.",
                                   "Copy the element keys from the inputs verbatim, category suffix included.",
                                   "records with missing element keys"))
        n_extra_keys += len(unused)
    if bare_records:
        problems.add(error(OUTPUT, f"your element keys lack the category suffix in {bare_records:,} record(s): "
                           f"e.g. {bare_example}.",
                           'Write the keys exactly as the inputs do, suffix included: "cat (animal)", not "cat".'))
    if n_extra_keys:
        problems.add(warning(OUTPUT, f"{n_extra_keys:,} element key(s) are not in the {against} and are ignored.",
                             "Use exactly the inputs' element keys."))
    return problems.problems()


def unchecked_coverage(records: dict[str, AlignRecord]) -> list[Problem]:
    """What can be said about coverage without the inputs: element keys that all lack the category suffix."""
    keys = [k for rec in records.values() for k in rec.elements]
    if not keys or any(has_category(k) for k in keys):
        return []
    return [warning(OUTPUT, f"your element keys lack the category suffix: none of the {len(keys):,} keys ends in "
                    f"\" (category)\" (e.g. {quote(keys[0])}); the inputs' keys look like 'cat (animal)', so "
                    "every element would be missing.",
                    "Write the keys exactly as the inputs do, and check with --inputs.")]


def is_reference(obj: Any) -> bool:
    """True for what :func:`load_reference` returns (img_path -> :class:`AlignRecord`)."""
    return isinstance(obj, dict) and bool(obj) and isinstance(next(iter(obj.values())), AlignRecord)


_CATEGORY = re.compile(r"\s*\([^()]*\)\s*$")


def without_category(key: str) -> str:
    """An element key without its ``" (category)"`` suffix: ``"pig giants (animal)"`` -> ``"pig giants"``."""
    return _CATEGORY.sub("", key)


def has_category(key: str) -> bool:
    """True when an element key ends with a ``" (category)"`` suffix, as every key of the challenge's inputs does."""
    return _CATEGORY.search(key) is not None and bool(without_category(key))


# --------------------------------------------------------------------------- reference and inputs


def _find(path: Path, name: str, suffix: str) -> Path:
    if path.is_dir():
        if (path / name).is_file():
            return path / name
        found = sorted(path.glob(f"*{suffix}"))
        if len(found) == 1:
            return found[0]
        raise ReferenceDataError(str(path), f"holds no {name} (and not exactly one *{suffix} file).",
                                 f"Pass the {name} file itself.")
    if not path.is_file():
        raise ReferenceDataError(str(path), "does not exist.", f"Pass the path of {name}.")
    return path


def _mean(value: Any, where: str) -> float:
    if type(value) is float and math.isfinite(value):  # the common case, kept fast (JSON numbers are float or int)
        return value
    if isinstance(value, list):
        if not value or not all(is_number(v) for v in value):
            raise ReferenceDataError(where, "must be a non-empty list of numbers (per-annotator votes).",
                                     REFERENCE_FIX)
        value = float(np.mean(value))
    if not is_number(value):
        raise ReferenceDataError(where, f"is {describe(value)}, not a finite number.", REFERENCE_FIX)
    if not np.isfinite(value):
        raise ReferenceDataError(where, f"is {float(value)!r}, not a finite number.", REFERENCE_FIX)
    return float(value)


def _records(obj: Any, where: str, fix: str) -> list[dict[str, Any]]:
    if not isinstance(obj, list) or not all(isinstance(r, dict) for r in obj):
        raise ReferenceDataError(where, "must be a JSON list of objects with 'img_path' and 'element_score'.", fix)
    return obj


def reference_file(path: str | Path) -> Path:
    """The reference file itself: ``path``, or eval.json (or the only *.json) in the folder ``path``."""
    return _find(Path(path), REFERENCE_NAME, ".json")


def load_reference(path: str | Path) -> dict[str, AlignRecord]:
    """Load eval.json (averaged form) or the raw training form (per-annotator lists are averaged)."""
    file = reference_file(path)
    out: dict[str, AlignRecord] = {}
    for i, rec in enumerate(_records(read_json_file(file, _JSON_FIX), file.name, REFERENCE_FIX)):
        where = f"{file.name}, record {i}"
        img = rec.get("img_path")
        if not isinstance(img, str) or not img:
            raise ReferenceDataError(where, "has no string 'img_path'.", REFERENCE_FIX)
        if img in out:
            raise ReferenceDataError(where, f"repeats img_path {img!r}.", "Give each image one record.")
        elements = rec.get("element_score")
        if elements is None:
            elements = {}
        if not isinstance(elements, dict):
            raise ReferenceDataError(where, "'element_score' must be an object.", REFERENCE_FIX)
        kind, prompt = rec.get("type"), rec.get("prompt")
        # The messages' locations are built only for a value that fails (70,000 values in a test split).
        values = {k: v if type(v) is float and math.isfinite(v) else _mean(v, f"{where} element {k!r}")
                  for k, v in elements.items()}
        out[img] = AlignRecord(_mean(rec.get("total_score"), f"{where} 'total_score'"), values,
                               kind if isinstance(kind, str) and kind else None,
                               prompt if isinstance(prompt, str) and prompt else None)
    if not out:
        raise ReferenceDataError(file.name, "holds no records.", REFERENCE_FIX)
    return out


def load_expected(path: str | Path) -> Expected:
    """Public test inputs (records with ``img_path`` and ``element_score`` keys; values may be null).

    A folder is searched for ``<folder>.json`` (an NTIRE phase folder: ``val/val.json``), then
    ``test_inputs.json``, then its only JSON file.
    """
    p = Path(path)
    phase = p / f"{p.name}.json"
    file = phase if p.is_dir() and phase.is_file() else _find(p, "test_inputs.json", ".json")
    out: Expected = {}
    for i, rec in enumerate(_records(read_json_file(file, _JSON_FIX), file.name, INPUTS_FIX)):
        img = rec.get("img_path")
        if not isinstance(img, str) or not img:
            raise ReferenceDataError(f"{file.name}, record {i}", "has no string 'img_path'.", INPUTS_FIX)
        elements = rec.get("element_score") or {}
        if not isinstance(elements, dict):
            raise ReferenceDataError(f"{file.name}, record {i}", "'element_score' must be an object.", INPUTS_FIX)
        out[img] = list(elements)
    if not out:
        raise ReferenceDataError(file.name, "holds no records, so no image would be expected.", INPUTS_FIX)
    return out


def expected_of(reference: dict[str, AlignRecord]) -> Expected:
    """Coverage implied by a reference (each image's element keys, as a view of the reference's keys)."""
    return {p: r.elements.keys() for p, r in reference.items()}


# --------------------------------------------------------------------------- scoring


def compute(records: dict[str, AlignRecord], reference: dict[str, AlignRecord], fit: str,
            check: bool = True) -> Result:
    """Score checked records against the reference (pairs by img_path, in sorted order).

    ``check=False`` skips the coverage check when the caller has already made it.
    """
    problems = check_coverage(records, expected_of(reference), "reference") if check else []
    if any(p.severity == "error" for p in problems):
        raise SubmissionError(problems)
    paths = sorted(reference)
    gt = np.fromiter((reference[p].total for p in paths), dtype=np.float64, count=len(paths))
    pred = np.fromiter((records[p].total for p in paths), dtype=np.float64, count=len(paths))
    gt_el: list[float] = []
    pred_el: list[float] = []
    counts: list[int] = []
    for p in paths:
        ref_el, sub_el = reference[p].elements, records[p].elements
        counts.append(len(ref_el))
        gt_el.extend(ref_el.values())
        pred_el.extend([sub_el[key] for key in ref_el])
    per_image = np.array(counts, dtype=np.int64)
    gt_arr, pred_arr = np.asarray(gt_el, dtype=np.float64), np.asarray(pred_el, dtype=np.float64)
    notes = [str(p) for p in problems]
    srcc, n1 = metrics.srcc_with_notes(gt, pred)
    plcc, used, n2 = metrics.plcc_with_notes(gt, pred, metrics.resolve_fit(TRACK, fit))
    acc, n3 = metrics.element_accuracy_with_notes(gt_arr, pred_arr)
    correct = (gt_arr >= metrics.ELEMENT_THRESHOLD) == (pred_arr >= metrics.ELEMENT_THRESHOLD)
    image_of_element = np.repeat(np.arange(len(paths)), per_image)
    correct_per_image = np.bincount(image_of_element, weights=correct, minlength=len(paths)).astype(np.int64)
    return Result(
        track=TRACK,
        main_score=metrics.align_main(srcc, plcc, acc),
        srcc=srcc,
        plcc=plcc,
        plcc_fit=fit if used != "none" else "none",
        plcc_fit_used=used,
        n_images=len(paths),
        warnings=notes + n1 + n2 + metrics.sign_disagreement(srcc, plcc) + n3,
        components={"acc": acc},
        details={"img_path": paths, "gt_total": gt, "pred_total": pred, "elements_per_image": per_image,
                 "correct_per_image": correct_per_image, "gt_element": gt_arr, "pred_element": pred_arr},
    )
