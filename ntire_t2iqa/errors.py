"""Errors and problems: what went wrong, where, and how to fix it.

Two audiences never mix:

* :class:`SubmissionError` carries :class:`Problem` items that are safe to show a
  participant. They name files, records and keys of the *submission* and never
  contain a value taken from the hidden reference.
* :class:`ReferenceDataError` is for the organizer: the hidden reference (or the
  public inputs) could not be read. Its message may name reference files and keys.
  :class:`StoreError` is organizer-facing too: the SQLite results store cannot be used.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

Severity = Literal["error", "warning"]

#: A report lists at most this many problems of one kind, and this many in all; the rest are counted.
MAX_PER_KIND = 10
MAX_LISTED = 40
#: Longest ``where``, ``what`` or ``fix`` text a report carries (participant strings are quoted shorter).
MAX_FIELD = 1000


@dataclass(frozen=True)
class Problem:
    """One finding about a submission: severity, location, what is wrong, and the fix.

    ``kind`` names the finding in the plural ("non-numeric element scores"), so that a report
    that holds too many can say "and 1,097 more non-numeric element scores"; ``count`` is how
    many findings a problem stands for (more than 1 only for such a summary).
    """

    severity: Severity
    where: str
    what: str
    fix: str = ""
    kind: str = field(default="", compare=False)
    count: int = field(default=1, compare=False)

    def __str__(self) -> str:
        text = f"{self.where}: {self.what}"
        if self.fix:
            text += f" Fix: {self.fix}"
        return text

    def to_dict(self) -> dict[str, str]:
        """Plain-dict form for JSON output."""
        return {"severity": self.severity, "where": self.where, "what": self.what, "fix": self.fix}


def _field(text: str) -> str:
    return text if len(text) <= MAX_FIELD else f"{text[:MAX_FIELD]}… ({len(text):,} characters)"


def error(where: str, what: str, fix: str = "", kind: str = "") -> Problem:
    """Build an error-level :class:`Problem` (each text bounded to :data:`MAX_FIELD` characters)."""
    return Problem("error", _field(where), _field(what), _field(fix), kind)


def warning(where: str, what: str, fix: str = "", kind: str = "") -> Problem:
    """Build a warning-level :class:`Problem` (each text bounded to :data:`MAX_FIELD` characters)."""
    return Problem("warning", _field(where), _field(what), _field(fix), kind)


class ProblemLog:
    """Collects problems while a file is checked, keeping a report's size bounded.

    At most :data:`MAX_PER_KIND` problems of one kind and :data:`MAX_LISTED` in all are kept;
    the others are only counted, by severity and kind, and :meth:`problems` ends with one
    summary per kind ("and 1,097 more non-numeric element scores"). Memory stays constant
    however many problems a hostile file produces.
    """

    def __init__(self, per_kind: int = MAX_PER_KIND, listed: int = MAX_LISTED):
        self.per_kind, self.listed = per_kind, listed
        self._kept: list[Problem] = []
        self._per_kind: dict[tuple[str, str], int] = {}
        self._dropped: dict[tuple[str, str], list] = {}  # (severity, kind) -> [count, where, fix]

    def add(self, problem: Problem) -> None:
        """Keep or count one problem."""
        kind = problem.kind or ("errors" if problem.severity == "error" else "warnings")
        key = (problem.severity, kind)
        seen = self._per_kind.get(key, 0)
        if problem.count == 1 and seen < self.per_kind and len(self._kept) < self.listed:
            self._per_kind[key] = seen + 1
            self._kept.append(problem)
            return
        if key not in self._dropped:
            self._dropped[key] = [0, re.split(r", |: ", problem.where, maxsplit=1)[0], problem.fix]
        self._dropped[key][0] += problem.count

    def extend(self, problems: Iterable[Problem]) -> None:
        """Keep or count each problem."""
        for problem in problems:
            self.add(problem)

    def has_errors(self) -> bool:
        """True when any problem kept or counted is an error."""
        return any(p.severity == "error" for p in self._kept) or any(s == "error" for s, _ in self._dropped)

    def problems(self) -> list[Problem]:
        """The kept problems (errors first), then one summary per kind of those only counted."""
        kept = [p for p in self._kept if p.severity == "error"] + [p for p in self._kept if p.severity != "error"]
        severity: Severity
        for severity in ("error", "warning"):
            for (sev, kind), (count, where, fix) in self._dropped.items():
                if sev == severity:
                    kept.append(Problem(severity, where, f"and {count:,} more {kind}.", fix, kind, count))
        return kept


def bounded(problems: Iterable[Problem]) -> list[Problem]:
    """``problems`` as a report lists them: at most a few dozen, the rest counted by kind."""
    log = ProblemLog()
    log.extend(problems)
    return log.problems()


def count(problems: Iterable[Problem], severity: Severity) -> int:
    """How many findings of ``severity`` the problems stand for (summaries count as many)."""
    return sum(p.count for p in problems if p.severity == severity)


class ToolkitError(Exception):
    """Base class of every error the toolkit raises on purpose."""


class SubmissionError(ToolkitError):
    """The submission is invalid; ``problems`` lists every finding (errors and warnings)."""

    def __init__(self, problems: Iterable[Problem]):
        self.problems: list[Problem] = bounded(problems)
        errors = [p for p in self.problems if p.severity == "error"]
        head = str(errors[0]) if errors else "invalid submission"
        n = count(errors, "error")
        more = f" (and {n - 1:,} more errors)" if n > 1 else ""
        super().__init__(head + more)

    @property
    def errors(self) -> list[Problem]:
        """Only the error-level problems."""
        return [p for p in self.problems if p.severity == "error"]


class OrganizerError(ToolkitError):
    """An organizer-side input cannot be used: where, what and the fix (its message may name organizer files)."""

    label = "error"

    def __init__(self, where: str, what: str, fix: str = ""):
        self.where, self.what, self.fix = where, what, fix
        text = f"{self.label}: {where}: {what}"
        if fix:
            text += f" Fix: {fix}"
        super().__init__(text)


class ReferenceDataError(OrganizerError):
    """The reference annotations or public inputs are unreadable (organizer-facing)."""

    label = "reference error"


class StoreError(OrganizerError):
    """The results store cannot be used (organizer-facing): missing, not ours, damaged, read-only, full, locked."""

    label = "results store error"


class MissingDependency(ToolkitError):
    """A library the work needs cannot be imported here (organizer-facing): e.g. OpenCV for Track 2."""

    def __init__(self, module: str, needed_for: str, cause: str, fix: str):
        self.module, self.needed_for, self.cause, self.fix = module, needed_for, cause, fix
        super().__init__(f"{needed_for} needs {module}, which this Python cannot import ({cause}). Fix: {fix}")
