"""Cases of the problem catalogue (``tests/catalogue.py``) for what both tracks share: readme.txt,
the organizer's JSON files, the track names and OpenCV."""

from __future__ import annotations

import importlib.abc
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from catalogue import Case

from ntire_t2iqa import tracks
from ntire_t2iqa.errors import OrganizerError
from ntire_t2iqa.tracks.common import README_TEMPLATE, check_readme, read_json_file

TITLE = "Both tracks: readme.txt, organizer JSON files, track names and OpenCV"

TEMPLATE_LINES = README_TEMPLATE.splitlines()


def readme(title: str, data: bytes, shown: str = "") -> Case:
    """readme.txt's bytes through the readme check (values read, then every problem)."""
    return Case(f"readme.txt: {title}", shown or f"readme.txt holds the bytes `{data!r}`",
                lambda tmp: check_readme(data))


def lines(*replace: tuple[int, str | None], extra: tuple[str, ...] = ()) -> bytes:
    """The template with line ``i`` (0-based) replaced (``None``: left out), then ``extra`` lines, UTF-8."""
    out = list(TEMPLATE_LINES)
    for i, text in replace:
        out[i] = text  # type: ignore[call-overload]
    return ("\n".join(x for x in [*out, *extra] if x is not None) + "\n").encode()


def line_case(title: str, *replace: tuple[int, str | None], extra: tuple[str, ...] = ()) -> Case:
    changed = [f"line {i + 1} " + (f"`{text}`" if text is not None else "left out") for i, text in replace]
    changed += [f"then `{x}`" for x in extra]
    return readme(title, lines(*replace, extra=extra), "the template with " + ", ".join(changed))


def json_file(title: str, data: bytes | None, error_type: type[OrganizerError] | None = None) -> Case:
    """An organizer's JSON file (``None``: it does not exist) read by ``read_json_file``."""
    def call(tmp: Path) -> Any:
        path = tmp / "answers.json"
        if data is not None:
            path.write_bytes(data)
        if error_type is None:
            return read_json_file(path, "Pass the answers file.")
        return read_json_file(path, "Pass the answers file.", error_type)
    shown = "`answers.json` does not exist" if data is None else f"`answers.json` holds the bytes `{data!r}`"
    if error_type is not None:
        shown += f", read with error_type={error_type.__name__}"
    return Case(f"organizer JSON: {title}", shown, call)


class _NoOpenCV(importlib.abc.MetaPathFinder):
    """Makes ``import cv2`` fail as where OpenCV is not installed, or installed without a system library."""

    def __init__(self, how: str):
        self.how = how

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> None:
        if name == "cv2" and self.how == "missing":
            raise ModuleNotFoundError("No module named 'cv2'", name="cv2")
        if name == "cv2":
            raise ImportError("libGL.so.1: cannot open shared object file: No such file or directory")
        return None


@contextmanager
def opencv_absent(how: str) -> Iterator[None]:
    """``import cv2`` fails while inside: ``missing`` (not installed) or ``broken`` (a library absent)."""
    saved = sys.modules.pop("cv2", None)
    finder = _NoOpenCV(how)
    sys.meta_path.insert(0, finder)
    try:
        yield
    finally:
        sys.meta_path.remove(finder)
        if saved is not None:
            sys.modules["cv2"] = saved


def track(title: str, name: str, opencv: str = "") -> Case:
    """``tracks.get(name)`` (OpenCV ``missing`` or ``broken`` if asked): the module's name, or the error."""
    def call(tmp: Path) -> Any:
        if not opencv:
            return _get(name)
        with opencv_absent(opencv):
            return _get(name)
    shown = f"`tracks.get({name!r})`" + (f" where OpenCV is {opencv}" if opencv else "")
    return Case(f"track: {title}", shown, call)


def _get(name: str) -> str:
    return tracks.get(name).__name__


def opencv(title: str, how: str) -> Case:
    def call(tmp: Path) -> Any:
        with opencv_absent(how):
            tracks.require_opencv("scoring masks")
    shown = ("`require_opencv('scoring masks')` where OpenCV is not installed" if how == "missing" else
             "`require_opencv('scoring masks')` where importing OpenCV fails for want of libGL.so.1")
    return Case(f"OpenCV: {title}", shown, call)


TEMPLATE = README_TEMPLATE.encode()

