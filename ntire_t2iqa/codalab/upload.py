"""Problems with a submission as the platform holds it, said in the words of the upload.

Codabench and CodaLab unzip the participant's upload into ``INPUT/res``. The archive checks
see a folder named ``res``; a participant only knows the zip they uploaded. This module
recognises the usual mistake (a zip that holds a folder, so the files land in
``res/<folder>/``) before scoring and phrases every other problem about "your zip".

Part of the bundled scoring program: Python 3.9 and the standard library only.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

from ..errors import Problem, error
from ..safetext import quote

#: How a participant's upload is named in messages.
UPLOAD = "your zip"
_MACOS = "__MACOSX"
_PLAIN_NAME = re.compile(r"[A-Za-z0-9._-]{1,60}")


def _required(track: str | None, outputs: dict[str, str]) -> tuple[str, ...]:
    names = sorted(set(outputs.values())) if track is None else [outputs[track]]
    return (*names, "readme.txt")


def nested_folder(res: Path, track: str | None, outputs: dict[str, str]) -> list[Problem]:
    """One problem when the upload holds a folder with the submission inside instead of the files themselves.

    ``res`` then has no prediction file at its root, and a folder (besides macOS' ``__MACOSX``)
    that holds one, one or two levels down. Returns ``[]`` in every other case, which the
    archive checks report as usual.
    """
    wanted = set(outputs.values()) if track is None else {outputs[track]}
    try:
        if any((res / name).is_file() for name in wanted):
            return []
        folders = sorted(p for p in res.iterdir() if p.is_dir() and not p.is_symlink() and p.name != _MACOS)
    except OSError:
        return []
    for folder in folders:
        found = _find_outputs(folder, wanted)
        if found is not None:
            return [_folder_problem(res, folder, found, track, outputs)]
    return []


def _find_outputs(folder: Path, wanted: set[str]) -> Path | None:
    """The folder (``folder`` itself or one of its subfolders) that holds a prediction file, if any."""
    try:
        if any((folder / name).is_file() for name in wanted):
            return folder
        for sub in sorted(folder.iterdir()):
            if sub.is_dir() and not sub.is_symlink() and any((sub / name).is_file() for name in wanted):
                return sub
    except OSError:
        return None
    return None


def _folder_problem(res: Path, top: Path, found: Path, track: str | None, outputs: dict[str, str]) -> Problem:
    inside = found.relative_to(res).as_posix()
    files = " and ".join(_required(track, outputs)) if track else "the prediction file and readme.txt"
    shown = inside if all(_PLAIN_NAME.fullmatch(part) for part in inside.split("/")) else None
    folder = f"`{shown}/`" if shown else quote(inside)
    two = " ".join(_required(track, outputs)) if track else "output.json readme.txt"
    go = f"cd {shown}" if shown else "cd FOLDER"
    extra = " Leave out macOS' __MACOSX/ folder as well." if (res / _MACOS).exists() else ""
    return error(UPLOAD, f"holds a folder {folder} with the files inside; the scoring program needs {files} "
                 "at the root of the zip, not in a folder.",
                 f"Zip the files themselves, not their folder: `{go} && zip ../submission.zip {two}`, then upload "
                 f"that zip.{extra}")


def in_upload_words(problem: Problem, res_name: str = "res") -> Problem:
    """``problem`` with the platform's folder name replaced by "your zip", and folder advice by zip advice."""
    where = problem.where
    if where == res_name:
        where = UPLOAD
    elif where.startswith(res_name + "/"):
        where = f"{UPLOAD}: member {where[len(res_name) + 1:]}"
    elif where.startswith(res_name + ": "):
        where = f"{UPLOAD}: {where[len(res_name) + 2:]}"
    fix = problem.fix.replace("in the submission folder", "at the root of your zip") \
        .replace("in the folder.", "at the root of your zip.")
    what = problem.what.replace("is a folder; folders are not allowed.",
                                "is a folder; the zip must hold only files, at its root.")
    if where == problem.where and fix == problem.fix and what == problem.what:
        return problem
    return dataclasses.replace(problem, where=where, what=what, fix=fix)
