"""``codabench-bundle``: a competition bundle Codabench's V2 unpacker accepts as it is.

The zip holds ``competition.yaml`` (title, logo, terms, pages, tasks, solutions, phases and one
leaderboard whose column keys are the keys the scoring program writes), the Markdown pages, a
logo, the scoring program (``score.py`` and the toolkit's own sources, optionally with OpenCV
from a wheel), one reference folder per distinct reference (a development phase on the
validation set and a final phase on the test set use two), and per task a trivial solution an
organizer can run to check the set-up end to end.
"""

from __future__ import annotations

import io
import re
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import tracks
from ..tracks.common import README_KEYS
from . import pages
from .config import SUBMISSION_RULES, BundleConfig, ConfigError, check
from .keys import Column, all_columns, main_key

#: Python 3.9, numpy 1.22.4, scipy 1.8.1, no OpenCV: runs Track 1, and Track 2 with ``--opencv-wheel``.
DEFAULT_IMAGE = "codalab/codalab-legacy:py39"
#: The one codalab image whose Dockerfile installs OpenCV (opencv-python 4.10, Python 3.10).
OPENCV_IMAGE = "codalab/codalab-legacy:gpu310"
LEADERBOARD = ("Results", "results")
#: Image formats Codabench accepts as a logo, and the file extension each is stored under.
LOGO_FORMATS = {"PNG": "png", "JPEG": "jpg", "GIF": "gif", "WEBP": "webp"}
_WHEEL = re.compile(r"opencv_python_headless-[0-9][0-9.]*-[^-]+-[^-]+-[^-]*linux[^-]*x86_64[^-]*\.whl")
_SCORE_PY = '''"""Scoring program: the bundled ntire_t2iqa toolkit on $input/res and $input/ref."""
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
if os.path.isdir(os.path.join(HERE, "vendor")):  # OpenCV carried in the bundle (codabench-bundle --opencv-wheel)
    sys.path.insert(1, os.path.join(HERE, "vendor"))
from ntire_t2iqa.codalab.program import run  # noqa: E402

sys.exit(run(sys.argv[1], sys.argv[2], {track!r}, keys={keys!r}))
'''
_METADATA = "command: python3 $program/score.py $input $output\n"


def default_image(track: str, carries_opencv: bool) -> str:
    """:data:`DEFAULT_IMAGE` where it runs the program (Track 1, or OpenCV in the bundle), else :data:`OPENCV_IMAGE`."""
    return DEFAULT_IMAGE if track == "align" or carries_opencv else OPENCV_IMAGE


def yaml_str(text: str) -> str:
    """A YAML double-quoted scalar holding ``text``, in ASCII (``\\uXXXX`` / ``\\UXXXXXXXX`` escapes)."""
    out = ['"']
    for ch in text:
        code = ord(ch)
        if ch in '"\\':
            out.append("\\" + ch)
        elif 0x20 <= code < 0x7F:
            out.append(ch)
        elif code < 0x100:
            out.append(f"\\x{code:02x}")
        elif 0xD800 <= code <= 0xDFFF:
            out.append("\\ufffd")  # a lone surrogate (undecodable file name) cannot be stored
        elif code < 0x10000:
            out.append(f"\\u{code:04x}")
        else:
            out.append(f"\\U{code:08x}")
    return "".join(out) + '"'


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    return yaml_str(str(value))


def _mapping(items: dict[str, Any], indent: int, first: str = "") -> list[str]:
    """YAML lines of a flat mapping; with ``first`` the first line starts a list item (``- ``)."""
    lines = []
    for i, (key, value) in enumerate(items.items()):
        lead = (" " * indent + first) if i == 0 and first else " " * (indent + len(first))
        if isinstance(value, list):
            lines.append(f"{lead}{key}:")
            lines.extend(f"{' ' * (indent + len(first) + 2)}- {_value(v)}" for v in value)
        elif value is not None:
            lines.append(f"{lead}{key}: {_value(value)}")
    return lines


