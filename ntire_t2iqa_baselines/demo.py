"""The baselines' part of ``ntire-t2iqa demo``: train (or reuse) the tiny models, submit, let the demo score.

``ntire-t2iqa demo --baselines fga-blip2,rahf,lvlm-stack`` picks the baselines (default ``fga-blip2,rahf``;
``none`` for none; ``lvlm-stack`` takes about 2.5 more minutes the first time). Trained runs are kept in
``<challenge>/.runs/<name>`` and reused.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
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


def selected(baselines: Sequence[str] | None = None) -> list[str]:
    """The baselines the demo runs: ``baselines`` (``demo --baselines``) checked against the registry, else
    :data:`DEFAULT`; an unknown name is a ``KeyError`` listing the known ones."""
    names = list(DEFAULT if baselines is None else dict.fromkeys(baselines))
    for name in names:
        registry.get(name)
    return names


def demo_submissions(paths: ChallengePaths, split: str, out_dir: Path,
                     baselines: Sequence[str] | None = None) -> list[tuple[str, str, Path]]:
    """Write one validated submission per selected baseline; return (track, label, zip) triples."""
    out = []
    for name in selected(baselines):
        spec = registry.get(name)
        module = registry.load(name)
        zip_path = module.demo_submission(paths.root, split, Path(out_dir) / f"demo-{spec.track}-{name}.zip",
                                          paths.root / ".runs" / name)
        out.append((spec.track, name, Path(zip_path)))
    return out
