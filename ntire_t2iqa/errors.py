"""Errors and problems: what went wrong, where, and how to fix it.

Two audiences never mix:

* :class:`SubmissionError` carries :class:`Problem` items that are safe to show a
  participant. They name files, records and keys of the *submission* and never
  contain a value taken from the hidden reference.
* :class:`ReferenceDataError` is for the organizer: the hidden reference (or the
  public inputs) could not be read. Its message may name reference files and keys.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

Severity = Literal["error", "warning"]


@dataclass(frozen=True)
class Problem:
    """One finding about a submission: severity, location, what is wrong, and the fix."""

    severity: Severity
    where: str
    what: str
    fix: str = ""

    def __str__(self) -> str:
        text = f"{self.where}: {self.what}"
        if self.fix:
            text += f" Fix: {self.fix}"
        return text

    def to_dict(self) -> dict[str, str]:
        """Plain-dict form for JSON output."""
        return {"severity": self.severity, "where": self.where, "what": self.what, "fix": self.fix}


def error(where: str, what: str, fix: str = "") -> Problem:
    """Build an error-level :class:`Problem`."""
    return Problem("error", where, what, fix)


def warning(where: str, what: str, fix: str = "") -> Problem:
    """Build a warning-level :class:`Problem`."""
    return Problem("warning", where, what, fix)


class ToolkitError(Exception):
    """Base class of every error the toolkit raises on purpose."""


class SubmissionError(ToolkitError):
    """The submission is invalid; ``problems`` lists every finding (errors and warnings)."""

    def __init__(self, problems: Iterable[Problem]):
        self.problems: list[Problem] = list(problems)
        errors = [p for p in self.problems if p.severity == "error"]
        head = str(errors[0]) if errors else "invalid submission"
        more = f" (and {len(errors) - 1} more errors)" if len(errors) > 1 else ""
        super().__init__(head + more)

    @property
    def errors(self) -> list[Problem]:
        """Only the error-level problems."""
        return [p for p in self.problems if p.severity == "error"]


class ReferenceDataError(ToolkitError):
    """The reference annotations or public inputs are unreadable (organizer-facing)."""

    def __init__(self, where: str, what: str, fix: str = ""):
        self.where, self.what, self.fix = where, what, fix
        text = f"reference error: {where}: {what}"
        if fix:
            text += f" Fix: {fix}"
        super().__init__(text)
