"""Synthetic mini-challenge, reference building, prompt-grouped folds and trivial predictors.

Real EvalMuse data is large and not always reachable. This package builds a small
challenge with the official file formats (docs/scoring.md) and a learnable signal, so the
scorer, the ranking and the baselines can run end to end anywhere.

Commands (``ntire-t2iqa data ...``)::

    ntire-t2iqa data synth OUT [--seed N] [--size small|medium]   # write the challenge
    ntire-t2iqa data build-ref RAW --out REF [--images DIR]         # raw annotations -> reference
    ntire-t2iqa data folds DATA --k 5 [--seed N]                   # prompt-grouped folds
    ntire-t2iqa data trivial DATA --track T --kind K --split S --out x.zip
    ntire-t2iqa demo [OUT_DIR]                                      # all of it, one table

Layout of a synthetic challenge ``OUT`` (``P`` = public, ``H`` = hidden, organizer only)::

    OUT/manifest.json                       P  splits, sizes, file roles, generator settings
    OUT/align/                              Track 1, image-text alignment (EvalMuse-40K form)
        images/<Model>/<nnnnn>.png          P  every split; <Model> is a virtual T2I model
        train_list.json                     P  raw form: per-annotator lists, flag fields
        val_inputs.json, test_inputs.json   P  records with element keys, scores null
        val_list.json, test_list.json       H  raw annotations of val/test (as train_list.json)
        val_eval.json, test_eval.json       H  references (averaged), built by build-ref
        folds.json                          P  written by `data folds` (prompt-grouped)
    OUT/structure/                          Track 2, structural distortion (EvalMuse-Structure form)
        images/<split>_<nnnnn>.jpg          P  every split; JPEG as released; mixed sizes (512x512, 640x480...)
        train_info.json                     P  {name: {prompt_en, mos, bbox_info: [ann1, ann2, ann3]}}
        val_info.json, test_info.json       P  {name: {prompt_en}}
        val_images.json, test_images.json   P  JSON lists of image names (no extension)
        val_annotations.json, test_annotations.json
                                            H  raw annotations of val/test (as train_info.json)
        val_gt.pkl, test_gt.pkl             H  references, built by build-ref
        folds.json                          P  written by `data folds`

Annotation shapes (Track 2, as the official data uses them): each annotator's entry is
a list of shapes; ``{"bbox_type": 1, "bbox": [{"x": x0, "y": y0}, {"x": x1, "y": y1}]}``
is a rectangle by its top-left and bottom-right corners covering pixels
``x0 <= x < x1, y0 <= y < y1``; ``{"bbox_type": 2, "bbox": [[x, y], ...]}`` is a polygon
filled as ``cv2.fillPoly`` does (boundary included).

Real data as distributed (the EvalMuse-40K release with the NTIRE phase folders, and
EvalMuse-Structure) is read in place: :mod:`.sources` detects a folder's layout and gives
every command the same per-split files (:func:`.sources.locate`).

Hidden files never leave the organizer: participants (and baselines) read only the
public ones. The trivial "oracle" reads the hidden reference on purpose, as a yardstick.

Library entry points: :func:`synthesize`, :func:`build_align_reference`,
:func:`build_structure_reference`, :func:`make_folds`, :func:`write_trivial`.
"""

from __future__ import annotations

from ..lazy import lazy_names

#: Public names, imported when first used (rendering and reference building need OpenCV and Pillow,
#: which ``--help`` and the light modules of this package never do): name -> module that defines it.
_LAZY = {"AnnotationError": ".build_ref", "build_align_reference": ".build_ref",
         "build_structure_reference": ".build_ref", "load_folds": ".folds", "make_folds": ".folds",
         "ChallengePaths": ".layout", "SIZES": ".synth", "SynthSize": ".synth", "synthesize": ".synth",
         "KINDS": ".trivial", "write_trivial": ".trivial"}

__all__ = ["KINDS", "SIZES", "AnnotationError", "ChallengePaths", "SynthSize", "build_align_reference",
           "build_structure_reference", "load_folds", "make_folds", "synthesize", "write_trivial"]


__getattr__, __dir__ = lazy_names(__name__, _LAZY, globals())
