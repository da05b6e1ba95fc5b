"""Track 1 cases of the problem catalogue (``tests/catalogue.py``): output.json, eval.json, the inputs."""

from __future__ import annotations

import json
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
from catalogue import Case, read_from_zip

from ntire_t2iqa.archive import load_json_strict
from ntire_t2iqa.tracks import align

TITLE = "Track 1 (alignment): output.json, the reference and the inputs"

GOOD = {"img_path": "M/1.png", "total_score": 3.5, "element_score": {"cat (animal)": 0.75}}


def parse(title: str, text: str) -> Case:
    """output.json's text through the strict JSON loader and the record checks."""
    return Case(f"output.json: {title}", f"output.json is `{text}`",
                lambda tmp: align.parse_predictions(load_json_strict(text.encode(), align.OUTPUT, align._SHAPE_FIX)))


def parse_bytes(title: str, data: bytes) -> Case:
    """output.json's bytes read from a zip, as the validator reads them."""
    return Case(title, f"output.json holds the bytes `{data!r}`",
                lambda tmp: read_from_zip(tmp, align, "output.json", data))


def coverage(title: str, records: list[dict], expected: dict[str, list[str]], against: str = "inputs") -> Case:
    def call(tmp: Path) -> Any:
        parsed, problems = align.parse_predictions(records)
        assert not problems, problems
        return align.check_coverage(parsed, expected, against)
    return Case(title, f"records `{json.dumps(records)}`, expected `{json.dumps(expected)}` ({against})", call)


def unchecked(title: str, records: list[dict]) -> Case:
    def call(tmp: Path) -> Any:
        parsed, _ = align.parse_predictions(records)
        return align.unchecked_coverage(parsed)
    return Case(title, f"records `{json.dumps(records)}`, no inputs", call)


def reference(title: str, content: Any, name: str = "eval.json", folder: bool = False, raw: str | None = None,
              loader: str = "load_reference", sub: str = "data", beside: str = "") -> Case:
    """A reference (or inputs) file written to the folder ``sub`` (with an empty list in ``beside`` if named)
    and loaded by ``align.<loader>`` from the folder or the file."""
    def call(tmp: Path) -> Any:
        where = tmp / sub
        where.mkdir()
        if content is not None or raw is not None:
            (where / name).write_text(raw if raw is not None else json.dumps(content), encoding="utf-8")
        if beside:
            (where / beside).write_text("[]", encoding="utf-8")
        return getattr(align, loader)(where if folder else where / name)
    shown = raw if raw is not None else json.dumps(content)
    where = f"the folder holding `{name}`" if folder else f"`{name}`"
    return Case(title, f"{where} is `{shown}`" if content is not None or raw is not None
                else f"{where} does not exist", call)


def memory(title: str, records: list, shown: str) -> Case:
    """Records handed over as Python objects (the API's score/validate and pack), not read from JSON."""
    return Case(f"records in memory: {title}", f"the Python list {shown}", lambda tmp: align.parse_predictions(records))


def scoring(title: str, records: list[dict], ref: list[dict]) -> Case:
    """Checked records scored against a reference read from eval.json."""
    def call(tmp: Path) -> Any:
        parsed, problems = align.parse_predictions(records)
        assert not problems, problems
        (tmp / "eval.json").write_text(json.dumps(ref), encoding="utf-8")
        return align.compute(parsed, align.load_reference(tmp / "eval.json"), "official")
    return Case(f"scoring: {title}", f"records `{json.dumps(records)}`, eval.json `{json.dumps(ref)}`", call)


def rec(**change: Any) -> dict:
    out = dict(GOOD)
    out.update(change)
    return {k: v for k, v in out.items() if v is not ...}


