"""Fixtures shared by several test modules (plain builders live in ``helpers.py``)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from ntire_t2iqa.data import SynthSize, synthesize


@pytest.fixture(scope="session")
def synth_challenge(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., Path]:
    """``synth_challenge(seed, size, tracks=("align", "structure"))``: a synthetic challenge folder.

    Built once per session for each set of arguments (the folder must not be changed by a test).
    """
    built: dict[tuple[int, SynthSize, tuple[str, ...]], Path] = {}

    def make(seed: int, size: SynthSize, tracks: tuple[str, ...] = ("align", "structure")) -> Path:
        key = (seed, size, tuple(tracks))
        if key not in built:
            root = tmp_path_factory.mktemp(f"synth{seed}") / "challenge"
            synthesize(root, seed=seed, size=size, workers=1, progress=False, tracks=tuple(tracks))
            built[key] = root
        return built[key]

    return make


@pytest.fixture(scope="module")
def torch_one_thread() -> Iterator[None]:
    """Torch on one thread for a module of micro models (fastest there, steady on a busy machine); restored after."""
    torch = pytest.importorskip("torch")
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
