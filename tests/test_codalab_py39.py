"""The bundled scoring program on Python 3.9 with numpy 1.22.4 and scipy 1.8.1 (codalab/codalab-legacy:py39).

A virtual environment with exactly those versions, and no OpenCV, rich, click or pandas, is built
once from pyenv's Python 3.9 and PyPI and kept in ``.cache/py39-scoring/`` (git-ignored); an
opencv-python-headless wheel is downloaded once beside it. The bundles are unpacked and their
own ``score.py`` is run in that environment through the platform's ``res``/``ref`` layout, and
the numbers are compared with ``ntire-t2iqa score`` in this one. ``REQUIRE_PY39=1`` (set in CI)
turns a missing interpreter or an unreachable package index into a failure instead of a skip.
"""

from __future__ import annotations

import ast
import fcntl
import glob
import json
import os
import pickle
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from helpers import align_zip, random_align, random_structure, structure_zip

from ntire_t2iqa import score
from ntire_t2iqa.codalab import scores_json, scores_txt
from ntire_t2iqa.codalab.bundle import write_bundle
from ntire_t2iqa.codalab.config import BundleConfig

PINS = ("numpy==1.22.4", "scipy==1.8.1")
OPENCV = "opencv-python-headless==4.10.0.84"
CACHE = Path(os.environ.get("NTIRE_PY39_CACHE", Path(__file__).resolve().parent.parent / ".cache" / "py39-scoring"))
REQUIRED = os.environ.get("REQUIRE_PY39") == "1"
#: Libraries the scoring path must not import (absent from the scoring images, or optional).
NOT_ON_SCORING_PATH = ("rich", "click", "pandas", "PIL", "zlib_ng")


def _unavailable(reason: str) -> None:
    if REQUIRED:
        pytest.fail(f"REQUIRE_PY39=1 but {reason}")
    pytest.skip(reason)


def _python39() -> str | None:
    """pyenv's newest 3.9 (or ``NTIRE_PY39``, or ``python3.9`` on PATH)."""
    if os.environ.get("NTIRE_PY39"):
        return os.environ["NTIRE_PY39"]
    roots = [os.environ.get("PYENV_ROOT", ""), os.path.expanduser("~/.pyenv")]
    try:
        roots.insert(0, subprocess.run(["pyenv", "root"], capture_output=True, text=True, timeout=30).stdout.strip())
    except (OSError, subprocess.TimeoutExpired):
        pass
    for root in filter(None, roots):
        found = sorted(glob.glob(os.path.join(root, "versions", "3.9.*", "bin", "python3.9")),
                       key=lambda p: [int(x) for x in Path(p).parents[1].name.split(".") if x.isdigit()])
        if found:
            return found[-1]
    return shutil.which("python3.9")


def _pip(python: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(python), "-m", "pip", "--disable-pip-version-check", "-q", *args],
                          capture_output=True, text=True, timeout=900)


