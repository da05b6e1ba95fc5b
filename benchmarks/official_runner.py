"""Run the plain official-style scorer as CodaLab runs a competition's ``evaluate.py``.

    python benchmarks/official_runner.py INPUT OUTPUT

CodaLab unzips the upload into ``INPUT/res`` and the reference into ``INPUT/ref``, runs the
program, and reads ``OUTPUT/scores.txt``. This script does what the challenge's two
``evaluate.py`` programs do there: it loads ``res/output.json`` and ``ref/eval.json``
(Track 1) or ``res/output.pkl`` and ``ref/gt.pkl`` (Track 2) with ``json``/``pickle``, fails
without ``res/readme.txt``, scores with :mod:`naive_official` (imported from this folder, as
an ``evaluate.py`` imports its helpers) and writes ``scores.txt``. It is the yardstick of
``bench_start.py``'s whole-process comparison with ``ntire-t2iqa codalab-score``.

``naive_official`` imports OpenCV at its top for Track 2. An official Track 1 program needs
no OpenCV, so for Track 1 the import is answered by a placeholder module (its import cost
would otherwise be counted against the official side); Track 1 never calls it.
"""

from __future__ import annotations

import json
import os
import pickle
import sys
import types


def main(input_dir: str, output_dir: str) -> None:
    res, ref = os.path.join(input_dir, "res"), os.path.join(input_dir, "ref")
    track = "align" if os.path.exists(os.path.join(res, "output.json")) else "structure"
    if track == "align":
        sys.modules.setdefault("cv2", types.ModuleType("cv2"))  # Track 1 never uses OpenCV
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import naive_official

    with open(os.path.join(res, "readme.txt"), encoding="utf-8") as f:  # the official programs need it
        readme = [line.strip() for line in f if line.strip()]
    if track == "align":
        with open(os.path.join(res, "output.json"), encoding="utf-8") as f:
            submission = json.load(f)
        with open(os.path.join(ref, "eval.json"), encoding="utf-8") as f:
            reference = json.load(f)
        scores = naive_official.score_align(submission, reference)
    else:
        with open(os.path.join(res, "output.pkl"), "rb") as f:
            submission = pickle.load(f)
        with open(os.path.join(ref, "gt.pkl"), "rb") as f:
            reference = pickle.load(f)
        scores = naive_official.score_structure(submission, reference)
    os.makedirs(output_dir, exist_ok=True)
    with open(os.path.join(output_dir, "scores.txt"), "w", encoding="utf-8") as f:
        for key, value in scores.items():
            f.write(f"{key}: {value!r}\n")
        f.writelines(f"{line}\n" for line in readme)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