@dataclass
class Plan:
    """What goes into a bundle, resolved and checked: one task per distinct reference file."""

    track: str
    config: BundleConfig
    title: str
    image: str
    references: list[Path] = field(default_factory=list)
    expected: list[Any] = field(default_factory=list)
    phase_tasks: list[int] = field(default_factory=list)
    pages: list[tuple[str, str, bytes]] = field(default_factory=list)  # (title, file, content)
    logo: tuple[str, bytes] = ("logo.png", b"")

    def task_folder(self, index: int) -> str:
        """The bundle folder holding task ``index``'s reference."""
        return "reference_data" if len(self.references) == 1 else f"reference_data_{index}"


def _read_page(name: str, path: Path) -> bytes:
    try:
        data = path.read_bytes()
        data.decode("utf-8")
    except OSError as exc:
        raise ConfigError(f"pages.{name}", f"{path} cannot be read ({exc.strerror or exc}).",
                          "Pass an existing Markdown file.") from None
    except UnicodeDecodeError:
        raise ConfigError(f"pages.{name}", f"{path} is not UTF-8 text.", "Save it as UTF-8 Markdown.") from None
    if not data.strip():
        raise ConfigError(f"pages.{name}", f"{path} is empty; Codabench refuses empty pages.", "Write the page.")
    return data


def _logo(config: BundleConfig, track: str) -> tuple[str, bytes]:
    from PIL import Image, UnidentifiedImageError

    if config.logo is None:
        return "logo.png", default_logo(track)
    try:
        data = config.logo.read_bytes()
        with Image.open(io.BytesIO(data)) as image:
            kind = image.format or ""
            image.verify()
    except (UnidentifiedImageError, ValueError, SyntaxError):  # before OSError: UnidentifiedImageError is one
        raise ConfigError("logo", f"{config.logo} is not an image.", "Pass a PNG, JPEG, GIF or WebP file.") from None
    except OSError as exc:
        raise ConfigError("logo", f"{config.logo} cannot be read as an image ({exc.strerror or exc}).",
                          "Pass a PNG, JPEG, GIF or WebP file.") from None
    if kind not in LOGO_FORMATS:
        raise ConfigError("logo", f"{config.logo} is {kind or 'an unknown format'}; Codabench accepts PNG, JPEG, GIF "
                          "and WebP.", "Convert it to PNG.")
    return f"logo.{LOGO_FORMATS[kind]}", data


def default_logo(track: str) -> bytes:
    """A 256 x 256 PNG: the track's number on a plain background."""
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (256, 256), (31, 58, 96) if track == "align" else (96, 40, 31))
    draw = ImageDraw.Draw(image)
    draw.rectangle((16, 16, 239, 239), outline=(255, 255, 255), width=6)
    label = f"NTIRE T{1 if track == 'align' else 2}"
    try:
        draw.text((128, 128), label, fill=(255, 255, 255), anchor="mm", font_size=40)
    except TypeError:  # Pillow before 10.1 has no font_size
        draw.text((128, 128), label, fill=(255, 255, 255), anchor="mm")
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def plan(track: str, reference: str | Path | None, config: BundleConfig | None = None) -> Plan:
    """Resolve and check everything a bundle needs, before anything is written."""
    config = check(config or BundleConfig())
    if config.keys not in ("official", "toolkit"):
        raise ConfigError("keys", f"is {config.keys!r}.", "Use official or toolkit.")
    title = (config.title or f"NTIRE 2025 T2I quality assessment, {pages.TRACK_NAMES[track]}").strip()
    carries = config.opencv_wheel is not None
    out = Plan(track, config, title, config.docker_image or default_image(track, carries))
    for i, phase in enumerate(config.phases):
        given = phase.reference if phase.reference is not None else reference
        if given is None:
            raise ConfigError(f"phases[{i}] ({phase.name!r})", "has no reference.",
                              "Pass --ref, or set reference for every phase in the settings file.")
        file = tracks.get(track).reference_file(Path(given)).resolve()
        if file not in out.references:
            out.references.append(file)
            out.expected.append(_expected(track, file))
        out.phase_tasks.append(out.references.index(file))
    given_pages = config.pages
    out.pages.append(("Overview", "pages/overview.md", _read_page("overview", given_pages["overview"])
                      if "overview" in given_pages else pages.overview(track, config, title).encode()))
    out.pages.append(("Evaluation", "pages/evaluation.md", _read_page("evaluation", given_pages["evaluation"])
                      if "evaluation" in given_pages else pages.evaluation(track, config).encode()))
    if "data" in given_pages:
        out.pages.append(("Data", "pages/data.md", _read_page("data", given_pages["data"])))
    out.pages.append(("Terms", "pages/terms.md", _read_page("terms", given_pages["terms"])
                      if "terms" in given_pages else pages.terms(title).encode()))
    out.logo = _logo(config, track)
    if config.opencv_wheel is not None:
        _check_wheel(config.opencv_wheel)
    return out