CASES = [
    # ---------------------------------------------------------------- output.json: shape and records
    parse("a valid record", '[{"img_path": "M/1.png", "total_score": 3.5, "element_score": {"cat (animal)": 0.75}}]'),
    parse("integer scores are read as floats",
          '[{"img_path": "M/1.png", "total_score": 4, "element_score": {"a (x)": 1, "b (y)": 0}},'
          ' {"img_path": "M/2.png", "total_score": 1.25, "element_score": {}}]'),
    parse("an object keyed by img_path instead of a list", '{"M/1.png": {"total_score": 3.5, "element_score": {}}}'),
    parse("a string instead of records", '"not records"'),
    parse("an empty list", "[]"),
    parse("records that are not objects", "[1, null]"),
    parse("a record without img_path", '[{"total_score": 3, "element_score": {}}]'),
    parse("an empty img_path", '[{"img_path": "", "total_score": 3, "element_score": {}}]'),
    parse("an img_path that is a number", '[{"img_path": 7, "total_score": 3, "element_score": {}}]'),
    parse("an img_path given twice", '[{"img_path": "M/1.png", "total_score": 3, "element_score": {}},'
          ' {"img_path": "M/1.png", "total_score": 2, "element_score": {}}]'),
    parse("a record that repeats a key",
          '[{"img_path": "M/1.png", "img_path": "M/2.png", "total_score": 3, "element_score": {}}]'),
    parse("a record without total_score", '[{"img_path": "M/1.png", "element_score": {}}]'),
    parse("a total_score in a string", '[{"img_path": "M/1.png", "total_score": "3", "element_score": {}}]'),
    parse("a NaN total_score", '[{"img_path": "M/1.png", "total_score": NaN, "element_score": {}}]'),
    parse("a -Infinity total_score", '[{"img_path": "M/1.png", "total_score": -Infinity, "element_score": {}}]'),
    parse("a total_score that overflows a float",
          '[{"img_path": "M/1.png", "total_score": 1e999, "element_score": {}}]'),
    parse("an integer total_score too large for a float",
          '[{"img_path": "M/1.png", "total_score": ' + "9" * 320 + ', "element_score": {}}]'),
    parse("a boolean total_score", '[{"img_path": "M/1.png", "total_score": true, "element_score": {}}]'),
    parse("a record without element_score", '[{"img_path": "M/1.png", "total_score": 3}]'),
    parse("an element_score that is a list", '[{"img_path": "M/1.png", "total_score": 3, "element_score": [0.5]}]'),
    parse("an element_score that is null", '[{"img_path": "M/1.png", "total_score": 3, "element_score": null}]'),
    parse("an element key given twice",
          '[{"img_path": "M/1.png", "total_score": 3, "element_score": {"a (x)": 0.5, "a (x)": 0.7}}]'),
    parse("element scores that are not numbers",
          '[{"img_path": "M/1.png", "total_score": 3, "element_score": {"a (x)": "high", "b (y)": null}}]'),
    parse("a NaN element score", '[{"img_path": "M/1.png", "total_score": 3, "element_score": {"a (x)": NaN}}]'),
    parse("element scores outside 0..1",
          '[{"img_path": "M/1.png", "total_score": 3, "element_score": {"a (x)": 1.5, "b (y)": -0.25}},'
          ' {"img_path": "M/2.png", "total_score": 3, "element_score": {"c (z)": 2}}]'),
    parse("element scores at 0 and 1",
          '[{"img_path": "M/1.png", "total_score": 3, "element_score": {"a (x)": 0, "b (y)": 1}}]'),
    parse("a record that is wrong in every field", '[{"total_score": "x"}]'),
    parse("a long img_path and a null total_score",
          '[{"img_path": "M/' + "x" * 100 + '.png", "total_score": null, "element_score": {}}]'),
    parse("twelve bad totals (ten listed, the rest counted)",
          "[" + ", ".join(f'{{"img_path": "M/{i}.png", "total_score": "bad", "element_score": {{}}}}'
                          for i in range(12)) + "]"),
    parse("45 records that are not objects (the report is capped at 40)", "[" + ", ".join(["3"] * 45) + "]"),
    parse("output.json cut short", '[{"img_path": "M/1.png", "total_score": 3, "element_score": {}'),
    parse_bytes("output.json with a UTF-8 byte-order mark",
                b'\xef\xbb\xbf[{"img_path": "M/1.png", "total_score": 3, "element_score": {}}]'),
    parse_bytes("output.json that is not UTF-8", b'[{"img_path": "M/\xff.png"}]'),
    parse_bytes("output.json cut short, read from the submission", b'[{"img_path": "M/1.png", "total_score": 3'),
    parse_bytes("output.json without a byte-order mark",
                b'[{"img_path": "M/1.png", "total_score": 2, "element_score": {"a (b)": 0.5}}]'),
    # ---------------------------------------------------------------- records handed over in memory
    memory("numpy scores are read as floats",
           [{"img_path": "M/1.png", "total_score": np.float32(2.5), "element_score": {"a (x)": np.int64(1)}}],
           '`[{"img_path": "M/1.png", "total_score": np.float32(2.5), "element_score": {"a (x)": np.int64(1)}}]`'),
    memory("an integer too large for a float",
           [{"img_path": "M/1.png", "total_score": 10**400, "element_score": {"a (x)": 10**400}}],
           '`[{"img_path": "M/1.png", "total_score": 10**400, "element_score": {"a (x)": 10**400}}]`'),
    memory("scores that are Decimal and Fraction objects",
           [{"img_path": "M/1.png", "total_score": Decimal("3.5"), "element_score": {"a (x)": Fraction(1, 2)}}],
           '`[{"img_path": "M/1.png", "total_score": Decimal("3.5"), "element_score": {"a (x)": Fraction(1, 2)}}]`'),
    # ---------------------------------------------------------------- coverage against the inputs
    coverage("every image and key present",
             [rec(), rec(img_path="M/2.png", element_score={})], {"M/1.png": ["cat (animal)"], "M/2.png": []}),
    coverage("a missing image and an extra one",
             [rec(), rec(img_path="M/9.png")], {"M/1.png": ["cat (animal)"], "M/2.png": ["cat (animal)"]}),
    coverage("seven missing images (five named)", [rec()],
             {f"M/{i}.png": [] for i in range(1, 9)}),
    coverage("a missing element key and an extra one",
             [rec(element_score={"dog (animal)": 0.5})], {"M/1.png": ["cat (animal)"]}),
    coverage("element keys without their category suffix",
             [rec(element_score={"cat": 0.5, "red": 0.25}), rec(img_path="M/2.png", element_score={"sky": 1})],
             {"M/1.png": ["cat (animal)", "red (color)"], "M/2.png": ["sky (location)"]}),
    coverage("keys without suffix in one record, a wrong key in another",
             [rec(element_score={"cat": 0.5}), rec(img_path="M/2.png", element_score={"dog (animal)": 1})],
             {"M/1.png": ["cat (animal)"], "M/2.png": ["sky (location)"]}, "reference"),
    coverage("one bare key among others",
             [rec(element_score={"cat": 0.5, "red (color)": 1})], {"M/1.png": ["cat (animal)", "red (color)"]}),
    coverage("an extra key only", [rec(element_score={"cat (animal)": 0.5, "hat (object)": 1})],
             {"M/1.png": ["cat (animal)"]}, "reference"),
    coverage("extra keys in two records", [rec(element_score={"cat (animal)": 0.5, "hat (object)": 1}),
                                           rec(img_path="M/2.png", element_score={"sun (scene)": 1, "sky (scene)": 0})],
             {"M/1.png": ["cat (animal)"], "M/2.png": []}),
    unchecked("keys all without their category suffix",
              [rec(element_score={"cat": 0.5}), rec(img_path="M/2.png", element_score={"dog": 1})]),
    unchecked("one key with its suffix", [rec(element_score={"cat": 0.5, "dog (animal)": 1})]),
    unchecked("a key that is only a suffix", [rec(element_score={"(animal)": 0.5})]),
    unchecked("no element keys at all", [rec(element_score={})]),
    # ---------------------------------------------------------------- the reference (eval.json)
    reference("a reference in the averaged form",
              [{"img_path": "M/1.png", "total_score": 3.5, "element_score": {"cat (animal)": 1.0},
                "type": "animal", "prompt": "a cat"}]),
    reference("a reference in the raw form (per-annotator lists are averaged)",
              [{"img_path": "M/1.png", "total_score": [3, 4, 4], "element_score": {"cat (animal)": [1, 0, 1]},
                "type": "", "prompt": 7}, {"img_path": "M/2.png", "total_score": 2}]),
    reference("a reference with integer scores", [{"img_path": "M/1.png", "total_score": 4,
                                                   "element_score": {"a (x)": 1}}]),
    reference("a reference folder holding eval.json and another JSON file",
              [{"img_path": "M/1.png", "total_score": 2.0}], folder=True, beside="other.json"),
    reference("a reference folder holding two JSON files, neither eval.json",
              [{"img_path": "M/1.png", "total_score": 2.0}], name="a.json", folder=True, beside="b.json"),
    reference("a reference folder holding one other JSON file", [{"img_path": "M/1.png", "total_score": 2.0}],
              name="answers.json", folder=True),
    reference("a reference file that does not exist", None),
    reference("a reference folder without JSON files", None, folder=True),
    reference("a reference that is not JSON", None, raw="[{oops"),
    reference("a reference that is an object", {"M/1.png": 3}),
    reference("a reference record that is not an object", [1]),
    reference("a reference without records", []),
    reference("a reference record without img_path", [{"total_score": 3}]),
    reference("a reference record with an empty img_path", [{"img_path": "", "total_score": 3}]),
    reference("a reference that repeats an img_path",
              [{"img_path": "M/1.png", "total_score": 3}, {"img_path": "M/1.png", "total_score": 2}]),
    reference("a reference whose element_score is a list", [{"img_path": "M/1.png", "total_score": 3,
                                                              "element_score": [1]}]),
    reference("a reference without total_score", [{"img_path": "M/1.png"}]),
    reference("a reference with a string total_score", [{"img_path": "M/1.png", "total_score": "3"}]),
    reference("a reference with an empty vote list", [{"img_path": "M/1.png", "total_score": []}]),
    reference("a reference with a vote list holding a string", [{"img_path": "M/1.png", "total_score": [3, "x"]}]),
    reference("a reference with a NaN element score", None,
              raw='[{"img_path": "M/1.png", "total_score": 3, "element_score": {"a (x)": NaN}}]'),
    reference("a reference with an infinite total", None, raw='[{"img_path": "M/1.png", "total_score": Infinity}]'),
    # ---------------------------------------------------------------- the public inputs
    reference("inputs with null element scores",
              [{"img_path": "M/1.png", "element_score": {"cat (animal)": None, "red (color)": None}},
               {"img_path": "M/2.png", "element_score": None}, {"img_path": "M/3.png"}],
              name="test_inputs.json", loader="load_expected"),
    reference("an inputs folder named after its phase (val/val.json)",
              [{"img_path": "M/1.png", "element_score": {"a (x)": None}}], name="val.json", folder=True,
              loader="load_expected", sub="val", beside="test_inputs.json"),
    reference("an inputs folder holding test_inputs.json and another JSON file",
              [{"img_path": "M/2.png", "element_score": {"b (y)": None}}], name="test_inputs.json", folder=True,
              loader="load_expected", beside="other.json"),
    reference("an inputs record without img_path", [{"element_score": {}}], name="test_inputs.json",
              loader="load_expected"),
    reference("an inputs record whose element_score is a list", [{"img_path": "M/1.png", "element_score": ["a"]}],
              name="test_inputs.json", loader="load_expected"),
    reference("inputs that are not a list of objects", {"M/1.png": []}, name="test_inputs.json",
              loader="load_expected"),
    reference("an inputs folder holding one JSON file of another name", [{"img_path": "M/1.png", "element_score": {}}],
              name="public.json", folder=True, loader="load_expected"),
    reference("inputs that are not JSON", None, name="test_inputs.json", raw="[{oops", loader="load_expected"),
    reference("an inputs record whose img_path is a number", [{"img_path": 7, "element_score": {}}],
              name="test_inputs.json", loader="load_expected"),
    reference("an inputs record with an empty img_path", [{"img_path": "", "element_score": {}}],
              name="test_inputs.json", loader="load_expected"),
    # ---------------------------------------------------------------- scoring
    scoring("a submission that misses an image and a key of the reference",
            [rec(element_score={})], [{"img_path": "M/1.png", "total_score": 3, "element_score": {"cat (animal)": 1}},
                                      {"img_path": "M/2.png", "total_score": 2}]),
    reference("an inputs file that does not exist", None, name="test_inputs.json", loader="load_expected"),
    reference("an inputs file without records", [], name="test_inputs.json", loader="load_expected"),
]
