"""The organizer's competition settings for ``codabench-bundle``, checked as Codabench checks them.

Settings come from command-line options, a TOML file (Python 3.11+) or a JSON file with the
same keys; options given on the command line override the file. Example (TOML)::

    title = "NTIRE 2025 T2I quality assessment: Track 1 alignment"
    description = "Predict image-text alignment."
    logo = "logo.png"                  # paths are relative to this file
    leaderboard_rule = "best"          # best | last, as `rank --pick`
    [pages]
    overview = "pages/overview.md"
    data = "pages/data.md"
    terms = "pages/terms.md"
    [[phases]]
    name = "Development"
    start = "2025-01-30"
    end = "2025-03-14 23:59:59"
    reference = "val/eval.json"
    max_submissions_per_day = 5
    [[phases]]
    name = "Final"
    start = "2025-03-15"
    reference = "test/eval.json"
    max_submissions = 3

Every problem is a :class:`ConfigError` naming the setting and the fix, raised before a
bundle is written: what the platform would refuse (missing terms or logo, overlapping phases,
titles over its length limits) never reaches an upload.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from ..errors import ToolkitError

#: Codabench's submission rules for ``best`` and ``last`` (``rank --pick``).
SUBMISSION_RULES = {"best": "Force_Best", "last": "Force_Last"}
#: Codabench's length limits (database columns): competition title, phase and task names, docker image.
MAX_TITLE = 256
MAX_NAME = 256
MAX_IMAGE = 128
PAGES = ("overview", "evaluation", "data", "terms")
_DOCKER_REF = re.compile(r"[a-z0-9][a-z0-9._/:@-]{0,127}", re.IGNORECASE)
_DATE_FORMATS = ("%Y-%m-%d", "%Y-%m-%d %H:%M", "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S")


class ConfigError(ToolkitError):
    """A competition setting the platform would refuse, or a file it names that cannot be used (organizer-facing)."""

    def __init__(self, where: str, what: str, fix: str = ""):
        self.where, self.what, self.fix = where, what, fix
        super().__init__(f"{where}: {what}" + (f" Fix: {fix}" if fix else ""))


@dataclass
class PhaseConfig:
    """One phase: its dates (UTC), the reference it scores against, and its limits."""

    name: str = "Development"
    start: dt.datetime | None = None
    end: dt.datetime | None = None
    reference: Path | None = None
    description: str = ""
    max_submissions_per_day: int = 5
    max_submissions: int = 300
    execution_time_limit: int = 600


@dataclass
class BundleConfig:
    """Everything ``codabench-bundle`` writes into ``competition.yaml`` besides the scoring program."""

    title: str | None = None
    description: str | None = None
    pages: dict[str, Path] = field(default_factory=dict)
    logo: Path | None = None
    docker_image: str | None = None
    leaderboard_rule: str = "best"
    keys: str = "official"
    registration_auto_approve: bool = False
    contact_email: str | None = None
    opencv_wheel: Path | None = None
    solutions: bool = True
    phases: list[PhaseConfig] = field(default_factory=lambda: [PhaseConfig()])


_TOP = {f.name for f in fields(BundleConfig)}
_PHASE = {f.name for f in fields(PhaseConfig)}


def _type_error(where: str, want: str, value: Any) -> ConfigError:
    return ConfigError(where, f"must be {want}, not {type(value).__name__}.", f"Write {where} as {want}.")


def _text(where: str, value: Any) -> str:
    if not isinstance(value, str):
        raise _type_error(where, "a string", value)
    return value


def _int(where: str, value: Any, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise _type_error(where, "a whole number", value)
    if value < minimum:
        raise ConfigError(where, f"is {value}; it must be at least {minimum}.", f"Set {where} to {minimum} or more.")
    return value


def _path(where: str, value: Any, base: Path) -> Path:
    path = Path(_text(where, value)).expanduser()
    return path if path.is_absolute() else base / path


def parse_date(where: str, value: Any) -> dt.datetime:
    """A date or date-time (``2025-01-30``, ``2025-01-30 12:00[:00]``, TOML dates) as a naive UTC datetime."""
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.timezone.utc).replace(tzinfo=None) if value.tzinfo else value
    if isinstance(value, dt.date):
        return dt.datetime(value.year, value.month, value.day)
    text = _text(where, value).strip()
    for fmt in _DATE_FORMATS:
        try:
            return dt.datetime.strptime(text, fmt)
        except ValueError:
            continue
    raise ConfigError(where, f"{text!r} is not a date.", "Write YYYY-MM-DD or YYYY-MM-DD HH:MM:SS (UTC).")


def _phase(i: int, raw: Any, base: Path) -> PhaseConfig:
    where = f"phases[{i}]"
    if not isinstance(raw, dict):
        raise _type_error(where, "a table of phase settings", raw)
    unknown = sorted(set(raw) - _PHASE)
    if unknown:
        raise ConfigError(f"{where}.{unknown[0]}", "is not a phase setting.", f"Use only: {', '.join(sorted(_PHASE))}.")
    phase = PhaseConfig()
    for key, value in raw.items():
        at = f"{where}.{key}"
        if key in ("start", "end"):
            setattr(phase, key, parse_date(at, value))
        elif key == "reference":
            phase.reference = _path(at, value, base)
        elif key in ("name", "description"):
            setattr(phase, key, _text(at, value))
        else:
            setattr(phase, key, _int(at, value))
    return phase


def from_mapping(raw: dict[str, Any], base: Path = Path(".")) -> BundleConfig:
    """A :class:`BundleConfig` from a parsed TOML/JSON mapping; relative paths are taken from ``base``."""
    if not isinstance(raw, dict):
        raise _type_error("the settings", "a table (TOML) or an object (JSON)", raw)
    unknown = sorted(set(raw) - _TOP)
    if unknown:
        raise ConfigError(unknown[0], "is not a setting.", f"Use only: {', '.join(sorted(_TOP))}.")
    config = BundleConfig()
    for key, value in raw.items():
        if key == "phases":
            if not isinstance(value, list) or not value:
                raise _type_error("phases", "a non-empty list of phases", value)
            config.phases = [_phase(i, p, base) for i, p in enumerate(value)]
        elif key == "pages":
            if not isinstance(value, dict):
                raise _type_error("pages", "a table of page files", value)
            bad = sorted(set(value) - set(PAGES))
            if bad:
                raise ConfigError(f"pages.{bad[0]}", "is not a page.", f"Use only: {', '.join(PAGES)}.")
            config.pages = {name: _path(f"pages.{name}", v, base) for name, v in value.items()}
        elif key in ("logo", "opencv_wheel"):
            setattr(config, key, _path(key, value, base))
        elif key in ("registration_auto_approve", "solutions"):
            if not isinstance(value, bool):
                raise _type_error(key, "true or false", value)
            setattr(config, key, value)
        else:
            setattr(config, key, _text(key, value))
    return config


def load_config(path: str | Path) -> BundleConfig:
    """Read a ``.toml`` (Python 3.11+) or ``.json`` settings file."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(str(path), f"cannot be read ({exc.strerror or exc}).", "Pass an existing file.") from None
    try:
        if path.suffix.lower() == ".json":
            raw = json.loads(data.decode("utf-8"))
        else:
            raw = _toml(path, data)
    except (UnicodeDecodeError, ValueError) as exc:
        raise ConfigError(str(path), f"is not valid {path.suffix.lstrip('.').upper() or 'TOML'} ({exc}).",
                          "Fix the syntax at the place named.") from None
    return from_mapping(raw, path.parent)


