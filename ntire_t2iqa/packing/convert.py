"""Predictions in any form ``pack`` and ``score`` take, turned into the content of the track's output file.

Track 1: a list of records (output.json's content). Track 2: a dict ``{name: {"score", "pred_area"}}``
(output.pkl's content). ``pack`` also makes every Track 2 mask a 2-D uint8 0/1 array; ``score``
takes the arrays as they are (it scores what would be submitted).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import Problem
from ..scoring import is_dataframe, is_path
from . import align_inputs, structure_inputs


def predictions_from_dataframe(df: Any, track: str) -> Any:
    """A DataFrame as the track's output content, masks as they are (for scoring in memory)."""
    if track == "align":
        return align_inputs.records_from_dataframe(df)[0]
    return structure_inputs.predictions_from_dataframe(df)


def to_output(predictions: Any, track: str, *, elements: Any = None, scores: Any = None,
              threshold: float | None = None) -> tuple[Any, list[Problem]]:
    """Any accepted form as the track's output content, ready to write; ``(content, notes)``.

    Track 1: a JSON/CSV/TSV/Parquet path, a list of records, a dict keyed by img_path, or a
    DataFrame (``elements``: a long table of element scores, a path or DataFrame). Track 2: a
    folder of mask images or an ``.npz`` path (``scores``: a ``name,score`` table), a dict, or a
    DataFrame (name, score, pred_area); masks are thresholded (``threshold``) into 2-D uint8 0/1.
    Raises :class:`~ntire_t2iqa.errors.SubmissionError` with every problem found.
    """
    path_like = is_path(predictions)
    if track == "align":
        if path_like:
            return align_inputs.records_from_path(predictions, elements)
        if is_dataframe(predictions):
            return align_inputs.records_from_dataframe(predictions, elements)
        if elements is not None:
            raise ValueError("elements (a long table of element scores) goes with a table of predictions only")
        if not isinstance(predictions, (list, dict)):
            raise TypeError(f"Track 1 predictions are a path, a list of records or a DataFrame, not "
                            f"{type(predictions).__name__}.")
        return align_inputs.records_from_memory(predictions), []
    if path_like:
        preds, notes = structure_inputs.predictions_from_path(predictions, scores, threshold)
        return preds, notes
    if scores is not None:
        raise ValueError("scores (a name,score table) goes with a folder of mask images or an .npz only")
    if is_dataframe(predictions):
        predictions = structure_inputs.predictions_from_dataframe(predictions)
    preds, notes = structure_inputs.predictions_from_memory(predictions, threshold)
    for name, entry in preds.items():  # numpy scalars as plain floats (any other value is the validator's to judge)
        if isinstance(entry, dict) and isinstance(entry.get("score"), (np.integer, np.floating)):
            preds[name] = {**entry, "score": float(entry["score"])}
    return preds, notes
