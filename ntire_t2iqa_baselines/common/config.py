"""Typed baseline configs: a small declarative schema, checked once when a config file is loaded.

A config stays a plain JSON object (a ``dict``), so every baseline reads it as before; what this
module adds is one check, at load time, that each key is known, each value has the right type and
range, and the required keys are there. A problem is a :class:`ConfigError` naming the file, the
key path (``train.lr``) and how to fix it, raised before any model is built.

How a baseline declares its schema (next to its ``configs/`` folder) and loads a config::

    >>> from ntire_t2iqa_baselines.common.config import ConfigError, Float, Int, Optional, Section, Str, validate
    >>> SCHEMA = Section({
    ...     "name": Str(),
    ...     "model": Section({"path": Optional(Str(), "a local weights folder")}),
    ...     "train": Section({"epochs": Int(min=1), "lr": Float(gt=0)}, required=("epochs", "lr")),
    ... }, required=("train",))
    >>> validate({"train": {"epochs": 3, "lr": 1e-4}}, SCHEMA, "tiny.json")["train"]["epochs"]
    3
    >>> try:
    ...     validate({"train": {"epochs": 0, "lr": 1e-4}}, SCHEMA, "tiny.json")
    ... except ConfigError as exc:
    ...     print(exc)
    tiny.json: train.epochs: 0 is below the minimum 1; set it to an integer >= 1.

The package then exposes ``CONFIG_SCHEMA = SCHEMA`` beside ``CONFIGS`` (``{"tiny": path, "full": path}``);
``baseline train --config`` and ``--set KEY=VALUE`` go through :func:`load_baseline_config`, and so should a
baseline's own entry points (its demo, its command-line scripts). A schema built on another one reuses its
sections: ``Section({**OTHER.fields, "new_key": Int()})`` or ``OTHER.extended({"new_key": Int()})``.
"""

from __future__ import annotations

import difflib
import json
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: At most this many problems are listed in one error (the rest are counted).
MAX_PROBLEMS = 20


class ConfigError(ValueError):
    """A baseline config that does not fit its schema: the message names the file, the key path and the fix."""


@dataclass
class _Problems:
    source: str
    items: list[str] = field(default_factory=list)

    def add(self, path: str, what: str) -> None:
        self.items.append(f"{path or '(top level)'}: {what}")


class Spec:
    """One value's type and range. Subclasses implement :meth:`check`, returning a problem text or ``None``."""

    #: what a valid value looks like, for messages ("an integer >= 1")
    expected = "a value"

    def check(self, value: Any, path: str, problems: _Problems) -> None:
        """Record in ``problems`` what is wrong with ``value`` at ``path`` (nothing when it fits)."""
        problem = self.problem(value)
        if problem is not None:
            problems.add(path, f"{problem}; set it to {self.expected}.")

    def problem(self, value: Any) -> str | None:
        """What is wrong with ``value``, or ``None``."""
        return None


def _show(value: Any) -> str:
    text = json.dumps(value) if isinstance(value, (str, int, float, bool, type(None))) else type(value).__name__
    return text if len(text) <= 60 else text[:57] + "..."


def _kind(value: Any) -> str:
    return {bool: "a boolean", int: "an integer", float: "a number", str: "a string", list: "a list",
            dict: "an object", type(None): "null"}.get(type(value), type(value).__name__)


def _bounds(kind: str, min: float | None, max: float | None, gt: float | None, lt: float | None = None) -> str:
    parts = [f"> {gt}" if gt is not None else None, f">= {min}" if min is not None else None,
             f"<= {max}" if max is not None else None, f"< {lt}" if lt is not None else None]
    text = " and ".join(p for p in parts if p)
    return f"{kind} {text}" if text else kind


@dataclass
class Int(Spec):
    """An integer (JSON ``true``/``false`` are not integers), optionally within ``[min, max]``."""

    min: int | None = None
    max: int | None = None

    def __post_init__(self) -> None:
        self.expected = _bounds("an integer", self.min, self.max, None)

    def problem(self, value: Any) -> str | None:
        """Wrong type or out of range."""
        if isinstance(value, bool) or not isinstance(value, int):
            return f"{_show(value)} is {_kind(value)}, not an integer"
        if self.min is not None and value < self.min:
            return f"{value} is below the minimum {self.min}"
        if self.max is not None and value > self.max:
            return f"{value} is above the maximum {self.max}"
        return None


@dataclass
class Float(Spec):
    """A finite number (an integer is accepted and kept as it is), optionally ``> gt``, ``>= min``, ``<= max``,
    ``< lt``."""

    min: float | None = None
    max: float | None = None
    gt: float | None = None
    lt: float | None = None

    def __post_init__(self) -> None:
        self.expected = _bounds("a number", self.min, self.max, self.gt, self.lt)

    def problem(self, value: Any) -> str | None:
        """Wrong type, not finite, or out of range."""
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return f"{_show(value)} is {_kind(value)}, not a number"
        if not math.isfinite(value):
            return f"{value} is not a finite number"
        if self.gt is not None and not value > self.gt:
            return f"{value} is not above {self.gt}"
        if self.min is not None and value < self.min:
            return f"{value} is below the minimum {self.min}"
        if self.max is not None and value > self.max:
            return f"{value} is above the maximum {self.max}"
        if self.lt is not None and not value < self.lt:
            return f"{value} is not below {self.lt}"
        return None


