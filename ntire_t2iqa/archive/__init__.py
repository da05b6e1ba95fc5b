"""Safe reading of participant files: zip archives, folders, JSON and pickles.

A participant's file is hostile until proven otherwise; every failure is a
:class:`~ntire_t2iqa.errors.SubmissionError` with a fix. One module per concern:

* :mod:`.zipread`: size limits (:class:`Limits`) and the bounded readers that decompress
  zip members in memory (never extracted), checking declared sizes and CRCs.
* :mod:`.sources`: :func:`open_submission` checks the member list of a zip archive or
  folder (names, links, encryption, limits) and returns a :class:`SubmissionSource`.
* :mod:`.jsonload`: strict JSON (:func:`load_json_strict`), keeping duplicate keys and
  non-finite numbers visible so they can be reported.
* :mod:`.unpickle`: the allow-list unpickler (:func:`load_pickle_restricted`), which rebuilds
  numpy objects from validated parts.
* :mod:`.pickle_scan`: the opcode scanner that checks a pickle just ahead of the unpickler.
* :mod:`.messages`: short texts shared by the modules above.
"""

from .jsonload import DuplicateKeys, is_non_finite, load_json_strict
from .pickle_scan import MAX_EXPANDED, MAX_NESTING_DEPTH
from .sources import SubmissionSource, open_submission
from .unpickle import PICKLE_FIX, RestrictedUnpickler, load_pickle_restricted
from .zipread import GiB, Limits, MiB

__all__ = [
    "MAX_EXPANDED",
    "MAX_NESTING_DEPTH",
    "PICKLE_FIX",
    "DuplicateKeys",
    "GiB",
    "Limits",
    "MiB",
    "RestrictedUnpickler",
    "SubmissionSource",
    "is_non_finite",
    "load_json_strict",
    "load_pickle_restricted",
    "open_submission",
]