def _expected(track: str, file: Path) -> Any:
    """The image names (and Track 1 element keys) of a reference, loaded so a bundle never carries one the scorer
    cannot read."""
    from ..scoring import load_reference

    return tracks.get(track).expected_of(load_reference(file, track))


def _check_wheel(wheel: Path) -> None:
    if not wheel.is_file():
        raise ConfigError("opencv_wheel", f"{wheel} does not exist.", "Pass the downloaded .whl file.")
    if wheel.name.startswith("opencv_python-"):
        raise ConfigError("opencv_wheel", f"{wheel.name} is opencv-python, which needs the X11/OpenGL libraries "
                          "(libGL.so.1) most scoring images lack.", "Use opencv-python-headless instead.")
    if not _WHEEL.fullmatch(wheel.name):
        raise ConfigError("opencv_wheel", f"{wheel.name} is not an opencv-python-headless wheel for Linux x86_64.",
                          "Download one: pip download opencv-python-headless==4.10.0.84 --no-deps --only-binary "
                          ":all: --platform manylinux2014_x86_64 --python-version 3.9 -d wheels/")


def competition_yaml(p: Plan, solutions: bool) -> str:
    """The ``competition.yaml`` text (version 2), every string quoted and ASCII."""
    config, track = p.config, p.track
    description = config.description or f"{p.title}. Scored with the ntire-t2iqa toolkit, as the official program."
    lines = ["version: 2"]
    lines += _mapping({"title": p.title, "description": description, "image": p.logo[0], "terms": "pages/terms.md",
                       "docker_image": p.image, "registration_auto_approve": config.registration_auto_approve,
                       "enable_detailed_results": True, "make_programs_available": False,
                       "make_input_data_available": False, "contact_email": config.contact_email}, 0)
    lines.append("pages:")
    for title, file, _ in p.pages:
        lines += _mapping({"title": title, "file": file}, 2, "- ")
    lines.append("tasks:")
    for i in range(len(p.references)):
        names = [ph.name for ph, t in zip(config.phases, p.phase_tasks) if t == i]
        lines += _mapping({"index": i, "name": f"{p.title} ({', '.join(names)})"[:256],
                           "description": f"Scores {tracks.OUTPUTS[track]} against the {', '.join(names)} reference.",
                           "scoring_program": "scoring_program", "reference_data": p.task_folder(i)}, 2, "- ")
    if solutions:
        lines.append("solutions:")
        for i in range(len(p.references)):
            lines += _mapping({"index": i, "name": "Trivial pipeline check", "path": f"solutions/task_{i}",
                               "tasks": [i]}, 2, "- ")
    lines.append("phases:")
    for i, (phase, task) in enumerate(zip(config.phases, p.phase_tasks)):
        text = phase.description or f"Upload a zip with {tracks.OUTPUTS[track]} and readme.txt at its root."
        lines += _mapping({"index": i, "name": phase.name, "description": text,
                           "start": f"{phase.start:%Y-%m-%d %H:%M:%S}",
                           "end": f"{phase.end:%Y-%m-%d %H:%M:%S}" if phase.end else None,
                           "max_submissions_per_day": phase.max_submissions_per_day,
                           "max_submissions": phase.max_submissions,
                           "execution_time_limit": phase.execution_time_limit, "tasks": [task]}, 2, "- ")
    lines.append("leaderboards:")
    lines += _mapping({"title": LEADERBOARD[0], "key": LEADERBOARD[1],
                       "submission_rule": SUBMISSION_RULES[config.leaderboard_rule], "primary_index": 0}, 2, "- ")
    lines.append("    columns:")
    for index, column in enumerate(leaderboard_columns(track, config.keys)):
        lines += _mapping({"title": column.title, "key": column.key, "index": index, "sorting": column.sorting,
                           "precision": column.precision}, 6, "- ")
    return "\n".join(lines) + "\n"


