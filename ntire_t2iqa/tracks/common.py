"""What both tracks share: the readme.txt format, the result record, and value checks."""

from __future__ import annotations

import json
import numbers
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .. import safetext
from ..errors import OrganizerError, Problem, ReferenceDataError, bounded, count, error, warning
from ..safetext import quote

README = "readme.txt"
#: The five readme.txt keys, in order, as the challenge's template writes them.
README_KEYS = (
    "runtime per image [s]",
    "CPU[1] / GPU[0]",
    "Extra Data [1] / No Extra Data [0]",
    "LLM[1] / Non-LLM[0]",
    "Other description",
)
README_TEMPLATE = (
    "runtime per image [s] : 10.43\n"
    "CPU[1] / GPU[0] : 1\n"
    "Extra Data [1] / No Extra Data [0] : 1\n"
    "LLM[1] / Non-LLM[0] : 1\n"
    "Other description : Solution based on ...\n"
)
_README_FIX = "Write the five lines of the template, e.g.\n" + README_TEMPLATE.rstrip()


def _norm_key(key: str) -> str:
    """A key without case or any whitespace (``CPU[1]/GPU[0]`` and a tab for a space match the template)."""
    return "".join(key.lower().split())


def check_readme(data: bytes) -> tuple[dict[str, str], list[Problem]]:
    """Parse readme.txt; return ``{key: value}`` for the five lines and the problems found."""
    problems: list[Problem] = []
    if _is_utf16(data):
        return {}, [error(README, "is UTF-16 text (what Windows Notepad calls \"Unicode\"); the official scoring "
                          "program reads UTF-8 and fails on it.",
                          "Save it as UTF-8: in Notepad, File > Save As > Encoding: UTF-8; in Python, "
                          "`open('readme.txt', 'w', encoding='utf-8')`; or let `ntire-t2iqa pack` write it.")]
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return {}, [error(README, "is not UTF-8 text.", "Save readme.txt as plain UTF-8 text.")]
    # (line number in the file, text): blank lines are skipped, and a location names the file's own line
    numbered = [(n, ln.strip()) for n, ln in enumerate(text.splitlines(), 1) if ln.strip()]
    if not numbered:
        return {}, [error(README, "is empty; it must hold the five lines of the template.", _README_FIX)]
    lines = [ln for _, ln in numbered]
    last = numbered[-1][0]
    values: dict[str, str] = {}
    for i, key in enumerate(README_KEYS):
        if i >= len(lines):  # a missing line belongs after the file's last one
            problems.append(error(f"{README}, line {last + i - len(lines) + 1}",
                                  f"is missing; expected `{key} : VALUE`.", _README_FIX))
            continue
        where = f"{README}, line {numbered[i][0]}"
        line = lines[i]
        if ":" not in line:
            problems.append(error(where, f"has no `:`; expected `{key} : VALUE`.", _README_FIX))
            continue
        got_key, value = (part.strip() for part in line.split(":", 1))
        if _norm_key(got_key) != _norm_key(key):
            problems.append(warning(where, f"key {quote(got_key)} differs from the template's {key!r}.",
                                    f"Write `{key} : VALUE`."))
        if i == 4 and len(lines) > 5:
            value = " ".join([value, *lines[5:]])
        values[key] = value
        problems.extend(_check_readme_value(i, key, value, where))
    return values, problems