CASES = [
    # ---------------------------------------------------------------- readme.txt: encodings
    readme("the template", TEMPLATE, "readme.txt is the template:\n\n```\n" + README_TEMPLATE + "```"),
    readme("Windows line ends, a byte-order mark and blank lines", b"\xef\xbb\xbf\r\n" + TEMPLATE.replace(
        b"\n", b"\r\n\r\n"), "the template with Windows line ends (CR LF), a UTF-8 byte-order mark, a blank line "
           "first and a blank line after every line"),
    readme("UTF-16 with a byte-order mark (Notepad's \"Unicode\")", README_TEMPLATE.encode("utf-16"),
           "the template in UTF-16, little-endian with a byte-order mark"),
    readme("UTF-16 big-endian with a byte-order mark", b"\xfe\xff" + README_TEMPLATE.encode("utf-16-be"),
           "the template in UTF-16, big-endian with a byte-order mark"),
    readme("UTF-16 without a byte-order mark", README_TEMPLATE.encode("utf-16-le"),
           "the template in UTF-16, little-endian without a byte-order mark"),
    readme("UTF-16 big-endian without a byte-order mark, one short line", "1\n".encode("utf-16-be")),
    readme("four zero bytes", b"\x00\x00\x00\x00"),
    readme("an odd number of bytes with zeros between", b"1\x00:\x00 "),
    readme("Latin-1 text (not UTF-8)", lines((4, "Other description : résumé")).decode().encode("latin-1"),
           "the template with line 5 `Other description : résumé`, in Latin-1"),
    # ---------------------------------------------------------------- readme.txt: missing lines and keys
    readme("an empty file", b""),
    readme("only blank lines", b"\n  \n\t\n"),
    readme("two lines", b"runtime per image [s] : 0.5\nCPU[1] / GPU[0] : 0\n"),
    readme("blank lines, then three lines", b"\n\nruntime per image [s] : 0.5\n\nCPU[1] / GPU[0] : 0\n"
           b"Extra Data [1] / No Extra Data [0] : 1\n"),
    line_case("a line without a colon", (1, "CPU[1] / GPU[0] = 1")),
    line_case("keys spelled without spaces, in capitals, with a tab", (0, "Runtime per image[s]: 2"),
              (1, "cpu[1]/gpu[0] :1"), (2, "EXTRA DATA [1] / NO EXTRA DATA [0] : 0"),
              (3, "LLM[1]\t/ Non-LLM[0] : 0")),
    line_case("a key that differs from the template", (0, "runtime [ms] : 3")),
    line_case("a key spelled with a look-alike letter (dotless ı)", (0, "runtıme per image [s] : 3")),
    line_case("keys in another order", (1, "Extra Data [1] / No Extra Data [0] : 1"),
              (2, "CPU[1] / GPU[0] : 1")),
    # ---------------------------------------------------------------- readme.txt: values
    line_case("a runtime with its unit", (0, "runtime per image [s] : 0.5 s")),
    line_case("a runtime with a decimal comma", (0, "runtime per image [s] : 0,5")),
    line_case("a runtime in exponent notation", (0, "runtime per image [s] : 1e-3")),
    line_case("an empty runtime", (0, "runtime per image [s] :")),
    line_case("a runtime in Arabic-Indic digits", (0, "runtime per image [s] : ١٢")),
    line_case("a runtime that is a whole number", (0, "runtime per image [s] : 12")),
    line_case("flags written as words", (1, "CPU[1] / GPU[0] : GPU"), (2, "Extra Data [1] / No Extra Data [0] : no"),
              (3, "LLM[1] / Non-LLM[0] : 2")),
    line_case("an empty flag", (3, "LLM[1] / Non-LLM[0] :")),
    line_case("a value holding a colon", (4, "Other description : see https://example.org: a CNN")),
    line_case("an empty description", (4, "Other description :")),
    line_case("a description over several lines", (4, "Other description : a CNN"),
              extra=("fine-tuned on the training set,", "with test-time augmentation")),
    line_case("a description on one more line", extra=("and a second line",)),
    line_case("every line wrong", (0, "time : fast"), (1, "gpu : yes"), (2, "Extra Data"), (3, "LLM : -1"),
              (4, "Notes :")),
    # ---------------------------------------------------------------- organizer JSON files
    json_file("a list", b'[{"img_path": "M/1.png"}]'),
    json_file("a byte-order mark before the JSON", b'\xef\xbb\xbf{"a": 1}'),
    json_file("a file that does not exist", None),
    json_file("a file that is not UTF-8", b'["\xff"]'),
    json_file("a file that is not JSON", b"[1, 2"),
    json_file("an empty file", b""),
    json_file("not JSON, with another error type", b"nope", OrganizerError),
    # ---------------------------------------------------------------- track names and OpenCV
    track("Track 1 by name", "align"),
    track("Track 1 needs no OpenCV", "align", "missing"),
    track("Track 2 by name", "structure"),
    track("Track 2 where OpenCV is not installed", "structure", "missing"),
    track("an unknown track name", "Align"),
    opencv("not installed", "missing"),
    opencv("installed but broken (a system library missing)", "broken"),
]
