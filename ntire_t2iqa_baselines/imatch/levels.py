"""iMatch's instruction targets and QAlign read-out: scores <-> discrete levels <-> answer tokens.

* Overall score ``S`` in 1..5 -> one of 15 levels ``round((S - 1) / 4 * 14 + 1)``, answered as the
  letters ``a`` (level 1) .. ``o`` (level 15); back: ``S = (level - 1) / 14 * 4 + 1``.
* Element score ``s`` in 0..1 (share of annotators who saw it) -> one of 7 levels ``round(s * 6) + 1``,
  answered as the digits ``1`` .. ``7``; back: ``s = (level - 1) / 6``.

Rounding is half up (``floor(x + 0.5)``), so every boundary goes one way whatever the float
(Python's and numpy's ``round`` go to the even neighbour: ``round(2.5) == 2``). Values slightly
outside the range, as real annotation files and submissions hold (``1.0000001``, ``4.9999999``,
``-1e-9``), are clamped into it first; values far outside it (more than :data:`TOLERANCE` of the
range) are an error, since they mean the wrong scale.

QAlign: the model's first-token logits restricted to the closed set of level tokens, softmaxed,
give the expected level ``sum(p_i * i)``, mapped back linearly (:func:`qalign_expected_level`).
An element is a hit when its level is above ``tau`` (3 by default); :func:`element_score` writes
the expected level as a 0..1 score that crosses the official 0.5 threshold exactly at ``tau``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from ..lvlm_stack.prompts import Task

OVERALL_LEVELS = 15
ELEMENT_LEVELS = 7
#: The answer tokens: level i is the i-th letter (overall) or the digit i (element).
OVERALL_LETTERS = tuple("abcdefghijklmno")
ELEMENT_DIGITS = tuple(str(i) for i in range(1, ELEMENT_LEVELS + 1))
#: How far outside its range (as a share of the range) a value may be and still be clamped.
TOLERANCE = 0.01
DEFAULT_TAU = 3.0

OVERALL_TASK = Task("imatch_overall", OVERALL_LETTERS, tuple(float(i) for i in range(1, OVERALL_LEVELS + 1)))
ELEMENT_TASK = Task("imatch_element", ELEMENT_DIGITS, tuple(float(i) for i in range(1, ELEMENT_LEVELS + 1)))
TASKS = (OVERALL_TASK, ELEMENT_TASK)


def _clamp(x: float, lo: float, hi: float, what: str) -> float:
    if not math.isfinite(x):
        raise ValueError(f"{what} {x!r} is not a finite number")
    slack = TOLERANCE * (hi - lo)
    if x < lo - slack or x > hi + slack:
        raise ValueError(f"{what} {x!r} is outside {lo:g}..{hi:g}; pass scores on the challenge's scale")
    return min(max(x, lo), hi)


def round_half_up(x: float) -> int:
    """``floor(x + 0.5)``: 2.5 -> 3, 2.4999 -> 2 (no banker's rounding)."""
    return int(math.floor(x + 0.5))


def overall_level(score: float) -> int:
    """Overall score 1..5 -> level 1..15 (``round((S - 1) / 4 * 14 + 1)``, clamped first)."""
    s = _clamp(float(score), 1.0, 5.0, "overall score")
    return round_half_up((s - 1.0) / 4.0 * 14.0 + 1.0)


def overall_score(level: float) -> float:
    """Level 1..15 (or an expected level in between) -> overall score 1..5, linear."""
    return (float(level) - 1.0) / 14.0 * 4.0 + 1.0


def element_level(score: float) -> int:
    """Element score 0..1 -> level 1..7 (``round(s * 6) + 1``, clamped first)."""
    s = _clamp(float(score), 0.0, 1.0, "element score")
    return round_half_up(s * 6.0) + 1


def element_fraction(level: float) -> float:
    """Level 1..7 -> the element score 0..1 it stands for (``(level - 1) / 6``)."""
    return (float(level) - 1.0) / 6.0


def overall_letter(level: int) -> str:
    """Level 1..15 -> its answer letter ``a``..``o``."""
    return OVERALL_LETTERS[int(level) - 1]


def element_digit(level: int) -> str:
    """Level 1..7 -> its answer digit ``1``..``7``."""
    return ELEMENT_DIGITS[int(level) - 1]


def closed_set_softmax(logits: Sequence[float] | np.ndarray) -> np.ndarray:
    """Softmax over the level tokens' logits only (float64, max-shifted), ``(..., levels)``."""
    x = np.asarray(logits, dtype=np.float64)
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def qalign_expected_level(logits: Sequence[float] | np.ndarray) -> np.ndarray:
    """QAlign: ``sum_i p_i * i`` over the closed set (levels numbered from 1)."""
    p = closed_set_softmax(logits)
    return p @ np.arange(1, p.shape[-1] + 1, dtype=np.float64)


def element_score(level: float, tau: float = DEFAULT_TAU) -> float:
    """An (expected) element level 1..7 -> a 0..1 score that is >= 0.5 exactly when ``level > tau``.

    Piecewise linear: level 1 -> 0, ``tau`` -> just below 0.5, 7 -> 1. A level equal to ``tau`` is no
    hit (the rule is "above tau"), so it gets the float just below 0.5.
    """
    if not 1.0 < tau < ELEMENT_LEVELS:
        raise ValueError(f"tau must lie strictly between 1 and {ELEMENT_LEVELS}, not {tau!r}")
    lv = min(max(float(level), 1.0), float(ELEMENT_LEVELS))
    if lv > tau:
        return 0.5 + 0.5 * (lv - tau) / (ELEMENT_LEVELS - tau)
    return min(0.5 * (lv - 1.0) / (tau - 1.0), float(np.nextafter(0.5, 0.0)))


def calibrate_tau(levels: Sequence[float], truth: Sequence[bool], grid: Sequence[float] | None = None,
                  default: float = DEFAULT_TAU) -> float:
    """The ``tau`` that maximises the accuracy of ``level > tau`` against ``truth`` (out-of-fold predictions).

    Candidates: ``grid`` (default 1.5..6.5 in steps of 0.05); ties go to the candidate nearest ``default``.
    """
    lv = np.asarray(levels, dtype=np.float64)
    y = np.asarray(truth, dtype=bool)
    if lv.size == 0:
        return default
    cands = np.asarray(grid if grid is not None else np.round(np.arange(1.5, 6.5001, 0.05), 4), dtype=np.float64)
    acc = np.array([np.mean((lv > t) == y) for t in cands])
    best = np.flatnonzero(acc >= acc.max() - 1e-12)
    return float(cands[best[np.argmin(np.abs(cands[best] - default))]])
