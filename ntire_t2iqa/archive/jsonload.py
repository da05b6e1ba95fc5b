"""Strict JSON loading: duplicate keys kept visible, non-finite numbers kept reportable."""

from __future__ import annotations

import json
import math
from typing import Any

from ..errors import SubmissionError, error
from .messages import _one_line


class _NonFinite(float):
    """A float parsed from NaN/Infinity (or an overflowing literal), kept so it can be reported."""


def load_json_strict(data: bytes, where: str, fix_syntax: str) -> Any:
    """Parse JSON bytes; duplicate object keys are kept as a :class:`DuplicateKeys` marker.

    NaN, Infinity and overflowing numbers parse to :class:`_NonFinite` so validators can
    report each one with its location instead of stopping at the first.
    """
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise SubmissionError([error(where, f"is not UTF-8 text (byte {exc.start}).",
                                     "Save the file as UTF-8 JSON, e.g. `json.dump(records, f)`.")]) from exc
    try:
        return json.loads(text, parse_constant=lambda c: _NonFinite(c), parse_int=_parse_int,
                          parse_float=_parse_float, object_pairs_hook=_pairs_hook)
    except json.JSONDecodeError as exc:
        raise SubmissionError([error(where, f"is not valid JSON: {exc.msg} at line {exc.lineno}, "
                                     f"column {exc.colno}.", fix_syntax)]) from None
    except RecursionError:
        raise SubmissionError([error(where, "is nested too deeply.", fix_syntax)]) from None
    except (ValueError, MemoryError) as exc:
        raise SubmissionError([error(where, f"cannot be parsed ({type(exc).__name__}: {_one_line(exc)}).",
                                     fix_syntax)]) from None


def _parse_float(text: str) -> float:
    value = float(text)
    return value if math.isfinite(value) else _NonFinite(value)


#: Digits beyond which an integer certainly overflows a float (and Python refuses to parse it).
_MAX_INT_DIGITS = 400


def _parse_int(text: str) -> Any:
    """An integer literal; one too large for a float is an overflowing number, like ``1e999``."""
    if len(text) <= 300:  # fast path: |value| < 1e300 always fits a float
        return int(text)
    if len(text.lstrip("-")) <= _MAX_INT_DIGITS:
        value = int(text)
        try:
            float(value)
            return value
        except OverflowError:
            pass
    return _NonFinite("-inf" if text.startswith("-") else "inf")


class DuplicateKeys(dict):
    """A JSON object in which some key appeared more than once; ``duplicates`` names them."""

    duplicates: list[str]


def _pairs_hook(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out = dict(pairs)
    if len(out) != len(pairs):
        seen: set[str] = set()
        dups = [k for k, _ in pairs if k in seen or seen.add(k)]  # type: ignore[func-returns-value]
        marked = DuplicateKeys(out)
        marked.duplicates = sorted(set(dups))
        return marked
    return out


def is_non_finite(value: Any) -> bool:
    """True for a JSON NaN/Infinity or a float that is not finite."""
    return isinstance(value, float) and not math.isfinite(value)
