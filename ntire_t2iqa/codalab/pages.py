"""The default Markdown pages of a competition bundle: overview, evaluation and terms.

An organizer's own page files replace these (``--overview``, ``--evaluation``, ``--terms``,
``--data-page`` or the ``[pages]`` table of the settings file).
"""

from __future__ import annotations

from ..tracks.common import README_TEMPLATE
from .config import BundleConfig, PhaseConfig
from .keys import all_columns, main_key

TRACK_NAMES = {"align": "Track 1: image-text alignment (EvalMuse-40K)",
               "structure": "Track 2: structural distortion (EvalMuse-Structure)"}
_FILES = {"align": "output.json", "structure": "output.pkl"}
_FORMATS = {
    "align": "`output.json`: a JSON list with one object per test image, "
             '`{"img_path": "MODEL/00001.png", "total_score": 3.2, "element_score": {"cat (animal)": 0.9, ...}}`; '
             "`img_path` and every element key exactly as in the test inputs, scores finite numbers "
             "(element scores on 0..1: 0.5 and above means present).",
    "structure": "`output.pkl`: a pickled dict `{image_name: {\"score\": 3.2, \"pred_area\": mask}}` keyed by each "
                 "test image's file name without extension; `mask` a 2-D numpy array (e.g. 448 x 448 uint8, "
                 "1 for distorted pixels).",
}
_MAIN = {"align": "0.25 SRCC + 0.25 PLCC + 0.5 ACC",
         "structure": "0.7 F1 + 0.15 SRCC + 0.15 PLCC (F1 over distorted regions, pooled over the test set)"}


def _when(phase: PhaseConfig) -> str:
    start = f"{phase.start:%Y-%m-%d %H:%M} UTC" if phase.start else "now"
    return f"from {start}" + (f" to {phase.end:%Y-%m-%d %H:%M} UTC" if phase.end else "")


def overview(track: str, config: BundleConfig, title: str) -> str:
    """The default overview: the task, the main score and the phases."""
    phases = "\n".join(f"- **{p.name}**: {_when(p)}; at most {p.max_submissions_per_day} submissions a day and "
                       f"{p.max_submissions} in all." for p in config.phases)
    return (f"# {title}\n\n{TRACK_NAMES[track]}, NTIRE 2025 challenge on text-to-image quality assessment.\n\n"
            f"Main score: {_MAIN[track]}.\n\n## Phases\n\n{phases}\n\n"
            "See *Evaluation* for the submission format and how it is scored.\n")


def evaluation(track: str, config: BundleConfig) -> str:
    """The default evaluation page: what to upload, how to check it, what the leaderboard shows."""
    output = _FILES[track]
    columns = "\n".join(f"| `{c.key}` | {c.title} |" for c in all_columns(track, config.keys))
    readme = README_TEMPLATE.rstrip()
    return (f"# Evaluation\n\n## What to upload\n\nA zip with exactly two files at its root: `{output}` and "
            "`readme.txt`. Zip the two files themselves, not the folder that holds them:\n\n"
            f"```bash\ncd my_submission && zip ../submission.zip {output} readme.txt\n```\n\n"
            f"{_FORMATS[track]}\n\n`readme.txt` holds five lines:\n\n```\n{readme}\n```\n\n"
            "The runtime is a plain decimal number of seconds per image; the three flags are 0 or 1.\n\n"
            "## Check before uploading\n\n"
            f"With the ntire-t2iqa toolkit:\n\n```bash\nntire-t2iqa validate submission.zip --track {track} --inputs "
            "TEST_INPUTS\n```\n\nIt reports every problem with its fix, exactly as the scoring program would.\n\n"
            f"## Scores\n\nMain score: {_MAIN[track]}. The leaderboard ranks by `{main_key(track, config.keys)}` "
            f"and shows:\n\n| key | column |\n|---|---|\n{columns}\n")


def terms(title: str) -> str:
    """Default terms of participation (organizers should replace them with their own)."""
    return (f"# Terms of participation: {title}\n\n"
            "- Submissions are scored automatically; scores and the readme.txt values (runtime, CPU/GPU, extra "
            "data, LLM) appear on the leaderboard.\n"
            "- Teams at the top of the final phase are asked for a fact sheet and their code, so that the "
            "organizers can check the results; results that cannot be reproduced may be removed.\n"
            "- Hand labelling of the test data is not allowed. Each team uses one account.\n"
            "- The organizers may publish the final results, team names and method descriptions in the "
            "challenge report.\n")
