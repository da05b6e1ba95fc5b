"""Track 1 predictions for ``pack``: records from a JSON list, a CSV or Parquet table, or a DataFrame.

Table layouts (extra columns, e.g. ``prompt``, are ignored):

* one row per image with ``img_path``, ``total_score`` and ``element_score``, a JSON object
  (``{"cat (animal)": 0.9}``) per cell;
* one row per image with ``img_path`` and ``total_score``, the element scores in a second
  long table (``img_path, element, score``: one row per element), passed as ``elements``;
* one long table with ``img_path``, ``total_score``, ``element`` and ``score``: one row per
  element, the image's total repeated on each (a row with an empty element stands for an
  image without elements).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from ..archive import DuplicateKeys, load_json_strict
from ..errors import Problem, ProblemLog, SubmissionError, error
from ..safetext import quote
from ..tracks.common import is_number
from .tables import Table, dataframe_table, is_blank, number, read_table, text

_JSON_FIX = ('Write a JSON list of objects: [{"img_path": "MODEL/00001.png", "total_score": 3.2, '
             '"element_score": {"cat (animal)": 0.9}}, ...].')
_LAYOUTS = ("Give the table the columns img_path, total_score and element_score (a JSON object per cell), or "
            "img_path, total_score, element and score (one row per element), or pass the element scores as a "
            "second table with img_path, element and score (--elements).")
TABLE_SUFFIXES = (".csv", ".tsv", ".parquet", ".pq")


def records_from_path(path: str | Path, elements: str | Path | None = None) -> tuple[list[Any], list[Problem]]:
    """Records from a JSON file (a list, or an object keyed by img_path) or a CSV/TSV/Parquet table."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".json":
        if elements is not None:
            raise SubmissionError([error(path.name, "holds whole records; --elements is only for tables.",
                                         "Leave out --elements, or pass the predictions as a table.")])
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise SubmissionError([error(path.name, f"cannot be read ({exc.strerror or exc}).",
                                         "Check the path.")]) from None
        return records_from_memory(load_json_strict(data, path.name, _JSON_FIX)), []
    if suffix in TABLE_SUFFIXES:
        return records_from_table(read_table(path), read_table(elements) if elements is not None else None)
    raise SubmissionError([error(path.name, "is not a file pack reads for Track 1.",
                                 "Pass a JSON list of records (.json), a CSV (.csv, .tsv) or a Parquet file "
                                 "(.parquet).")])


def records_from_memory(obj: Any) -> list[Any]:
    """A list of records as it is; an object keyed by img_path (``{path: {"total_score", ...}}``) as a list."""
    if isinstance(obj, dict) and obj and all(isinstance(v, dict) for v in obj.values()):
        return [{"img_path": key, **value} for key, value in obj.items()]
    return obj


def records_from_dataframe(df: Any, elements: Any = None) -> tuple[list[Any], list[Problem]]:
    """Records from a DataFrame in one of the table layouts (``elements``: a second, long DataFrame)."""
    return records_from_table(dataframe_table(df), None if elements is None else dataframe_table(elements, "elements"))


def records_from_table(table: Table, elements: Table | None = None) -> tuple[list[Any], list[Problem]]:
    """Records from a table in one of the layouts above; every row problem is reported (bounded)."""
    log = ProblemLog()
    if {"element", "score"} <= set(table.columns) and "element_score" not in table.columns:
        table.require("img_path", "total_score", fix=_LAYOUTS)
        records = _long(table, log, with_total=True)
    else:
        table.require("img_path", "total_score", fix=_LAYOUTS)
        records = _wide(table, log, with_elements=elements is None)
        if elements is not None:
            elements.require("img_path", "element", "score", fix=_LAYOUTS)
            _attach(records, _long(elements, log, with_total=False), elements.name, log)
    if log.has_errors():
        raise SubmissionError(log.problems())
    if not records:
        raise SubmissionError([error(table.name, "holds no rows.", _LAYOUTS)])
    return list(records.values()), log.problems()


def _path(row: dict[str, Any], label: str, log: ProblemLog) -> str | None:
    path = text(row.get("img_path"))
    if path is None:
        log.add(error(label, "'img_path' is empty or not text.", 'Write the image path, e.g. "SDXL-Turbo/00805.png".',
                      "rows without img_path"))
    return path