@dataclass
class Bool(Spec):
    """``true`` or ``false``."""

    expected: str = "true or false"

    def problem(self, value: Any) -> str | None:
        """Anything but a JSON boolean."""
        return None if isinstance(value, bool) else f"{_show(value)} is {_kind(value)}, not true/false"


@dataclass
class Str(Spec):
    """A string; with ``choices``, one of them."""

    choices: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        self.expected = f"one of {', '.join(map(repr, self.choices))}" if self.choices else "a string"

    def problem(self, value: Any) -> str | None:
        """Not a string, or not one of the choices (the closest is suggested)."""
        if not isinstance(value, str):
            return f"{_show(value)} is {_kind(value)}, not a string"
        if self.choices and value not in self.choices:
            close = difflib.get_close_matches(value, self.choices, n=1)
            return f"{_show(value)} is not allowed" + (f" (did you mean {close[0]!r}?)" if close else "")
        return None


@dataclass
class Const(Spec):
    """Exactly ``value`` (for a word that stands beside numbers, e.g. ``"auto"``)."""

    value: Any = None

    def __post_init__(self) -> None:
        self.expected = json.dumps(self.value)

    def problem(self, value: Any) -> str | None:
        """Anything but the constant."""
        same = value == self.value and type(value) is type(self.value)
        return None if same else f"{_show(value)} is not {json.dumps(self.value)}"


class AnyOf(Spec):
    """Fits when one of ``options`` fits (``Optional(x)`` is ``AnyOf(Const(None), x)``)."""

    def __init__(self, *options: Spec, expected: str | None = None):
        self.options = options
        self.expected = expected or " or ".join(o.expected for o in options)

    def check(self, value: Any, path: str, problems: _Problems) -> None:
        """Fits when any option records no problem."""
        for option in self.options:
            trial = _Problems(problems.source)
            option.check(value, path, trial)
            if not trial.items:
                return
        problems.add(path, f"{_show(value)} does not fit; set it to {self.expected}.")


def Optional(spec: Spec, meaning: str = "") -> AnyOf:  # noqa: N802 - reads as a type in a schema
    """``null`` or ``spec``; ``meaning`` says what a value stands for, in messages."""
    described = f" ({meaning})" if meaning else ""
    return AnyOf(Const(None), spec, expected=f"null or {spec.expected}{described}")


@dataclass
class Anything(Spec):
    """Any JSON value (for free text such as a description)."""

    expected: str = "any JSON value"


@dataclass
class ListOf(Spec):
    """A JSON list whose items fit ``item``; ``length`` fixes its length, ``min_length`` bounds it."""

    item: Spec = field(default_factory=Anything)
    length: int | None = None
    min_length: int = 0

    def __post_init__(self) -> None:
        size = f"{self.length} " if self.length is not None else ""
        self.expected = f"a list of {size}items, each {self.item.expected}"

    def check(self, value: Any, path: str, problems: _Problems) -> None:
        """The list itself, then each item at ``path[i]``."""
        if not isinstance(value, list):
            problems.add(path, f"{_show(value)} is {_kind(value)}, not a list; set it to {self.expected}.")
            return
        if self.length is not None and len(value) != self.length:
            problems.add(path, f"has {len(value)} items, not {self.length}; set it to {self.expected}.")
            return
        if len(value) < self.min_length:
            problems.add(path, f"has {len(value)} items, fewer than {self.min_length}; set it to {self.expected}.")
            return
        for i, v in enumerate(value):
            self.item.check(v, f"{path}[{i}]", problems)


class Section(Spec):
    """A JSON object with known keys, each with its spec; unknown keys are errors.

    ``required`` keys must be present. ``more_keys`` (called only when an undeclared key appears)
    returns further names accepted with any value, e.g. the keyword arguments of the library
    config a sub-object is passed to.
    """

    expected = "an object"

    def __init__(self, fields: Mapping[str, Spec], required: Iterable[str] = (),
                 more_keys: Callable[[], Iterable[str]] | None = None):
        self.fields = dict(fields)
        self.required = tuple(required)
        self.more_keys = more_keys
        unknown = [k for k in self.required if k not in self.fields]
        if unknown:
            raise ValueError(f"required keys {unknown} are not declared in the schema")

    def extended(self, fields: Mapping[str, Spec], required: Iterable[str] = ()) -> Section:
        """This section with more (or replaced) keys: for a baseline built on another one's config."""
        return Section({**self.fields, **fields}, (*self.required, *required), self.more_keys)

    def check(self, value: Any, path: str, problems: _Problems) -> None:
        """Type, unknown keys (with the closest known one), required keys, then each value."""
        if not isinstance(value, dict):
            problems.add(path, f"{_show(value)} is {_kind(value)}, not an object; set it to {{...}} with keys "
                               f"{', '.join(self.fields)}.")
            return
        extra: set[str] | None = None
        for key, v in value.items():
            where = f"{path}.{key}" if path else key
            spec = self.fields.get(key)
            if spec is not None:
                spec.check(v, where, problems)
                continue
            if extra is None:
                extra = set(self.more_keys()) if self.more_keys else set()
            if key not in extra:
                close = difflib.get_close_matches(key, [*self.fields, *extra], n=1)
                hint = f"did you mean {close[0]!r}? " if close else ""
                also = f" (or {self.more_keys.__doc__})" if self.more_keys and self.more_keys.__doc__ else ""
                problems.add(where, f"unknown key; {hint}remove it or use one of: {', '.join(sorted(self.fields))}"
                                    f"{also}.")
        for key in self.required:
            if key not in value:
                where = f"{path}.{key}" if path else key
                problems.add(where, f"missing; add it ({self.fields[key].expected}).")


