"""The problem catalogue: every problem the validators report, with an input that triggers it.

Each case feeds one input to one of the toolkit's readers or checkers and renders what comes back:
the problems (severity, location, what, fix and kind), the error raised (its type, location, what
and fix), or the records read. ``docs/problems.md`` is the rendered catalogue; a reviewer reads
it as the list of messages a participant or an organizer can see, and
``tests/test_problem_catalogue.py`` fails when any word of it changes.

    python tests/catalogue.py           # show the differences from docs/problems.md
    python tests/catalogue.py --write   # write docs/problems.md after a deliberate change
"""

from __future__ import annotations

import difflib
import importlib
import json
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "problems.md"
#: case modules, in the order of the document's sections
SECTIONS = ("catalogue_align", "catalogue_structure", "catalogue_common")
#: stands for the case's scratch folder in the document (the real one differs on every run)
TMP = "<tmp>"


@dataclass(frozen=True)
class Case:
    """One input and the call that reads or checks it; ``call(tmp)`` gets a fresh scratch folder."""

    title: str
    shown: str
    call: Callable[[Path], Any]


def read_from_zip(tmp: Path, track: Any, member: str, data: bytes) -> Any:
    """``member`` holding ``data`` (and a readme) in a zip, read by ``track.read_predictions`` as the
    validator reads it (``track``: the module of ``ntire_t2iqa.tracks``)."""
    import zipfile

    from ntire_t2iqa.archive import Limits, open_submission

    path = tmp / "sub.zip"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr(member, data)
        z.writestr("readme.txt", "runtime per image [s] : 1\n")
    source, problems = open_submission(path, track.REQUIRED, Limits())
    assert source is not None and not problems, problems
    with source:
        return track.read_predictions(source)


def render_problem(p: Any) -> str:
    text = f"- **{p.severity}** at `{p.where}`: {p.what}"
    if p.fix:
        text += f"  \n  Fix: {p.fix}"
    if p.kind or p.count != 1:
        text += f"  \n  (kind: {p.kind or '-'}; count {p.count})"
    return text


def render_value(value: Any) -> list[str]:
    """What a call returned: problems, records, or a plain value."""
    from ntire_t2iqa.errors import Problem

    if isinstance(value, tuple) and len(value) == 2 and isinstance(value[1], list):
        records, problems = value
        lines = [render_value_records(records)]
        return lines + ([render_problem(p) for p in problems] or ["- no problem"])
    if isinstance(value, list) and all(isinstance(p, Problem) for p in value):
        return [render_problem(p) for p in value] or ["- no problem"]
    return [f"- returns {plain_text(value)}"]


def render_value_records(records: Any) -> str:
    """Records (img_path -> dataclass) as one line: ``records: <JSON>``, or that none are usable."""
    if records is None:
        return "records: none (unusable)"
    return "records: " + plain_text(records)


def plain_text(value: Any) -> str:
    """Any value (dataclasses, dicts, lists, arrays, floats shown with repr) as one line of JSON."""
    import dataclasses

    import numpy as np

    def plain(v: Any) -> Any:
        if dataclasses.is_dataclass(v) and not isinstance(v, type):
            return {f.name: plain(getattr(v, f.name)) for f in dataclasses.fields(v)}
        if isinstance(v, dict):
            return {str(k): plain(x) for k, x in v.items()}
        if isinstance(v, (list, tuple)) or type(v).__name__ == "dict_keys":
            return [plain(x) for x in v]
        if isinstance(v, np.ndarray):
            return {"array": str(v.dtype), "shape": list(v.shape), "sum": plain(v.sum().item())}
        if isinstance(v, float):
            return repr(v)
        if isinstance(v, Path):
            return str(v)
        return v

    return json.dumps(plain(value), sort_keys=False, ensure_ascii=True)


def run_case(case: Case) -> list[str]:
    """The case's section of the document."""
    from ntire_t2iqa.errors import MissingDependency, OrganizerError, SubmissionError

    with tempfile.TemporaryDirectory() as tmp:
        try:
            value = case.call(Path(tmp))
        except SubmissionError as exc:
            body = [f"- raises `SubmissionError`: {exc}"] + [render_problem(p) for p in exc.problems]
        except (OrganizerError, MissingDependency, ValueError) as exc:  # ValueError: a caller's mistake
            body = [f"- raises `{type(exc).__name__}`: {exc}"]
        else:
            body = render_value(value)
        text = "\n".join(body).replace(tmp, TMP)
    return [f"### {case.title}", "", f"Input: {case.shown}", "", text, ""]


def cases() -> Iterator[tuple[str, str, list[Case]]]:
    """(module, section title, cases) for each section."""
    here = str(Path(__file__).resolve().parent)
    if here not in sys.path:
        sys.path.insert(0, here)
    for name in SECTIONS:
        module = importlib.import_module(name)
        yield name, module.TITLE, module.CASES


def render() -> str:
    lines = ["# Problems the toolkit reports", "",
             "Every problem the validators and readers report, each with an input that triggers it and the",
             "whole of what comes back: severity, location, what is wrong, the fix, and the kind under which",
             "a long report counts the rest. A case that reads records shows the records read. Generated by",
             "`python tests/catalogue.py --write` from the cases in `tests/catalogue_*.py`;",
             "`tests/test_problem_catalogue.py` fails when a word of it changes.", ""]
    for _, title, section in cases():
        lines += [f"## {title}", ""]
        for case in section:
            lines += run_case(case)
    return "\n".join(lines).rstrip() + "\n"


def differences(new: str) -> str:
    old = DOC.read_text(encoding="utf-8") if DOC.exists() else ""
    return "".join(difflib.unified_diff(old.splitlines(True), new.splitlines(True), "docs/problems.md", "now"))


def main(argv: list[str]) -> int:
    new = render()
    if "--write" in argv:
        DOC.write_text(new, encoding="utf-8")
        print(f"wrote {DOC.relative_to(ROOT)} ({new.count('### ')} cases)")
        return 0
    diff = differences(new)
    print(diff or "docs/problems.md is up to date")
    return 1 if diff else 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    sys.exit(main(sys.argv[1:]))
