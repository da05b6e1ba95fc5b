"""The keys the scoring program writes and the leaderboard columns that show them.

Two namings. ``official`` (the default) is what the challenge's official scoring programs
write in ``scores.txt``: ``SRCC``, ``PLCC``, ``ACC``, ``Final_Score`` (Track 1) and
``Final_Score``, ``SRCC``, ``PLCC``, ``Precision``, ``Recall``, ``F1_Score``, ``GIoU``
(Track 2), followed by the submission's readme.txt lines, whose keys (``runtime per image [s]``,
``CPU[1] / GPU[0]``, ...) are what a platform reading that file as YAML sees. A competition
set up for the official program therefore keeps its leaderboard columns. ``toolkit`` uses
the toolkit's own result names (``main_score``, ``srcc``, ..., ``runtime``, ``cpu``,
``extra_data``, ``llm``) for new competitions.

This module is part of the bundled scoring program: Python 3.9 and the standard library only.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..tracks.common import README_KEYS

NAMINGS = ("official", "toolkit")
#: The Result field a leaderboard ranks by.
MAIN_FIELD = "main_score"


@dataclass(frozen=True)
class Column:
    """One value the scoring program writes: its key, where it comes from, and how a leaderboard shows it.

    ``source`` is a :class:`~ntire_t2iqa.tracks.common.Result` field for a metric, or a
    readme.txt key for a readme value.
    """

    key: str
    source: str
    title: str
    sorting: str = "desc"
    precision: int = 4


_OFFICIAL = {
    "align": (Column("SRCC", "srcc", "SRCC"), Column("PLCC", "plcc", "PLCC"), Column("ACC", "acc", "ACC"),
              Column("Final_Score", "main_score", "Final Score")),
    "structure": (Column("Final_Score", "main_score", "Final Score"), Column("SRCC", "srcc", "SRCC"),
                  Column("PLCC", "plcc", "PLCC"), Column("Precision", "precision", "Precision"),
                  Column("Recall", "recall", "Recall"), Column("F1_Score", "f1", "F1"),
                  Column("GIoU", "giou", "GIoU")),
}
_TOOLKIT = {
    "align": (Column("main_score", "main_score", "Main Score"), Column("srcc", "srcc", "SRCC"),
              Column("plcc", "plcc", "PLCC"), Column("acc", "acc", "ACC")),
    "structure": (Column("main_score", "main_score", "Main Score"), Column("f1", "f1", "F1"),
                  Column("srcc", "srcc", "SRCC"), Column("plcc", "plcc", "PLCC"),
                  Column("precision", "precision", "Precision"), Column("recall", "recall", "Recall"),
                  Column("giou", "giou", "GIoU")),
}
_README_TITLES = (("Runtime [s]", "asc", 2), ("CPU", "desc", 0), ("Extra Data", "desc", 0), ("LLM", "desc", 0))
_README_OURS = ("runtime", "cpu", "extra_data", "llm")
_README = {
    "official": tuple(Column(key, key, title, sorting, precision)
                      for key, (title, sorting, precision) in zip(README_KEYS[:4], _README_TITLES)),
    "toolkit": tuple(Column(ours, key, title, sorting, precision)
                     for ours, key, (title, sorting, precision) in zip(_README_OURS, README_KEYS[:4], _README_TITLES)),
}
#: The readme.txt line written after the numeric ones (official naming only): the method description.
DESCRIPTION_KEY = README_KEYS[4]


def _check(naming: str) -> None:
    if naming not in NAMINGS:
        raise ValueError(f"unknown key naming {naming!r}; choose one of: {', '.join(NAMINGS)}")


def metric_columns(track: str, naming: str = "official") -> tuple[Column, ...]:
    """The metrics of a track, in the order ``scores.txt`` lists them."""
    _check(naming)
    return (_OFFICIAL if naming == "official" else _TOOLKIT)[track]


def readme_columns(naming: str = "official") -> tuple[Column, ...]:
    """The four numeric readme.txt values (runtime, CPU/GPU, extra data, LLM) under this naming's keys."""
    _check(naming)
    return _README[naming]


def all_columns(track: str, naming: str = "official") -> tuple[Column, ...]:
    """Every key ``scores.json`` can hold: the metrics, then the readme values."""
    return metric_columns(track, naming) + readme_columns(naming)


def main_key(track: str, naming: str = "official") -> str:
    """The key of the main score (``Final_Score`` or ``main_score``)."""
    return next(c.key for c in metric_columns(track, naming) if c.source == MAIN_FIELD)
