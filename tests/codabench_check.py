"""The checks Codabench makes on an uploaded competition bundle, restated in this project's own code.

Codabench reads ``competition.yaml`` with a safe YAML loader, then its V2 unpacker reads the
pages, tasks, solutions, terms, logo, phases and leaderboards in that order, and its
serializers and database columns refuse what does not fit (title lengths, choices, unique
column indexes and keys, a logo that is a real image). :func:`check_bundle` returns every
such problem found in an unpacked bundle; an empty list means the upload would pass.
"""

from __future__ import annotations

import datetime as dt
import io
from pathlib import Path
from typing import Any

import yaml

#: Database column limits (characters).
LIMITS = {"competition title": 256, "docker image": 128, "page title": 255, "task name": 256, "phase name": 256,
          "leaderboard title": 64, "leaderboard key": 36, "column title": 36, "column key": 36}
SUBMISSION_RULES = {"Add", "Add_And_Delete", "Add_And_Delete_Multiple", "Force_Last", "Force_Latest_Multiple",
                    "Force_Best"}
SORTING = {"desc", "asc"}
COMPUTATIONS = {"avg", "sum", "min", "max"}
LOGO_FORMATS = {"PNG", "JPEG", "GIF", "WEBP"}


def _date(value: Any) -> dt.datetime | None:
    if value in (None, ""):
        return None
    if isinstance(value, dt.datetime):
        return value.replace(tzinfo=None)
    if isinstance(value, dt.date):
        return dt.datetime(value.year, value.month, value.day)
    return dt.datetime.fromisoformat(str(value).strip())