def _is_utf16(data: bytes) -> bool:
    """UTF-16 with a byte-order mark, or without one: ASCII text with a zero byte beside every character."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return True
    head = data[:256]
    if len(head) < 4 or len(head) % 2:
        return False
    even, odd = head[0::2], head[1::2]
    return (even.count(0) == len(even)) != (odd.count(0) == len(odd))


def _check_readme_value(i: int, key: str, value: str, where: str) -> list[Problem]:
    if i == 0:
        # float() also takes '١٢', '1_0', full-width digits, '1e3' and 'inf'; scores.txt gets only [0-9.]
        if safetext.ascii_decimal(value) is None:
            return [error(where, f"runtime {safetext.quote(value)} is not a plain decimal number of seconds.",
                          f"Write digits 0-9 and a dot, e.g. 0.52: `{key} : 0.52`.")]
    elif i in (1, 2, 3):
        if value not in ("0", "1"):
            return [error(where, f"value {quote(value)} must be 0 or 1.", f"Write `{key} : 1` or `{key} : 0`.")]
    elif not value:
        return [warning(where, "the description is empty.", "Describe the method in a few words.")]
    return []


def read_json_file(path: Path, fix: str, error_type: type[OrganizerError] = ReferenceDataError) -> Any:
    """An organizer's JSON file (UTF-8, a BOM allowed), or ``error_type`` naming the file, the cause and ``fix``."""
    try:
        return json.loads(path.read_text(encoding="utf-8-sig"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise error_type(str(path), f"cannot be read as JSON ({exc}).", fix) from exc


def is_number(value: Any) -> bool:
    """True for an int, float or numpy real scalar (not a bool)."""
    if isinstance(value, (bool, np.bool_)):
        return False
    return isinstance(value, (numbers.Real, np.integer, np.floating))


def describe(value: Any) -> str:
    """A short type description for messages (never the value itself)."""
    if value is None:
        return "null"
    if isinstance(value, (bool, np.bool_)):
        return "a boolean"
    if isinstance(value, str):
        return "a string" if value else "an empty string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, tuple):
        return "a tuple"
    if isinstance(value, (int, np.integer)):
        return "an integer"
    if isinstance(value, (float, np.floating)):
        return "a number"
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, np.ndarray):
        return f"an array of shape {value.shape}"
    return type(value).__name__


def summarize(items: list[str], limit: int = 5) -> str:
    """``'a', 'b', 'c' (+N more)`` for messages that name many items (each quoted and clipped)."""
    shown = ", ".join(quote(x) for x in items[:limit])
    return shown + (f" (+{len(items) - limit:,} more)" if len(items) > limit else "")


@dataclass
class Result:
    """The outcome of scoring one submission.

    ``to_dict`` gives the JSON contract: ``track, main_score, srcc, plcc, plcc_fit,
    plcc_fit_used, n_images, warnings`` plus ``acc`` (align) or ``f1, precision, recall, giou``
    (structure). ``plcc_fit`` is the fit asked for (``none`` when it failed); ``plcc_fit_used`` the
    fit and direction that computed PLCC (:func:`ntire_t2iqa.metrics.resolve_fit`: ``official`` is
    ``logistic4_gt_to_pred`` on Track 1 and ``logistic4`` on Track 2; ``none`` when the fit failed).
    ``details`` keeps per-image arrays for diagnostics and resampling (not serialised).
    """

    track: str
    main_score: float
    srcc: float
    plcc: float
    plcc_fit: str
    n_images: int
    warnings: list[str]
    components: dict[str, float]
    readme: dict[str, str] = field(default_factory=dict)
    plcc_fit_used: str = ""
    details: dict[str, Any] = field(default_factory=dict, repr=False)

    def to_dict(self) -> dict[str, Any]:
        """The JSON contract."""
        out: dict[str, Any] = {
            "track": self.track,
            "main_score": self.main_score,
            "srcc": self.srcc,
            "plcc": self.plcc,
            "plcc_fit": self.plcc_fit,
            "plcc_fit_used": self.plcc_fit_used,
            "n_images": self.n_images,
            "warnings": list(self.warnings),
        }
        out.update(self.components)
        return out

    def __getattr__(self, name: str) -> float:
        components = self.__dict__.get("components", {})
        if name in components:
            return components[name]
        raise AttributeError(name)


@dataclass
class Report:
    """The outcome of validating one submission: every problem, and whether it is valid."""

    track: str
    problems: list[Problem]
    n_images: int = 0
    #: False when no inputs were given, so missing or extra images and element keys were not looked for.
    coverage_checked: bool = True

    def __post_init__(self) -> None:
        self.problems = bounded(self.problems)

    @property
    def n_errors(self) -> int:
        """How many errors were found (a summary line stands for many)."""
        return count(self.problems, "error")

    @property
    def n_warnings(self) -> int:
        """How many warnings were found."""
        return count(self.problems, "warning")

    @property
    def valid(self) -> bool:
        """True when no problem is an error."""
        return not any(p.severity == "error" for p in self.problems)

    @property
    def errors(self) -> list[Problem]:
        """Only the error-level problems."""
        return [p for p in self.problems if p.severity == "error"]

    @property
    def warnings(self) -> list[Problem]:
        """Only the warning-level problems."""
        return [p for p in self.problems if p.severity == "warning"]

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {"track": self.track, "valid": self.valid, "n_images": self.n_images,
                "coverage_checked": self.coverage_checked,
                "errors": [p.to_dict() for p in self.errors], "warnings": [p.to_dict() for p in self.warnings]}

    def coverage_note(self) -> str:
        """One line for a report without inputs: what was not checked and how to check it ("" when it was)."""
        if self.coverage_checked:
            return ""
        return ("Coverage was not checked (no inputs given): missing or extra images"
                + (" and element keys" if self.track == "align" else "")
                + " are found only with --inputs (the public test inputs of the split).")
