"""Track 2 cases of the problem catalogue (``tests/catalogue.py``): output.pkl, gt.pkl, the inputs, scoring."""

from __future__ import annotations

import json
import pickle
from pathlib import Path
from typing import Any

import numpy as np
from catalogue import Case, read_from_zip

from ntire_t2iqa.tracks import structure

TITLE = "Track 2 (structure): output.pkl, the reference and the inputs"


def u8(rows: list[list[int]]) -> np.ndarray:
    return np.array(rows, np.uint8)


#: a small 0/1 mask (the official program resizes every mask to 512 x 512, so any size is read)
MASK = u8([[0, 1], [0, 0]])
GOOD = {"score": 3.5, "pred_area": MASK}
ZERO512 = np.zeros((512, 512), np.uint8)


def square(x: int, y: int, k: int, value: int = 1, dtype: Any = np.uint8) -> np.ndarray:
    """A 512 x 512 mask with one ``k`` x ``k`` square of ``value`` at column ``x``, row ``y``."""
    mask = np.zeros((512, 512), dtype)
    mask[y:y + k, x:x + k] = value
    return mask


def parse(title: str, shown: str, obj: Any) -> Case:
    """Unpickled output.pkl content through the record checks."""
    return Case(f"output.pkl: {title}", f"output.pkl holds `{shown}`", lambda tmp: structure.parse_predictions(obj))


def read(title: str, shown: str, data: bytes) -> Case:
    """output.pkl's bytes read from a zip, as the validator reads them."""
    return Case(f"output.pkl: {title}", shown, lambda tmp: read_from_zip(tmp, structure, "output.pkl", data))


def coverage(title: str, names: list[str], expected: list[str], against: str = "inputs") -> Case:
    def call(tmp: Path) -> Any:
        records, problems = structure.parse_predictions({n: GOOD for n in names})
        assert not problems, problems
        return structure.check_coverage(records, expected, against)
    return Case(title, f"images `{json.dumps(names)}`, expected `{json.dumps(expected)}` ({against})", call)


def reference(title: str, shown: str, content: Any, name: str = "gt.pkl", folder: bool = False,
              raw: bytes | None = None, beside: tuple[str, ...] = ()) -> Case:
    """A reference pickled into the folder ``data`` (next to empty files named in ``beside``), loaded by
    ``structure.load_reference`` from the folder or the file."""
    def call(tmp: Path) -> Any:
        where = tmp / "data"
        where.mkdir()
        if content is not None or raw is not None:
            (where / name).write_bytes(raw if raw is not None else pickle.dumps(content))
        for other in beside:
            (where / other).write_bytes(b"")
        return structure.load_reference(where if folder else where / name)
    exists = content is not None or raw is not None
    if folder:
        files = ([name] if exists else []) + list(beside)
        place = "the folder `data`, holding " + (" and ".join(f"`{f}`" for f in files) or "no file")
        shown = f"{place}; `{name}` is `{shown}`" if exists else place
    else:
        shown = f"`{name}` is `{shown}`" if exists else f"`{name}` does not exist"
    return Case(f"gt.pkl: {title}", shown, call)


def ref_entry(title: str, shown: str, entry: Any, name: Any = "a") -> Case:
    """gt.pkl holding one image ``name`` with ``entry``."""
    return reference(title, f"{{{name!r}: {shown}}}", {name: entry})


def expected(title: str, shown: str, files: dict[str, Any], target: str) -> Case:
    """Files (JSON-dumped unless bytes; a name ending in / is a folder) written under the scratch folder, then
    ``structure.load_expected(target)``."""
    def call(tmp: Path) -> Any:
        for rel, content in files.items():
            path = tmp / rel
            if rel.endswith("/"):
                path.mkdir(parents=True, exist_ok=True)
                continue
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(content if isinstance(content, bytes) else json.dumps(content).encode())
        return structure.load_expected(tmp / target)
    return Case(f"inputs: {title}", shown, call)


def scored(title: str, shown: str, sub: dict, ref: dict) -> Case:
    """A submission scored against a reference (the coverage check, then the warnings of the result)."""
    def call(tmp: Path) -> Any:
        path = tmp / "gt.pkl"
        path.write_bytes(pickle.dumps(ref))
        records, problems = structure.parse_predictions(sub)
        assert not [p for p in problems if p.severity == "error"], problems
        result = structure.compute(records, structure.load_reference(path), "none")
        return result.warnings
    return Case(f"scoring: {title}", shown, call)


