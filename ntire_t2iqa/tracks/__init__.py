"""One module per track: schema, loader, validator and scorer.

A track's module is imported when it is first asked for, so Track 1 runs where only numpy
and scipy are installed. Track 2 also needs OpenCV: where it cannot be imported,
:func:`get` raises :class:`~ntire_t2iqa.errors.MissingDependency` with the fix.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from ..errors import MissingDependency

#: Every track name, in order.
NAMES = ("align", "structure")
#: Each track's prediction file (known without importing the track's module).
OUTPUTS = {"align": "output.json", "structure": "output.pkl"}
#: What to install when OpenCV is missing.
OPENCV_FIX = ("install opencv-python-headless (pip install opencv-python-headless), or run where OpenCV is "
              "installed; on Codabench, bundle it with `codabench-bundle --opencv-wheel` or pick a docker image "
              "that has it (see the README's Codabench section).")


def get(track: str) -> ModuleType:
    """The module of a track name (``align`` or ``structure``), imported on first use."""
    if track not in NAMES:
        raise ValueError(f"unknown track {track!r}; choose one of: {', '.join(NAMES)}")
    if track == "structure":
        require_opencv("Track 2 (structure)")
    return importlib.import_module(f"{__name__}.{track}")


def require_opencv(needed_for: str) -> None:
    """Import OpenCV, or raise :class:`MissingDependency` saying what needs it and how to install it."""
    try:
        importlib.import_module("cv2")
    except ImportError as exc:  # a missing package, or a broken one (e.g. libGL.so.1 absent for opencv-python)
        raise MissingDependency("OpenCV (cv2)", needed_for, f"{type(exc).__name__}: {exc}", OPENCV_FIX) from None
