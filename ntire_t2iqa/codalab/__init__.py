"""Codabench / CodaLab: the scoring program and the competition bundle.

* :mod:`.program`: ``codalab-score``, the scoring program the platform runs on ``INPUT/res``
  and ``INPUT/ref`` (bundled with the toolkit's sources; Python 3.9+, numpy, scipy, and
  OpenCV for Track 2).
* :mod:`.keys`: the keys of ``scores.txt`` / ``scores.json`` and the leaderboard columns
  (the official programs' names by default).
* :mod:`.upload`: problems said in the words of the participant's upload.
* :mod:`.config`: the organizer's competition settings (phases, pages, logo, limits), from
  options or a TOML/JSON file, checked as the platform checks them.
* :mod:`.bundle`: ``codabench-bundle``, the competition bundle an organizer uploads.
"""

from __future__ import annotations

from typing import Any

from .keys import NAMINGS, all_columns, main_key, metric_columns, readme_columns
from .program import (
    OUTPUT_FILES,
    detailed_html,
    failure_html,
    readme_values,
    run,
    scores_json,
    scores_txt,
)

__all__ = ["NAMINGS", "OUTPUT_FILES", "BundleConfig", "all_columns", "detailed_html", "failure_html", "load_config",
           "main_key", "metric_columns", "readme_columns", "readme_values", "run", "scores_json", "scores_txt",
           "write_bundle"]
_BUNDLE_NAMES = {"write_bundle": "bundle", "BundleConfig": "config", "load_config": "config"}


def __getattr__(name: str) -> Any:
    """The bundle writer's names, imported on first use: the scoring program on the platform never needs them."""
    if name in _BUNDLE_NAMES:
        import importlib

        return getattr(importlib.import_module(f"{__name__}.{_BUNDLE_NAMES[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