def _wide(table: Table, log: ProblemLog, with_elements: bool) -> dict[str, dict[str, Any]]:
    if with_elements and "element_score" not in table.columns:
        raise SubmissionError([error(table.name, "has no element scores: no 'element_score' column, no 'element' "
                                     "and 'score' columns, and no --elements table.", _LAYOUTS)])
    records: dict[str, dict[str, Any]] = {}
    for label, row in table.rows:
        path = _path(row, label, log)
        total, problem = number(row.get("total_score"), label, "total_score", "bad total scores")
        if problem is not None:
            log.add(problem)
        elements = _element_cell(row.get("element_score"), label, log) if with_elements else {}
        if path is None or total is None or elements is None:
            continue
        if path in records:
            log.add(error(label, f"repeats img_path {quote(path)}.", "Give each image one row.", "repeated img_paths"))
            continue
        records[path] = {"img_path": path, "total_score": total, "element_score": elements}
    return records


def _element_cell(value: Any, label: str, log: ProblemLog) -> dict[str, Any] | None:
    """One ``element_score`` cell: a JSON object as text, a dict, or (Parquet map) a list of pairs."""
    fix = 'Write a JSON object per cell, e.g. {"cat (animal)": 0.9} ({} for an image without elements).'
    if isinstance(value, np.ndarray):
        value = value.tolist()
    if not isinstance(value, (dict, list, tuple)) and is_blank(value):
        return {}
    if isinstance(value, str):
        try:
            value = load_json_strict(value.encode("utf-8", "surrogatepass"), f"{label} 'element_score'", fix)
        except SubmissionError as exc:
            log.extend(exc.problems)
            return None
    elif isinstance(value, (list, tuple)) and all(isinstance(p, (list, tuple)) and len(p) == 2 for p in value):
        pairs = [tuple(p) for p in value]
        value = dict(pairs)
        if len(value) != len(pairs):
            log.add(error(label, "'element_score' repeats an element.", "Write each element once.",
                          "repeated element keys"))
            return None
    if not isinstance(value, dict):
        log.add(error(label, "'element_score' is not an object of element scores.", fix, "bad element_score cells"))
        return None
    if isinstance(value, DuplicateKeys):
        return value  # the validator names the repeated keys
    return {key: float(v) if is_number(v) else v for key, v in value.items()}


def _long(table: Table, log: ProblemLog, with_total: bool) -> dict[str, dict[str, Any]]:
    """Records from one row per element (``with_total``: the image's total_score on every row)."""
    records: dict[str, dict[str, Any]] = {}
    for label, row in table.rows:
        path = _path(row, label, log)
        total = None
        if with_total:
            total, problem = number(row.get("total_score"), label, "total_score", "bad total scores")
            if problem is not None:
                log.add(problem)
        if path is None or (with_total and total is None):
            continue
        rec = records.setdefault(path, {"img_path": path, "total_score": total, "element_score": {}})
        if with_total and rec["total_score"] != total:
            log.add(error(label, f"total_score {total!r} of {quote(path)} differs from {rec['total_score']!r} on an "
                          "earlier row.", "Write the image's one total_score on each of its rows.",
                          "conflicting total scores"))
            continue
        element = row.get("element")
        if with_total and is_blank(element) and is_blank(row.get("score")):
            continue  # an image without elements
        if not isinstance(element, str) or is_blank(element):
            log.add(error(label, "'element' is not text.", "Name the element, e.g. 'cat (animal)'.",
                          "rows without element"))
            continue
        value, problem = number(row.get("score"), label, "score", "bad element scores")
        if problem is not None:
            log.add(problem)
            continue
        if element in rec["element_score"]:
            log.add(error(label, f"repeats element {quote(element)} of {quote(path)}.", "Write each element once.",
                          "repeated elements"))
            continue
        rec["element_score"][element] = value
    return records


def _attach(records: dict[str, dict[str, Any]], elements: dict[str, dict[str, Any]], name: str,
            log: ProblemLog) -> None:
    """Put the long table's element scores into the image records."""
    for path, rec in elements.items():
        if path not in records:
            log.add(error(name, f"has element scores for img_path {quote(path)}, which the predictions table does "
                          "not have.", "Give every image a row in the predictions table, or fix the path.",
                          "element rows of unknown images"))
            continue
        records[path]["element_score"] = rec["element_score"]


def records_json(records: list[Any]) -> bytes:
    """output.json's bytes: compact JSON (ASCII, non-ASCII characters escaped), no BOM; numpy numbers as numbers."""
    return json.dumps(records, separators=(",", ":"), default=_plain).encode("ascii")


def _plain(value: Any) -> Any:
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    raise TypeError(f"{type(value).__name__} cannot be written as JSON")
