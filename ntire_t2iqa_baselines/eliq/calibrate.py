"""Fit eliq's optional monotonic calibration on a small labelled split (off until this writes it).

eliq's scores are learned without labels, so their scale is arbitrary; SRCC does not care, PLCC's
official logistic fit mostly does not either. Where a few labelled images exist, the least-squares
line ``y = a x + b`` from the submitted scores of those images to their labels puts the scores on
the labels' scale. With ``a >= 0`` it is monotonic: it cannot change SRCC. ``run`` applies it last
(``RUN/calibration_<track>.json``)::

    ntire-t2iqa baseline run eliq --weights RUN --split val --out val.zip
    python -m ntire_t2iqa_baselines.eliq.calibrate RUN val.zip --reference data/val/eval.json

The submission is read and paired with the reference by the toolkit's scorer (one reader per
format), so the pairs are exactly the ones it scores. A calibration already in ``RUN`` is part of
the submitted scores: the new line is composed with it.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

#: The score each track's calibration maps, in the scorer's details: (prediction, reference).
PAIRS = {"align": ("pred_total", "gt_total"), "structure": ("pred_score", "gt_score")}


def fit_line(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Least-squares ``(a, b)`` of ``y = a x + b``; refused when it would not be monotonic increasing."""
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if x.size < 2 or np.ptp(x) == 0:
        raise ValueError(f"{x.size} image(s) with {'one submitted score' if x.size else 'no score'}: a line needs "
                         "at least two different scores; score more labelled images")
    xc = x - x.mean()
    a = float(xc @ (y - y.mean()) / (xc @ xc))
    if a <= 0:
        raise ValueError(f"the labels fall as the scores rise (slope {a:.4g}): a monotonic calibration cannot fit "
                         "them; check that the submission and the reference are of the same split")
    return a, float(y.mean() - a * x.mean())


def compose(first: tuple[float, float] | None, then: tuple[float, float]) -> tuple[float, float]:
    """The line ``then(first(x))`` (``first`` None: ``then`` itself)."""
    if first is None:
        return then
    return then[0] * first[0], then[0] * first[1] + then[1]


def calibrate(run: Path, submission: Path, reference: Path, track: str) -> dict[str, float]:
    """Fit on ``submission`` against ``reference``; write and return ``RUN/calibration_<track>.json``."""
    from ntire_t2iqa import load_reference, score

    from .recipe import _calibration, run_state

    _, state = run_state(run)
    if state["track"] != track:
        raise ValueError(f"{run} was trained on {state['track']} training images, not {track}")
    result = score(str(submission), load_reference(str(reference), track), track=track)
    pred, gt = (np.asarray(result.details[k], dtype=np.float64) for k in PAIRS[track])
    a, b = compose(_calibration(run, track), fit_line(pred, gt))
    out = {"a": a, "b": b, "n_images": int(pred.size)}
    (run / f"calibration_{track}.json").write_text(json.dumps(out, indent=2) + "\n")
    return out


def main(argv: list[str] | None = None) -> int:
    """``python -m ntire_t2iqa_baselines.eliq.calibrate RUN SUBMISSION --reference FILE``."""
    from ntire_t2iqa.errors import ToolkitError

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path, help="the eliq run folder (calibration_<track>.json is written there)")
    parser.add_argument("submission", type=Path, help="a submission zip of labelled images made from RUN")
    parser.add_argument("--reference", type=Path, required=True, help="those images' labels (eval.json or gt.pkl)")
    args = parser.parse_args(argv)
    try:
        from .recipe import run_state

        _, state = run_state(args.run)
        track = state["track"]
        out = calibrate(args.run, args.submission, args.reference, track)
    except (ValueError, OSError, ToolkitError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {args.run / f'calibration_{track}.json'}: a = {out['a']:.6g}, b = {out['b']:.6g} "
          f"({out['n_images']:,} images)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