def many_bad() -> dict:
    """Eleven entries wrong in each way, in the order a report meets them."""
    obj: dict[Any, Any] = {i: GOOD for i in range(11)}
    obj.update({f"list{i}": [3.5] for i in range(11)})
    obj.update({f"empty{i}": {} for i in range(11)})
    obj.update({f"bad{i}": {"score": "3.5", "pred_area": MASK.astype(bool)} for i in range(11)})
    return obj


CASES = [
    # ---------------------------------------------------------------- output.pkl: shape and records
    parse("a valid entry", "{'a': {'score': 3.5, 'pred_area': uint8 [[0, 1], [0, 0]]}}", {"a": GOOD}),
    parse("integer and numpy scores are read as floats",
          "{'a': {'score': 4, ...}, 'b': {'score': np.float32(2.5), ...}, 'c': {'score': np.array(7), ...}, "
          "'d': {'score': np.array(1.5, np.float16), ...}} (each with a valid pred_area)",
          {"a": {"score": 4, "pred_area": MASK}, "b": {"score": np.float32(2.5), "pred_area": MASK},
           "c": {"score": np.array(7), "pred_area": MASK},
           "d": {"score": np.array(1.5, np.float16), "pred_area": MASK}}),
    parse("a list instead of a dict", "[{'score': 3.5, 'pred_area': ...}]", [GOOD]),
    parse("None instead of a dict", "None", None),
    parse("an empty dict", "{}", {}),
    parse("keys that are not strings",
          "{7: ..., 1.5: ..., True: ..., b'a.png': ..., b'x' * 40: ..., b'y' * 41: ..., 10**15 - 1: ..., "
          "10**15: ..., ('a',): ..., None: ..., 'a': ...} (each a valid entry)",
          {7: GOOD, 1.5: GOOD, True: GOOD, b"a.png": GOOD, b"x" * 40: GOOD, b"y" * 41: GOOD, 10**15 - 1: GOOD,
           10**15: GOOD, ("a",): GOOD, None: GOOD, "a": GOOD}),
    parse("entries that are not dicts", "{'a': [3.5], 'b': None, 'c': 3.5, 'd': {'score': 3.5, 'pred_area': ...}}",
          {"a": [3.5], "b": None, "c": 3.5, "d": GOOD}),
    parse("an entry without score", "{'a': {'pred_area': uint8 [[0, 1], [0, 0]]}}", {"a": {"pred_area": MASK}}),
    parse("an entry without pred_area", "{'a': {'score': 3.5}}", {"a": {"score": 3.5}}),
    parse("an empty entry", "{'a': {}}", {"a": {}}),
    parse("a long image name and an entry of the wrong type", "{'x' * 100: 'mask'}", {"x" * 100: "mask"}),
    parse("scores that are not finite numbers",
          "{'a': {'score': '3.5', ...}, 'b': {'score': None, ...}, 'c': {'score': float('nan'), ...}, "
          "'d': {'score': -float('inf'), ...}, 'e': {'score': True, ...}, 'f': {'score': 10**400, ...}, "
          "'g': {'score': np.array([3.5]), ...}, 'h': {'score': np.array(True), ...}, "
          "'i': {'score': np.array(np.inf), ...}, 'j': {'score': np.float64('nan'), ...}} "
          "(each with a valid pred_area)",
          {k: {"score": v, "pred_area": MASK} for k, v in
           {"a": "3.5", "b": None, "c": float("nan"), "d": -float("inf"), "e": True, "f": 10**400,
            "g": np.array([3.5]), "h": np.array(True), "i": np.array(np.inf), "j": np.float64("nan")}.items()}),
    parse("an entry with a bad score and a bad mask", "{'a': {'score': 'x', 'pred_area': [[0, 1]]}}",
          {"a": {"score": "x", "pred_area": [[0, 1]]}}),
    parse("eleven entries wrong in each way (the report is capped at 40)",
          "{0: ..., ..., 10: ... (integer keys), 'list0': [3.5], ..., 'list10': [3.5], 'empty0': {}, ..., "
          "'empty10': {}, 'bad0': {'score': '3.5', 'pred_area': <bool mask>}, ..., 'bad10': ...}", many_bad()),
    # ---------------------------------------------------------------- output.pkl: masks
    parse("masks that are not numpy arrays",
          "{'a': {'pred_area': [[0, 1]], ...}, 'b': {'pred_area': None, ...}, 'c': {'pred_area': 1, ...}}",
          {"a": {"score": 1, "pred_area": [[0, 1]]}, "b": {"score": 1, "pred_area": None},
           "c": {"score": 1, "pred_area": 1}}),
    parse("a boolean mask", "{'a': {'score': 3.5, 'pred_area': bool [[False, True]]}}",
          {"a": {"score": 3.5, "pred_area": np.array([[False, True]])}}),
    parse("masks of shape (1, H, W), (H, W, 3), (H,) and (H, W, 1, 1)",
          "{'a': uint8 (1, 2, 2), 'b': uint8 (2, 2, 3), 'c': uint8 (4,), 'd': uint8 (2, 2, 1, 1)} (as 'pred_area')",
          {"a": {"score": 1, "pred_area": MASK[None]}, "b": {"score": 1, "pred_area": np.zeros((2, 2, 3), np.uint8)},
           "c": {"score": 1, "pred_area": np.zeros(4, np.uint8)},
           "d": {"score": 1, "pred_area": np.zeros((2, 2, 1, 1), np.uint8)}}),
    parse("empty masks", "{'a': uint8 (0, 4), 'b': uint8 (4, 0), 'c': uint8 (1, 0, 1)} (as 'pred_area')",
          {"a": {"score": 1, "pred_area": np.zeros((0, 4), np.uint8)},
           "b": {"score": 1, "pred_area": np.zeros((4, 0), np.uint8)},
           "c": {"score": 1, "pred_area": np.zeros((1, 0, 1), np.uint8)}}),
    parse("masks of shape (H, W, 1) are read as (H, W)",
          "{'a': uint8 (2, 2), 'b': uint8 (2, 2, 1), 'c': uint8 (3, 3, 1)} (as 'pred_area')",
          {"a": GOOD, "b": {"score": 1, "pred_area": MASK[..., None]},
           "c": {"score": 2, "pred_area": np.eye(3, dtype=np.uint8)[..., None]}}),
    parse("masks one pixel high or wide", "{'row': uint8 [[0, 1, 0, 0]], 'col': uint16 [[0], [1], [0], [0]]} "
          "(as 'pred_area')", {"row": {"score": 1, "pred_area": u8([[0, 1, 0, 0]])},
                               "col": {"score": 2, "pred_area": np.array([[0], [1], [0], [0]], np.uint16)}}),
    parse("mask dtypes accepted at any size",
          "{'u8': uint8, 'u16': uint16, 'i16': int16, 'f32': float32, 'f64': float64, 'be': >u2} "
          "(each 2 x 2 [[0, 1], [0, 0]])",
          {k: {"score": 1, "pred_area": MASK.astype(d)} for k, d in
           {"u8": np.uint8, "u16": np.uint16, "i16": np.int16, "f32": np.float32, "f64": np.float64,
            "be": ">u2"}.items()}),
    parse("mask dtypes accepted only at 512 x 512",
          "{'i8': int8, 'i32': int32, 'i64': int64, 'u64': uint64, 'f16': float16, 'be': >i4} "
          "(each 512 x 512 with a 20 x 20 square of 1)",
          {k: {"score": 1, "pred_area": square(10, 10, 20, dtype=d)} for k, d in
           {"i8": np.int8, "i32": np.int32, "i64": np.int64, "u64": np.uint64, "f16": np.float16,
            "be": ">i4"}.items()}),
    parse("mask dtypes of the 512-only kind at another size",
          "{'i32': int32 (2, 2), 'f16': float16 (2, 2), 'be': >i8 (2, 2), 'i64': int64 (512, 511), "
          "'u64': uint64 (511, 512)} (as 'pred_area')",
          {"i32": {"score": 1, "pred_area": MASK.astype(np.int32)},
           "f16": {"score": 1, "pred_area": MASK.astype(np.float16)},
           "be": {"score": 1, "pred_area": MASK.astype(">i8")},
           "i64": {"score": 1, "pred_area": np.zeros((512, 511), np.int64)},
           "u64": {"score": 1, "pred_area": np.zeros((511, 512), np.uint64)}}),
    parse("mask dtypes the official scorer never handles",
          "{'u32': uint32 (512, 512), 'c64': complex64 (2, 2), 'str': <U1 (2, 2), 'obj': object (2, 2)} "
          "(as 'pred_area')",
          {"u32": {"score": 1, "pred_area": ZERO512.astype(np.uint32)},
           "c64": {"score": 1, "pred_area": MASK.astype(np.complex64)},
           "str": {"score": 1, "pred_area": np.array([["a", "b"], ["c", "d"]])},
           "obj": {"score": 1, "pred_area": MASK.astype(object)}}),
    parse("masks holding NaN or infinite values",
          "{'a': float32 [[0, nan]], 'b': float64 [[inf, 1]], 'c': float16 (512, 512) with one -inf} "
          "(as 'pred_area')",
          {"a": {"score": 1, "pred_area": np.array([[0, np.nan]], np.float32)},
           "b": {"score": 1, "pred_area": np.array([[np.inf, 1]])},
           "c": {"score": 1, "pred_area": square(0, 0, 1, value=-np.inf, dtype=np.float16)}}),
    # ---------------------------------------------------------------- output.pkl: heatmaps
    parse("masks with one value above 0 are not heatmaps",
          "{'a': uint8 0/255 square, 'b': float32 0/0.5 square, 'c': int16 0/-3 square, 'd': uint8 half 1} "
          "(512 x 512 as 'pred_area'; 'd' has exactly half its pixels at 1)",
          {"a": {"score": 1, "pred_area": square(5, 5, 30, 255)},
           "b": {"score": 1, "pred_area": square(5, 5, 30, 0.5, np.float32)},
           "c": {"score": 1, "pred_area": square(5, 5, 30, -3, np.int16)},
           "d": {"score": 1, "pred_area": np.repeat(u8([[1], [0]]), 256, axis=0).repeat(512, axis=1)}}),
    parse("masks that look like heatmaps",
          "{'neg': int16 8 x 8, 2 on 5 / 8 of the rows and -1 on the rest, 'levels': uint8 8 x 8 holding 0..63, "
          "'f': float32 8 x 8 holding 0..63 / 64, 'floor': 0/1 uint8 8 x 8 with 1 on 3 / 4 of the rows, "
          "'low': int16 8 x 8 with -1 on 5 / 8 of the rows and 2 on the rest} (as 'pred_area')",
          {"neg": {"score": 1, "pred_area": np.array([[2]] * 5 + [[-1]] * 3, np.int16).repeat(8, axis=1)},
           "levels": {"score": 1, "pred_area": np.arange(64, dtype=np.uint8).reshape(8, 8)},
           "f": {"score": 1, "pred_area": (np.arange(64, dtype=np.float32) / 64).reshape(8, 8)},
           "floor": {"score": 1, "pred_area": u8([[1]] * 6 + [[0]] * 2).repeat(8, axis=1)},
           "low": {"score": 1, "pred_area": np.array([[-1]] * 5 + [[2]] * 3, np.int16).repeat(8, axis=1)}}),
    parse("heatmaps sampled, and more than three",
          "{'big': float32 128 x 128 holding 0..16383, 'h2': int32 512 x 512 holding 0..(512 * 512 - 1), "
          "'h3': float64 4 x 4 holding 1..16, 'h4': uint16 5 x 5 holding 0..24} (as 'pred_area')",
          {"big": {"score": 1, "pred_area": np.arange(128 * 128, dtype=np.float32).reshape(128, 128)},
           "h2": {"score": 1, "pred_area": np.arange(512 * 512, dtype=np.int32).reshape(512, 512)},
           "h3": {"score": 1, "pred_area": np.arange(1, 17, dtype=np.float64).reshape(4, 4)},
           "h4": {"score": 1, "pred_area": np.arange(25, dtype=np.uint16).reshape(5, 5)}}),
    parse("masks with 16 and 17 distinct values above 0",
          "{'a': uint8 8 x 8 holding 1..16 and 48 zeros, 'b': uint8 8 x 8 holding 1..17 and 47 zeros} "
          "(as 'pred_area')",
          {"a": {"score": 1, "pred_area": np.pad(np.arange(1, 17, dtype=np.uint8), (0, 48)).reshape(8, 8)},
           "b": {"score": 1, "pred_area": np.pad(np.arange(1, 18, dtype=np.uint8), (0, 47)).reshape(8, 8)}}),
    # ---------------------------------------------------------------- output.pkl read from a zip
    read("read from a submission zip", "output.pkl is `pickle.dumps({'a': {'score': 3.5, 'pred_area': uint8 "
         "[[0, 1], [0, 0]]}})`", pickle.dumps({"a": GOOD})),
    read("not a pickle", "output.pkl holds the bytes `b'not a pickle'`", b"not a pickle"),
    read("a pickle that asks for a function", "output.pkl is `pickle.dumps({'a': {'score': 3.5, 'pred_area': "
         "print}})`", pickle.dumps({"a": {"score": 3.5, "pred_area": print}})),
    # ---------------------------------------------------------------- coverage against the inputs
    coverage("coverage: every image present", ["a", "b"], ["a", "b"]),
    coverage("coverage: a missing image and extra ones", ["a", "z", "c"], ["a", "b"]),
    coverage("coverage: seven missing images (five named)", ["a"], [f"img{i}" for i in range(7)], "reference"),
    Case("coverage: nothing to check without the inputs", "images `[\"a\"]`, no inputs",
         lambda tmp: structure.unchecked_coverage(structure.parse_predictions({"a": GOOD})[0])),
    # ---------------------------------------------------------------- the reference (gt.pkl)
    reference("a reference with 0/1 uint8 masks",
              "{'a': {'score': 3, 'pred_area': 512 x 512 uint8 with a 20 x 20 square of 1 at (10, 30)}, "
              "'b': {'score': 2.5, 'pred_area': 512 x 512 zeros}}",
              {"a": {"score": 3, "pred_area": square(10, 30, 20)}, "b": {"score": 2.5, "pred_area": ZERO512}}),
    reference("a reference with masks of other dtypes",
              "{'bool': bool, 'f32': float32, 'i64': int64, 'i16': int16 0/-1, 'u8x': uint8 0/1 with a "
              "second square of 1 in a non-contiguous view} (each 512 x 512, scores 1..5)",
              {"bool": {"score": 1, "pred_area": square(0, 0, 20, dtype=bool)},
               "f32": {"score": 2, "pred_area": square(1, 2, 20, dtype=np.float32)},
               "i64": {"score": np.int64(3), "pred_area": square(3, 4, 20, dtype=np.int64)},
               "i16": {"score": 4.0, "pred_area": square(3, 4, 20, value=-1, dtype=np.int16)},
               "u8x": {"score": np.float32(5), "pred_area": np.asfortranarray(square(5, 6, 20))}}),
    reference("a graded reference (levels other than 0 and 1)",
              "{'a': {'score': 3, 'pred_area': 512 x 512 uint8: 20 x 20 at 255, inside it 10 x 10 at 1}, "
              "'b': {'score': 2, 'pred_area': 512 x 512 uint8: 20 x 20 at 64}, 'c': 0/1 float64}",
              {"a": {"score": 3, "pred_area": np.maximum(square(0, 0, 20, 255), square(40, 40, 10))},
               "b": {"score": 2, "pred_area": square(8, 8, 20, 64)},
               "c": {"score": 1, "pred_area": square(8, 8, 20, dtype=np.float64)}}),
    reference("a reference folder holding gt.pkl and another pickle", "{'a': {'score': 3, 'pred_area': zeros}}",
              {"a": {"score": 3, "pred_area": ZERO512}}, folder=True, beside=("other.pkl",)),
    reference("a reference folder holding one other pickle", "{'a': {'score': 3, 'pred_area': zeros}}",
              {"a": {"score": 3, "pred_area": ZERO512}}, name="answers.pkl", folder=True),
    reference("a reference folder holding two pickles, neither gt.pkl", "{'a': {'score': 3, 'pred_area': zeros}}",
              {"a": {"score": 3, "pred_area": ZERO512}}, name="a.pkl", folder=True, beside=("b.pkl",)),
    reference("a reference folder without pickles", "", None, folder=True),
    reference("a reference file that does not exist", "", None),
    reference("a reference that is not a pickle", "b'not a pickle' (bytes)", None, raw=b"not a pickle"),
    reference("a reference that asks for a function", "{'a': print}", {"a": print}),
    reference("a reference that is a list", "[{'score': 3, 'pred_area': zeros}]",
              [{"score": 3, "pred_area": ZERO512}]),
    reference("a reference without images", "{}", {}),
    ref_entry("a reference keyed by a number", "{'score': 3, 'pred_area': zeros}", {"score": 3, "pred_area": ZERO512},
              name=7),
    ref_entry("a reference entry that is not a dict", "3", 3),
    ref_entry("a reference entry without score", "{'pred_area': zeros}", {"pred_area": ZERO512}),
    ref_entry("a reference score in a string", "{'score': '3', 'pred_area': zeros}",
              {"score": "3", "pred_area": ZERO512}),
    ref_entry("a NaN reference score", "{'score': nan, 'pred_area': zeros}",
              {"score": float("nan"), "pred_area": ZERO512}),
    ref_entry("a reference entry without pred_area", "{'score': 3}", {"score": 3}),
    ref_entry("a reference mask of another size", "{'score': 3, 'pred_area': uint8 zeros (512, 448)}",
              {"score": 3, "pred_area": np.zeros((512, 448), np.uint8)}),
    ref_entry("a reference mask with three channels", "{'score': 3, 'pred_area': uint8 zeros (512, 512, 3)}",
              {"score": 3, "pred_area": np.zeros((512, 512, 3), np.uint8)}),
    ref_entry("a reference mask of strings", "{'score': 3, 'pred_area': 512 x 512 <U1 array of ''}",
              {"score": 3, "pred_area": np.zeros((512, 512), "U1")}),
    ref_entry("a reference mask of complex numbers", "{'score': 3, 'pred_area': 512 x 512 complex64 zeros}",
              {"score": 3, "pred_area": np.zeros((512, 512), np.complex64)}),
    ref_entry("a reference mask that is a list", "{'score': 3, 'pred_area': [[0, 1]]}",
              {"score": 3, "pred_area": [[0, 1]]}),
    # ---------------------------------------------------------------- the public inputs
    expected("a JSON list of image names (extensions dropped)",
             "`names.json` is `[\"a.png\", \"b.JPG\", \"c.tif\", \"d\", \"e.webp\", \"f.jpeg\", \"g.bmp\"]`",
             {"names.json": ["a.png", "b.JPG", "c.tif", "d", "e.webp", "f.jpeg", "g.bmp"]}, "names.json"),
    expected("an info file keyed by image name", "`info.json` is `{\"b.png\": {\"prompt\": \"x\"}, \"a\": {}}`",
             {"info.json": {"b.png": {"prompt": "x"}, "a": {}}}, "info.json"),
    expected("a split folder holding its info file (val/val_info.json)",
             "the folder `val` holding `val_info.json` (`{\"x.png\": {}}`) and `images/y.png`",
             {"val/val_info.json": {"x.png": {}}, "val/images/y.png": b""}, "val"),
    expected("a split folder holding images/",
             "the folder `test` holding `images/b.png`, `images/a.JPG`, `images/notes.txt` and `c.png`",
             {"test/images/b.png": b"", "test/images/a.JPG": b"", "test/images/notes.txt": b"", "test/c.png": b""},
             "test"),
    expected("a folder of images", "the folder `imgs` holding `b.webp`, `a.jpeg`, `c.bmp`, `readme.txt` and `images` "
             "(a file)", {"imgs/b.webp": b"", "imgs/a.jpeg": b"", "imgs/c.bmp": b"", "imgs/readme.txt": b"",
                          "imgs/images": b""}, "imgs"),
    expected("a folder without images", "the folder `imgs` holding `readme.txt`", {"imgs/readme.txt": b""}, "imgs"),
    expected("a split folder whose images/ is empty", "the folder `test` holding `a.png` and an empty `images/`",
             {"test/a.png": b"", "test/images/": b""}, "test"),
    expected("an inputs file that is not JSON", "`names.json` holds `[\"a.png\"`", {"names.json": b'["a.png"'},
             "names.json"),
    expected("an inputs file that does not exist", "`names.json` does not exist", {}, "names.json"),
    expected("inputs that are a list of numbers", "`names.json` is `[1, 2]`", {"names.json": [1, 2]}, "names.json"),
    expected("inputs that are a string", "`names.json` is `\"a.png\"`", {"names.json": "a.png"}, "names.json"),
    # ---------------------------------------------------------------- scoring
    scored("a submission that misses a reference image",
           "output.pkl holds image 'a', gt.pkl holds 'a' and 'b' (zeros)",
           {"a": {"score": 1, "pred_area": ZERO512}},
           {"a": {"score": 1, "pred_area": ZERO512}, "b": {"score": 2, "pred_area": ZERO512}}),
    scored("an extra image and a graded reference",
           "output.pkl holds 'a', 'b', 'c' and 'x'; gt.pkl holds 'a' (a 20 x 20 square of 255), 'b' and 'c' (0/1)",
           {"a": {"score": 1, "pred_area": square(0, 0, 20)}, "b": {"score": 2, "pred_area": square(0, 0, 20)},
            "c": {"score": 3, "pred_area": ZERO512}, "x": {"score": 3, "pred_area": ZERO512}},
           {"a": {"score": 1, "pred_area": square(0, 0, 20, 255)}, "b": {"score": 2, "pred_area": square(0, 0, 20)},
            "c": {"score": 3, "pred_area": square(100, 100, 20)}}),
]