@pytest.fixture(scope="module")
def py39() -> Path:
    """The cached 3.9 environment's interpreter (built on first use, under a lock)."""
    base = _python39()
    if base is None:
        _unavailable("no Python 3.9 interpreter (pyenv install 3.9, or set NTIRE_PY39)")
    CACHE.mkdir(parents=True, exist_ok=True)
    venv, marker = CACHE / "venv", CACHE / "venv" / ".pins"
    with open(CACHE / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (marker.exists() and marker.read_text() == "\n".join(PINS)):
            building = CACHE / f"venv.building-{os.getpid()}"
            shutil.rmtree(building, ignore_errors=True)
            made = subprocess.run([base, "-m", "venv", str(building)], capture_output=True, text=True, timeout=300)
            proc = _pip(building / "bin" / "python", "install", "--only-binary=:all:", *PINS) if made.returncode == 0 \
                else made
            if proc.returncode != 0:
                shutil.rmtree(building, ignore_errors=True)
                _unavailable(f"the Python 3.9 environment could not be built: {proc.stderr.strip()[-500:]}")
            (building / ".pins").write_text("\n".join(PINS))
            shutil.rmtree(venv, ignore_errors=True)
            building.rename(venv)  # scripts keep the old path, so the tests call `python -m pip` only
    return venv / "bin" / "python"


@pytest.fixture(scope="module")
def opencv_wheel(py39: Path) -> Path:
    """An opencv-python-headless wheel for Linux x86_64, downloaded once."""
    wheels = CACHE / "wheels"
    name = OPENCV.replace("-", "_").replace("==", "-")
    found = sorted(wheels.glob(f"{name}-*.whl"))
    if not found:
        proc = _pip(py39, "download", "--no-deps", "--only-binary=:all:", "--platform", "manylinux2014_x86_64",
                    "--python-version", "3.9", "-d", str(wheels), OPENCV)
        found = sorted(wheels.glob(f"{name}-*.whl"))
        if proc.returncode != 0 or not found:
            _unavailable(f"{OPENCV} could not be downloaded: {proc.stderr.strip()[-500:]}")
    return found[-1]


def _bundle(tmp_path: Path, track: str, wheel: Path | None = None) -> tuple[Path, Path, Path]:
    """(unpacked bundle, a submission zip, the reference file) for a small random challenge."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    if track == "align":
        sub, ref = random_align(60, seed=51)
        (tmp_path / "eval.json").write_text(json.dumps(ref))
        zip_path, ref_path = align_zip(tmp_path / "s.zip", sub), tmp_path / "eval.json"
    else:
        sub, ref = random_structure(16, seed=51)
        (tmp_path / "gt.pkl").write_bytes(pickle.dumps(ref))
        zip_path, ref_path = structure_zip(tmp_path / "s.zip", sub), tmp_path / "gt.pkl"
    config = BundleConfig(opencv_wheel=wheel, solutions=False)
    with zipfile.ZipFile(write_bundle(track, ref_path, tmp_path / "bundle.zip", config)) as zf:
        zf.extractall(tmp_path / "bundle")
    return tmp_path / "bundle", zip_path, ref_path


def _run(python: Path, root: Path, zip_path: Path, tmp_path: Path) -> tuple[subprocess.CompletedProcess, Path]:
    """The bundle's score.py in a fresh isolated interpreter, on INPUT/res (the unzipped upload) and INPUT/ref."""
    inp, out = tmp_path / "input", tmp_path / "output"
    with zipfile.ZipFile(zip_path) as zf:
        zf.extractall(inp / "res")
    (inp / "ref").symlink_to(root / "reference_data")
    proc = subprocess.run([str(python), "-I", str(root / "scoring_program" / "score.py"), str(inp), str(out)],
                          cwd=tmp_path, capture_output=True, text=True, timeout=600)
    return proc, out


def _same_scores(out: Path, zip_path: Path, ref_path: Path, track: str) -> None:
    expected = score(zip_path, ref_path, track=track)
    got = json.loads((out / "scores.json").read_text())
    want = scores_json(expected)
    assert got.keys() == want.keys()
    fitted = {"PLCC", "Final_Score"}  # the logistic fit: scipy 1.8's MINPACK stops a few 1e-8 from today's
    assert {k: v for k, v in got.items() if k not in fitted} == {k: v for k, v in want.items() if k not in fitted}
    for key in fitted:
        assert got[key] == pytest.approx(want[key], abs=1e-6), key
    assert (out / "scores.txt").read_text() == scores_txt(expected)  # the official 4-decimal output: identical


def test_every_bundled_file_compiles_on_python39(py39, tmp_path) -> None:
    root, _, _ = _bundle(tmp_path, "align")
    files = sorted(str(p) for p in (root / "scoring_program").rglob("*.py"))
    assert len(files) > 30
    probe = ("import py_compile, sys\nbad = []\nfor f in sys.argv[1:]:\n    try:\n        py_compile.compile(f, "
             "cfile=f + 'c', doraise=True)\n    except py_compile.PyCompileError as e:\n        bad.append(str(e))\n"
             "print('\\n'.join(bad))\nsys.exit(1 if bad else 0)\n")
    proc = subprocess.run([str(py39), "-I", "-c", probe, *files], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_track1_scores_on_python39_without_opencv(py39, tmp_path) -> None:
    probe = "import sys, numpy, scipy; print(sys.version_info[:2], numpy.__version__, scipy.__version__)"
    versions = subprocess.run([str(py39), "-I", "-c", probe], capture_output=True, text=True).stdout.strip()
    assert versions == "(3, 9) 1.22.4 1.8.1"
    assert subprocess.run([str(py39), "-I", "-c", "import cv2"], capture_output=True).returncode != 0
    root, zip_path, ref_path = _bundle(tmp_path, "align")
    proc, out = _run(py39, root, zip_path, tmp_path)
    assert proc.returncode == 0, proc.stderr
    _same_scores(out, zip_path, ref_path, "align")


def test_track2_without_opencv_says_so(py39, tmp_path) -> None:
    root, zip_path, _ = _bundle(tmp_path, "structure")
    proc, out = _run(py39, root, zip_path, tmp_path)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "Track 2 (structure) needs OpenCV (cv2), which this Python cannot import" in proc.stderr
    assert "--opencv-wheel" in proc.stderr
    assert sorted(p.name for p in out.iterdir()) == ["detailed_results.html"]
    assert "this is not a problem with the submission" in (out / "detailed_results.html").read_text()


def test_track2_scores_on_python39_with_bundled_opencv(py39, opencv_wheel, tmp_path) -> None:
    root, zip_path, ref_path = _bundle(tmp_path, "structure", opencv_wheel)
    proc, out = _run(py39, root, zip_path, tmp_path)
    assert proc.returncode == 0, proc.stderr
    _same_scores(out, zip_path, ref_path, "structure")


# --------------------------------------------------------------------------- what the scoring path imports

_PROBE = """
import json, os, sys
root = sys.argv[1]
sys.path[:0] = [os.path.join(root, "scoring_program"), os.path.join(root, "scoring_program", "vendor")]
from ntire_t2iqa.codalab.program import run
codes = [run(sys.argv[2], sys.argv[3] + "-1", "align"), run(sys.argv[4], sys.argv[3] + "-2", "structure")]
print(json.dumps({"codes": codes, "files": sorted(m.__file__ for n, m in list(sys.modules.items())
                  if n.split(".")[0] == "ntire_t2iqa" and getattr(m, "__file__", None)),
                  "top": sorted({n.split(".")[0] for n in sys.modules})}))
"""
_TYPE_NAMES = {"int", "float", "str", "bytes", "bool", "list", "dict", "tuple", "set", "frozenset", "type",
               "object", "complex", "None"}


def _typeish(node: ast.AST) -> bool:
    if isinstance(node, ast.Constant) and node.value is None:
        return True
    if isinstance(node, ast.Subscript):
        return True
    if isinstance(node, ast.Attribute):
        return node.attr[:1].isupper() and not node.attr.isupper()
    return isinstance(node, ast.Name) and (node.id in _TYPE_NAMES or (node.id[:1].isupper() and not node.id.isupper()))


def _newer_than_39(path: Path) -> list[str]:
    """Constructs that parse on 3.9 but fail there when run: ``X | Y`` of types outside annotations,
    ``zip(strict=)``, dataclass ``slots=``/``kw_only=``, ``int.bit_count``, ``itertools.pairwise``."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    annotations: set[int] = set()
    for node in ast.walk(tree):
        parts = []
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            args = node.args
            parts = [a.annotation for a in (*args.posonlyargs, *args.args, *args.kwonlyargs, args.vararg, args.kwarg)
                     if a is not None] + [node.returns]
        elif isinstance(node, ast.AnnAssign):
            parts = [node.annotation]
        for part in parts:
            if part is not None:
                annotations.update(id(n) for n in ast.walk(part))
    found = []
    for node in ast.walk(tree):
        line = f"{path.name}:{getattr(node, 'lineno', '?')}"
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr) and id(node) not in annotations \
                and (_typeish(node.left) or _typeish(node.right)):
            found.append(f"{line}: `X | Y` of types at run time")
        elif isinstance(node, ast.Call):
            name = getattr(node.func, "id", getattr(node.func, "attr", ""))
            words = {k.arg for k in node.keywords}
            if name == "zip" and "strict" in words:
                found.append(f"{line}: zip(strict=)")
            if name == "dataclass" and words & {"slots", "kw_only"}:
                found.append(f"{line}: dataclass(slots=/kw_only=)")
        elif isinstance(node, (ast.Attribute, ast.Name)) and getattr(node, "attr", getattr(node, "id", "")) in (
                "bit_count", "pairwise"):
            found.append(f"{line}: {getattr(node, 'attr', getattr(node, 'id', ''))} (3.10+)")
    return found


def test_scoring_path_needs_nothing_beyond_python39_numpy_scipy(py39, opencv_wheel, tmp_path) -> None:
    """Score both tracks in one 3.9 process, then check every toolkit module it loaded."""
    root, align_sub, _ = _bundle(tmp_path / "a", "align")
    root2, structure_sub, _ = _bundle(tmp_path / "s", "structure", opencv_wheel)
    inputs = []
    for name, sub, bundle_root in (("a", align_sub, root), ("s", structure_sub, root2)):
        inp = tmp_path / f"in-{name}"
        with zipfile.ZipFile(sub) as zf:
            zf.extractall(inp / "res")
        (inp / "ref").symlink_to(bundle_root / "reference_data")
        inputs.append(str(inp))
    proc = subprocess.run([str(py39), "-I", "-c", _PROBE, str(root2), inputs[0], str(tmp_path / "out"), inputs[1]],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    loaded = json.loads(proc.stdout.strip().splitlines()[-1])
    assert loaded["codes"] == [0, 0]
    assert not set(loaded["top"]) & set(NOT_ON_SCORING_PATH), loaded["top"]
    files = [Path(f) for f in loaded["files"]]
    assert any(f.name == "regions.py" for f in files) and any(f.name == "program.py" for f in files)
    problems = [p for f in files for p in _newer_than_39(f)]
    assert problems == []


def test_the_runtime_check_finds_what_it_looks_for(tmp_path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("from __future__ import annotations\nimport os\nfrom dataclasses import dataclass\n"
                   "P = str | os.PathLike\nok: int | None = None\n\ndef f(a: str | None) -> list[int] | None:\n"
                   "    return isinstance(a, int | float) or list(zip(a, a, strict=True)) or (1).bit_count()\n\n"
                   "@dataclass(slots=True)\nclass C:\n    x: int | None = None\n\nflags = 1 | 2\n")
    found = _newer_than_39(bad)
    assert sorted(f.split(": ", 1)[1] for f in found) == sorted([
        "`X | Y` of types at run time", "`X | Y` of types at run time", "zip(strict=)", "bit_count (3.10+)",
        "dataclass(slots=/kw_only=)"]), found
    assert sys.version_info >= (3, 10)  # the check itself runs on the toolkit's own Python