def leaderboard_columns(track: str, naming: str) -> list[Column]:
    """The columns in leaderboard order: the main score first (the primary column), then the rest."""
    columns = list(all_columns(track, naming))
    main = main_key(track, naming)
    return [c for c in columns if c.key == main] + [c for c in columns if c.key != main]


def _solution(track: str, expected: Any) -> dict[str, bytes]:
    """A valid submission that carries no information (pseudo-random scores from each name's CRC)."""
    readme = "\n".join(f"{k} : {v}" for k, v in zip(README_KEYS, ("0.01", "1", "0", "0",
                       "Trivial pipeline check written by codabench-bundle, not a method."))) + "\n"
    if track == "align":
        import json

        records = [{"img_path": path, "total_score": 1 + 4 * (zlib.crc32(path.encode()) % 1000) / 999,
                    "element_score": {key: 1.0 for key in elements}} for path, elements in expected.items()]
        return {"output.json": json.dumps(records).encode(), "readme.txt": readme.encode()}
    import pickle

    import numpy as np

    empty = np.zeros((448, 448), np.uint8)  # one object: the pickle stores it once
    preds = {name: {"score": 1 + 4 * (zlib.crc32(name.encode()) % 1000) / 999, "pred_area": empty}
             for name in expected}
    return {"output.pkl": pickle.dumps(preds, protocol=4), "readme.txt": readme.encode()}


def _sources() -> list[tuple[Path, str]]:
    """The toolkit's Python files the scoring program carries (the synthetic-data generator is left out)."""
    package = Path(__file__).resolve().parent.parent
    out = []
    for src in sorted(package.rglob("*.py")):
        rel = src.relative_to(package.parent)
        if rel.parts[1:2] != ("data",) and "__pycache__" not in rel.parts:
            out.append((src, f"scoring_program/{rel.as_posix()}"))
    return out


def _vendor_opencv(zf: zipfile.ZipFile, wheel: Path) -> None:
    """Copy the wheel's ``cv2`` package and its bundled libraries (not its data files) under ``vendor/``."""
    with zipfile.ZipFile(wheel) as whl:
        for info in whl.infolist():
            name = info.filename
            keep = name.startswith(("cv2/", "opencv_python_headless.libs/")) or (
                ".dist-info/" in name and "LICENSE" in name.upper())
            if keep and not info.is_dir() and not name.startswith("cv2/data/") and ".." not in name.split("/"):
                zf.writestr(f"scoring_program/vendor/{name}", whl.read(info), compresslevel=1)  # fast; mostly binaries


def write_bundle(track: str, reference: str | Path | None, out_zip: str | Path,
                 config: BundleConfig | None = None) -> Path:
    """Write the competition bundle for ``track``; return its path. Raises :class:`ConfigError` first if a setting
    or file would be refused."""
    p = plan(track, reference, config)
    out_zip = Path(out_zip)
    out_zip.parent.mkdir(parents=True, exist_ok=True)
    ref_name = tracks.get(track).REFERENCE_NAME
    with zipfile.ZipFile(out_zip, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("competition.yaml", competition_yaml(p, p.config.solutions))
        zf.writestr(p.logo[0], p.logo[1])
        for _, file, content in p.pages:
            zf.writestr(file, content)
        zf.writestr("scoring_program/metadata.yaml", _METADATA)
        zf.writestr("scoring_program/score.py", _SCORE_PY.format(track=track, keys=p.config.keys))
        for src, name in _sources():
            zf.write(src, name)
        if p.config.opencv_wheel is not None:
            _vendor_opencv(zf, p.config.opencv_wheel)
        for i, ref in enumerate(p.references):
            zf.write(ref, f"{p.task_folder(i)}/{ref_name}")
            if p.config.solutions:
                for name, data in _solution(track, p.expected[i]).items():
                    zf.writestr(f"solutions/task_{i}/{name}", data)
    return out_zip