class _Checker:
    def __init__(self, root: Path):
        self.root = root
        self.problems: list[str] = []

    def fail(self, text: str) -> None:
        self.problems.append(text)

    def file(self, what: str, name: Any, non_empty: bool = True) -> Path | None:
        if not isinstance(name, str) or not name:
            self.fail(f"{what}: no file named")
            return None
        path = (self.root / name).resolve()
        if self.root.resolve() not in (path, *path.parents):
            self.fail(f"{what}: {name!r} points outside the bundle")
            return None
        if not path.exists():
            self.fail(f"{what}: {name!r} is not in the bundle")
            return None
        if non_empty and path.is_file() and not path.read_bytes().strip():
            self.fail(f"{what}: {name!r} is empty")
        return path

    def length(self, what: str, value: Any, required: bool = True) -> None:
        if value is None and not required:
            return
        if not isinstance(value, str) or not value.strip():
            self.fail(f"{what}: missing or not text ({value!r})")
        elif len(value) > LIMITS[what]:
            self.fail(f"{what}: {len(value)} characters, the limit is {LIMITS[what]}")

    def count(self, what: str, value: Any) -> None:
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
            self.fail(f"{what}: {value!r} is not a whole number >= 0")

    def competition(self, doc: dict[str, Any]) -> None:
        if str(doc.get("version", "1")) != "2":
            self.fail(f"version: {doc.get('version')!r}, the V2 unpacker needs 2")
        self.length("competition title", doc.get("title"))
        self.length("docker image", doc.get("docker_image"), required=False)
        for flag in ("registration_auto_approve", "enable_detailed_results", "make_programs_available",
                     "make_input_data_available"):
            if flag in doc and not isinstance(doc[flag], bool):
                self.fail(f"{flag}: {doc[flag]!r} is not true/false")
        if "terms" not in doc:
            self.fail("terms: missing (A file containing the terms ... has not been supplied)")
        else:
            self.file("terms", doc["terms"])
        if "image" not in doc:
            self.fail("image: missing (An image for this competition could not be found in the yaml)")
        else:
            self.logo(doc["image"])

    def logo(self, name: Any) -> None:
        from PIL import Image

        path = self.file("image", name)
        if path is None:
            return
        try:
            with Image.open(io.BytesIO(path.read_bytes())) as image:
                kind = image.format
                image.verify()
        except Exception as exc:  # noqa: BLE001 - any failure means the platform cannot read it either
            self.fail(f"image: {name!r} is not a readable image ({type(exc).__name__})")
            return
        if kind not in LOGO_FORMATS:
            self.fail(f"image: {name!r} is {kind}, not one of {sorted(LOGO_FORMATS)}")

    def pages(self, pages: Any) -> None:
        if not isinstance(pages, list):
            self.fail("pages: missing or not a list (the unpacker reads every page)")
            return
        for i, page in enumerate(pages):
            self.length("page title", page.get("title"))
            self.file(f"pages[{i}]", page.get("file"))

    def tasks(self, tasks: Any) -> set[int]:
        if not isinstance(tasks, list) or not tasks:
            self.fail("tasks: none listed")
            return set()
        indexes: set[int] = set()
        for task in tasks:
            index = task.get("index")
            if index is None:
                self.fail(f"task {task.get('name')!r}: no index")
            elif index in indexes:
                self.fail(f"tasks: duplicate index {index}")
            indexes.add(index)
            if "key" in task:
                continue
            self.length("task name", task.get("name"))
            if "scoring_program" not in task:
                self.fail(f"task {index}: no scoring program")
            else:
                program = self.file(f"task {index} scoring_program", task["scoring_program"], non_empty=False)
                if program is not None and program.is_dir():
                    meta = program / "metadata.yaml"
                    if not meta.exists() or not (yaml.safe_load(meta.read_text()) or {}).get("command"):
                        self.fail(f"task {index}: scoring program has no metadata.yaml with a command")
            for kind in ("reference_data", "input_data", "ingestion_program"):
                if kind in task:
                    self.file(f"task {index} {kind}", task[kind], non_empty=False)
        return indexes

    def solutions(self, solutions: Any, tasks: set[int]) -> None:
        seen: set[int] = set()
        for solution in solutions or []:
            index = solution.get("index")
            if index is None or index in seen:
                self.fail(f"solution {solution.get('name')!r}: no or duplicate index")
            seen.add(index)
            if not set(solution.get("tasks") or [None]) <= tasks:
                self.fail(f"solution {index}: tasks {solution.get('tasks')!r} are not all defined")
            if "key" not in solution:
                self.file(f"solution {index} path", solution.get("path"), non_empty=False)

    def phases(self, phases: Any, tasks: set[int]) -> None:
        if not isinstance(phases, list) or not phases:
            self.fail("phases: none found")
            return
        ordered = sorted(phases, key=lambda p: p.get("index", 0))
        previous: dict[str, Any] | None = None
        for i, phase in enumerate(ordered):
            name = phase.get("name")
            self.length("phase name", name)
            if not phase.get("tasks"):
                self.fail(f"phase {name!r}: no tasks")
            elif not set(phase["tasks"]) <= tasks:
                self.fail(f"phase {name!r}: tasks {phase['tasks']!r} are not all defined")
            for key in ("max_submissions_per_day", "max_submissions", "execution_time_limit"):
                self.count(f"phase {name!r} {key}", phase.get(key))
            if i == 0 and phase.get("auto_migrate_to_this_phase"):
                self.fail("the first phase cannot auto-migrate")
            try:
                start, end = _date(phase.get("start")), _date(phase.get("end"))
            except ValueError as exc:
                self.fail(f"phase {name!r}: a date cannot be read ({exc})")
                continue
            if start is None:
                self.fail(f"phase {name!r}: no start")
                continue
            if end is not None and end <= start:
                self.fail(f"phase {name!r}: ends before it starts")
            if previous is not None:
                if previous["end"] is None:
                    self.fail(f"phase {previous['name']!r} must have an end because a phase follows it")
                elif start < previous["end"]:
                    self.fail(f"phase {name!r} starts before phase {previous['name']!r} has ended")
                elif start == previous["end"]:
                    self.fail(f"phase {name!r} starts exactly when phase {previous['name']!r} ends")
            previous = {"name": name, "end": end}

    def leaderboards(self, boards: Any) -> None:
        if not isinstance(boards, list) or not boards:
            self.fail("leaderboards: none found")
            return
        for board in boards:
            self.length("leaderboard title", board.get("title"))
            self.length("leaderboard key", board.get("key"))
            rule = board.get("submission_rule", "Add")
            if rule not in SUBMISSION_RULES:
                self.fail(f"leaderboard submission_rule {rule!r} is not one of {sorted(SUBMISSION_RULES)}")
            columns = board.get("columns") or []
            if not columns:
                self.fail("leaderboards require at least 1 column")
            indexes = [c.get("index") for c in columns]
            keys = [c.get("key") for c in columns]
            if len(set(indexes)) != len(columns):
                self.fail("columns must have unique indexes")
            if len(set(keys)) != len(columns):
                self.fail("columns must have unique keys")
            if board.get("primary_index", 0) not in indexes:
                self.fail(f"primary_index {board.get('primary_index', 0)} is not a column index")
            for column in columns:
                self.length("column title", column.get("title"))
                self.length("column key", column.get("key"))
                self.count(f"column {column.get('key')!r} index", column.get("index"))
                if column.get("sorting", "desc") not in SORTING:
                    self.fail(f"column {column.get('key')!r}: sorting {column.get('sorting')!r}")
                if not isinstance(column.get("precision", 2), int):
                    self.fail(f"column {column.get('key')!r}: precision is not a whole number")
                if "computation" in column and (column["computation"] not in COMPUTATIONS
                                                or not column.get("computation_indexes")):
                    self.fail(f"column {column.get('key')!r}: a computation needs a function and indexes")


def check_bundle(root: Path) -> list[str]:
    """Every problem Codabench's unpacker or serializers would raise for the bundle unpacked at ``root``."""
    checker = _Checker(root)
    yaml_path = root / "competition.yaml"
    if not yaml_path.exists():
        return ["competition.yaml is missing from the root of the zip"]
    doc = yaml.safe_load(yaml_path.read_text(encoding="utf-8"))
    if not isinstance(doc, dict):
        return ["competition.yaml is not a mapping"]
    checker.competition(doc)
    checker.pages(doc.get("pages"))
    tasks = checker.tasks(doc.get("tasks"))
    checker.solutions(doc.get("solutions"), tasks)
    checker.phases(doc.get("phases"), tasks)
    checker.leaderboards(doc.get("leaderboards"))
    return checker.problems
