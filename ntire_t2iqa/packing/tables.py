"""Tables a team writes its predictions into: CSV (read with the csv module), Parquet and DataFrames (pandas).

Every reader yields the same thing: the column names and ``(label, row)`` pairs, where the label
says where a row is in a message ("pred.csv, line 7", "DataFrame row 3"). pandas is imported
only for Parquet; a CSV never needs it.
"""

from __future__ import annotations

import csv
import io
import math
import numbers
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import MissingDependency, Problem, SubmissionError, error
from ..safetext import quote

#: Largest table file read (a CSV or Parquet file of predictions is far smaller).
MAX_TABLE_BYTES = 1 << 30
PARQUET_FIX = ("install pyarrow (pip install pyarrow), which pandas reads Parquet with; or write the table as CSV "
               "(`df.to_csv('pred.csv', index=False)`).")

Rows = list[tuple[str, dict[str, Any]]]


class Table:
    """A table's column names and its rows, each with the label that locates it in messages."""

    def __init__(self, name: str, columns: list[str], rows: Rows):
        self.name, self.columns, self.rows = name, columns, rows

    def require(self, *needed: str, fix: str) -> None:
        """Raise a :class:`SubmissionError` naming the missing columns (and the ones found)."""
        missing = [c for c in needed if c not in self.columns]
        if missing:
            found = ", ".join(quote(c) for c in self.columns[:12]) or "none"
            raise SubmissionError([error(self.name, f"has no column {', '.join(repr(c) for c in missing)} "
                                         f"(columns found: {found}).", fix)])


def read_table(path: str | Path) -> Table:
    """A CSV file (``.csv``, ``.tsv`` tab-separated) or a Parquet file (``.parquet``, ``.pq``) as a :class:`Table`."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix in (".parquet", ".pq"):
        return dataframe_table(_read_parquet(path), path.name)
    try:
        size = path.stat().st_size
        if size > MAX_TABLE_BYTES:
            raise SubmissionError([error(path.name, f"is {size:,} bytes; tables over {MAX_TABLE_BYTES:,} bytes are "
                                         "not read.", "Split or shrink the file.")])
        data = path.read_bytes()
    except OSError as exc:
        raise SubmissionError([error(path.name, f"cannot be read ({exc.strerror or exc}).",
                                     "Check the path and its permissions.")]) from None
    return csv_table(data, path.name, delimiter="\t" if suffix == ".tsv" else ",")


def csv_table(data: bytes, name: str, delimiter: str = ",") -> Table:
    """Parse CSV bytes (UTF-8, with or without the BOM Excel writes); the first line names the columns."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise SubmissionError([error(name, "is UTF-16 text (what Windows calls \"Unicode\").",
                                     "Save it as CSV UTF-8 (Excel: 'CSV UTF-8'; pandas: `to_csv(...)`).")])
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise SubmissionError([error(name, f"is not UTF-8 text (byte {exc.start}).",
                                     "Save it as CSV UTF-8 (Excel: 'CSV UTF-8'; pandas: `to_csv(...)`).")]) from None
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        header = next(reader, None)
        if header is None:
            raise SubmissionError([error(name, "is empty.", "Write a header line, then one line per row.")])
        columns = [c.strip() for c in header]
        rows: Rows = []
        for cells in reader:
            if not any(c.strip() for c in cells):
                continue  # blank line
            label = f"{name}, line {reader.line_num}"
            if len(cells) != len(columns):
                raise SubmissionError([error(label, f"has {len(cells)} cells; the header has {len(columns)}.",
                                             "Quote cells that hold commas (a CSV writer does), one cell per column.")])
            rows.append((label, dict(zip(columns, cells))))
    except csv.Error as exc:
        raise SubmissionError([error(f"{name}, line {reader.line_num}", f"is not valid CSV ({exc}).",
                                     "Write it with a CSV writer (pandas `to_csv`, Python's csv module).")]) from None
    return Table(name, columns, rows)


def _read_parquet(path: Path) -> Any:
    try:
        import pandas as pd
    except ImportError as exc:
        raise MissingDependency("pandas", f"Reading Parquet ({path.name})", f"{type(exc).__name__}: {exc}",
                                "install pandas and pyarrow (pip install pandas pyarrow), or write the table as "
                                "CSV.") from None
    try:
        return pd.read_parquet(path)
    except ImportError as exc:  # pandas has no Parquet engine: pyarrow (or fastparquet) is missing
        raise MissingDependency("pyarrow", f"Reading Parquet ({path.name})", " ".join(str(exc).split())[:200],
                                PARQUET_FIX) from None
    except Exception as exc:  # noqa: BLE001 - a damaged file fails inside the engine in its own ways
        raise SubmissionError([error(path.name, f"cannot be read as Parquet ({type(exc).__name__}: "
                                     f"{' '.join(str(exc).split())[:200]}).",
                                     "Write it again with `df.to_parquet(path)`, or as CSV.")]) from None


def dataframe_table(df: Any, name: str = "DataFrame") -> Table:
    """A pandas DataFrame as a :class:`Table`; rows are labelled by position ("DataFrame row 3")."""
    columns = [str(c) for c in df.columns]
    if len(set(columns)) != len(columns):
        raise SubmissionError([error(name, "has repeated column names.", "Give each column one name.")])
    records = df.to_dict("records")
    rows = [(f"{name}, row {i}", {str(k): v for k, v in rec.items()}) for i, rec in enumerate(records)]
    return Table(name, columns, rows)


def is_blank(value: Any) -> bool:
    """True for an empty cell: ``None``, NaN, or a string of spaces."""
    if value is None:
        return True
    if isinstance(value, str):
        return not value.strip()
    if isinstance(value, float):
        return math.isnan(value)
    return isinstance(value, np.floating) and bool(np.isnan(value))


def number(value: Any, label: str, column: str, kind: str) -> tuple[float | None, Problem | None]:
    """A cell as a finite float, or ``(None, problem)`` saying what is wrong with it."""
    if is_blank(value):
        return None, error(label, f"{column!r} is empty.", f"Write a number in every {column!r} cell.", kind)
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (str, numbers.Real, np.integer, np.floating)):
        return None, error(label, f"{column!r} is not a number.", "Write a plain number, e.g. 0.87.", kind)
    try:
        result = float(value.strip() if isinstance(value, str) else value)
    except (ValueError, OverflowError):
        return None, error(label, f"{column!r} is {quote(str(value))}, not a number.",
                           "Write a plain number, e.g. 0.87.", kind)
    if not math.isfinite(result):
        return None, error(label, f"{column!r} is {value!s:.20}, not a finite number.",
                           "Replace NaN/Infinity with a finite number (check for failed predictions).", kind)
    return result, None


def text(value: Any) -> str | None:
    """A cell as text, or ``None`` when it is empty or not text."""
    if isinstance(value, str) and value:
        return value
    return None
