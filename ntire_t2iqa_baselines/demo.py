"""The baselines' part of ``ntire-t2iqa demo``: train (or reuse) the tiny models, submit, let the demo score.

``NTIRE_DEMO_BASELINES`` picks the baselines (comma-separated; default ``fga-blip2,rahf``;
``none`` for none); ``NTIRE_DEMO_LVLM=1`` adds ``lvlm-stack`` (about 2.5 more minutes the
first time). Trained runs are kept in ``<challenge>/.runs/<name>`` and reused.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

from ntire_t2iqa.data import ChallengePaths

from . import registry


def _torch_missing() -> bool:
    try:
        return importlib.util.find_spec("torch") is None
    except (ImportError, ValueError):  # a broken or blocked torch counts as missing
        return True


if _torch_missing():  # on a core-only install the demo runs without the baselines and says how to add them
    raise ModuleNotFoundError("the baselines need torch", name="torch")

DEFAULT = ("fga-blip2", "rahf")


def selected() -> list[str]:
    """The baselines the demo runs, from the environment."""
    raw = os.environ.get("NTIRE_DEMO_BASELINES")
    names = list(DEFAULT) if raw is None else [n.strip() for n in raw.split(",") if n.strip() and n != "none"]
    if os.environ.get("NTIRE_DEMO_LVLM") == "1" and "lvlm-stack" not in names:
        names.append("lvlm-stack")
    return names


def demo_submissions(paths: ChallengePaths, split: str, out_dir: Path) -> list[tuple[str, str, Path]]:
    """Write one validated submission per selected baseline; return (track, label, zip) triples."""
    out = []
    for name in selected():
        spec = registry.get(name)
        module = registry.load(name)
        zip_path = module.demo_submission(paths.root, split, Path(out_dir) / f"demo-{spec.track}-{name}.zip",
                                          paths.root / ".runs" / name)
        out.append((spec.track, name, Path(zip_path)))
    return out
