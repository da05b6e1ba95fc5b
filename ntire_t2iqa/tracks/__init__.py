"""One module per track: schema, loader, validator and scorer."""

from __future__ import annotations

from types import ModuleType

from . import align, structure

TRACKS: dict[str, ModuleType] = {"align": align, "structure": structure}


def get(track: str) -> ModuleType:
    """The module of a track name (``align`` or ``structure``)."""
    try:
        return TRACKS[track]
    except KeyError:
        raise ValueError(f"unknown track {track!r}; choose one of: {', '.join(TRACKS)}") from None