def _toml(path: Path, data: bytes) -> Any:
    try:
        import tomllib
    except ImportError:  # Python 3.10
        raise ConfigError(str(path), "is TOML, which needs Python 3.11 or later.",
                          "Write the same settings as a .json file.") from None
    return tomllib.loads(data.decode("utf-8"))


def merge(config: BundleConfig, **options: Any) -> BundleConfig:
    """``config`` with every option that is not ``None`` set; ``phase_*`` options set the only phase."""
    phase_options = {k[len("phase_"):]: v for k, v in options.items() if k.startswith("phase_") and v is not None}
    top = {k: v for k, v in options.items() if not k.startswith("phase_") and v is not None}
    pages = {k[len("page_"):]: Path(v) for k, v in list(top.items()) if k.startswith("page_")}
    top = {k: v for k, v in top.items() if not k.startswith("page_")}
    config = replace(config, pages={**config.pages, **pages}, **top)
    if phase_options:
        if len(config.phases) != 1:
            raise ConfigError("phase options", f"apply to a single phase; the settings file has {len(config.phases)}.",
                              "Set each phase's dates and limits in the settings file instead.")
        config.phases = [replace(config.phases[0], **phase_options)]
    return config


def check(config: BundleConfig, today: dt.date | None = None) -> BundleConfig:
    """Check every setting as Codabench would; return the config with defaults filled in (first start: today)."""
    if config.title is not None and not 0 < len(config.title.strip()) <= MAX_TITLE:
        raise ConfigError("title", f"must be 1 to {MAX_TITLE} characters.", "Shorten the title.")
    if config.leaderboard_rule not in SUBMISSION_RULES:
        raise ConfigError("leaderboard_rule", f"is {config.leaderboard_rule!r}.", "Use best or last (as rank --pick).")
    if config.docker_image is not None and not _DOCKER_REF.fullmatch(config.docker_image):
        raise ConfigError("docker_image", f"{config.docker_image!r} is not an image name of at most {MAX_IMAGE} "
                          "characters.", "Write it as on Docker Hub, e.g. codalab/codalab-legacy:py39.")
    if not config.phases:
        raise ConfigError("phases", "is empty.", "Give at least one phase.")
    phases = []
    for i, phase in enumerate(config.phases):
        where = f"phases[{i}] ({phase.name!r})"
        if not 0 < len(phase.name.strip()) <= MAX_NAME:
            raise ConfigError(f"phases[{i}].name", f"must be 1 to {MAX_NAME} characters.", "Name the phase.")
        if phase.start is None:
            if i:
                raise ConfigError(where, "has no start.", "Give every phase after the first a start date.")
            today = today or dt.datetime.now(dt.timezone.utc).date()
            phase = replace(phase, start=dt.datetime(today.year, today.month, today.day))
        if phase.end is not None and phase.end <= phase.start:
            raise ConfigError(where, "ends before it starts.", "Set its end after its start.")
        for key in ("max_submissions_per_day", "max_submissions", "execution_time_limit"):
            _int(f"phases[{i}].{key}", getattr(phase, key))
        if phases:
            before = phases[-1]
            if before.end is None:
                raise ConfigError(f"phases[{i - 1}] ({before.name!r})", "has no end, but a phase follows it.",
                                  "Give it an end before the next phase starts.")
            if phase.start <= before.end:
                raise ConfigError(where, f"starts at {phase.start} but the phase before it ends at {before.end}; "
                                  "Codabench needs each phase to start after the previous one has ended.",
                                  "Start it later than the previous phase's end (e.g. one second later).")
        phases.append(phase)
    if len({p.name for p in phases}) != len(phases):
        raise ConfigError("phases", "have the same name twice.", "Give each phase its own name.")
    return replace(config, phases=phases)