def validate(config: Any, schema: Section, source: str = "config") -> dict[str, Any]:
    """``config`` itself when it fits ``schema``; otherwise a :class:`ConfigError` listing every problem."""
    problems = _Problems(source)
    schema.check(config, "", problems)
    if problems.items:
        shown = problems.items[:MAX_PROBLEMS]
        more = len(problems.items) - len(shown)
        tail = f"\n  ... and {more} more" if more else ""
        if len(shown) == 1:
            raise ConfigError(f"{source}: {shown[0]}{tail}")
        raise ConfigError(f"{source}: {len(problems.items)} problems:\n  " + "\n  ".join(shown) + tail)
    return config


def parse_override(text: str) -> tuple[list[str], Any]:
    """``"train.lr=1e-4"`` -> ``(["train", "lr"], 0.0001)``: the value read as JSON, else kept as a string."""
    key, sep, raw = text.partition("=")
    parts = key.strip().split(".")
    if not sep or not all(parts):
        raise ConfigError(f"--set {text!r}: write KEY=VALUE with a dotted key path, e.g. train.epochs=3 or "
                          "model.path=/models/Qwen2.5-VL-7B-Instruct")
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        value = raw
    return parts, value


def apply_overrides(config: dict[str, Any], overrides: Sequence[str]) -> dict[str, Any]:
    """``config`` with each ``KEY=VALUE`` of ``overrides`` set (missing objects on the way are created)."""
    for text in overrides:
        parts, value = parse_override(text)
        node = config
        for i, part in enumerate(parts[:-1]):
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise ConfigError(f"--set {text!r}: {'.'.join(parts[: i + 1])} is {_kind(child)}, not an object")
            node = child
        node[parts[-1]] = value
    return config


def read_json_config(path: Path) -> Any:
    """The JSON value of a config file; a missing or malformed file is a :class:`ConfigError` saying where."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot be read ({exc.strerror or exc}); "
                          "give an existing JSON config file.") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path}: not valid JSON at line {exc.lineno}, column {exc.colno} ({exc.msg}); "
                          "fix the file (a JSON object, double-quoted keys, no trailing commas).") from None


def load_config(path: Path, schema: Section | None, overrides: Sequence[str] = ()) -> dict[str, Any]:
    """Read a config file, apply ``--set`` style ``overrides``, and validate the result once.

    ``schema=None`` (a baseline that declares none yet) checks only that the file holds a JSON object.
    """
    config = read_json_config(path)
    if not isinstance(config, dict):
        raise ConfigError(f"{path}: the config is {_kind(config)}, not a JSON object; write it as {{...}}.")
    config = apply_overrides(config, overrides)
    source = f"{path}" + (f" (with --set {' '.join(overrides)})" if overrides else "")
    return config if schema is None else validate(config, schema, source)


def load_baseline_config(configs: Mapping[str, Path], schema: Section | None, choice: str,
                         overrides: Sequence[str] = ()) -> dict[str, Any]:
    """A baseline's config by name (``tiny``, ``full``: a key of ``configs``) or JSON file path, validated."""
    path = Path(configs[choice]) if choice in configs else Path(choice)
    if not path.is_file():
        raise ConfigError(f"config {choice!r} is neither one of {', '.join(configs)} nor a JSON file; "
                          f"name one of those or give a path to a JSON config.")
    return load_config(path, schema, overrides)


def init_keywords(cls_path: str, exclude: Iterable[str] = ()) -> Callable[[], list[str]]:
    """``more_keys`` for a :class:`Section` passed as keyword arguments to a library config class.

    ``cls_path`` is ``"module:Class"``; it is imported only when a key outside the declared ones appears.
    """
    def names() -> list[str]:
        import importlib
        import inspect

        module, _, name = cls_path.partition(":")
        cls = getattr(importlib.import_module(module), name)
        params = inspect.signature(cls.__init__).parameters
        skip = {"self", *exclude}
        return [p for p, v in params.items() if p not in skip and v.kind is not inspect.Parameter.VAR_KEYWORD]

    names.__doc__ = f"another keyword of {cls_path.replace(':', '.')}" + (
        f" but {', '.join(exclude)}, set elsewhere" if exclude else "")
    return names
