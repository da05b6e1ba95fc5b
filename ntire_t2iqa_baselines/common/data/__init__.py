"""The baselines' one dataset layer: training and inference items from any supported data layout.

``data`` is a folder (detected by :func:`ntire_t2iqa.data.sources.locate`: the synthetic challenge,
a Track 1 root with the EvalMuse-40K ``train_list.json`` + ``images/`` and the NTIRE phase folders
``val/``, ``test/``, or an EvalMuse-Structure root with ``train/``, ``val/``, ``test/``) or an already
resolved :class:`~ntire_t2iqa.data.sources.TrackData` (explicit pieces from the CLI options). Every
layout gives the same item types, so no baseline knows which one it reads:

* :func:`align_items` -> :class:`AlignItem` (Track 1), :func:`structure_items` -> :class:`StructureItem` (Track 2).
"""

from .align import align_items, read_align_inputs
from .items import PROMPT_RATING_FIELDS, AlignItem, StructureItem, prompt_ratings, split_element
from .structure import structure_items

__all__ = ["PROMPT_RATING_FIELDS", "AlignItem", "StructureItem", "align_items", "prompt_ratings", "read_align_inputs",
           "split_element", "structure_items"]
