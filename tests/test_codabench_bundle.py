"""codabench-bundle: bundles Codabench accepts as they are, with default and with full settings."""

from __future__ import annotations

import io
import json
import pickle
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import yaml
from codabench_check import check_bundle
from helpers import random_align, random_structure
from PIL import Image

from ntire_t2iqa import codalab
from ntire_t2iqa.codalab import bundle as bundle_mod
from ntire_t2iqa.codalab.bundle import DEFAULT_IMAGE, OPENCV_IMAGE, write_bundle, yaml_str
from ntire_t2iqa.codalab.config import BundleConfig, ConfigError, PhaseConfig, load_config, merge, parse_date

TRACKS = ("align", "structure")


def _reference(folder: Path, track: str, n: int, seed: int) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    if track == "align":
        path = folder / "eval.json"
        path.write_text(json.dumps(random_align(n, seed=seed)[1]))
    else:
        path = folder / "gt.pkl"
        path.write_bytes(pickle.dumps(random_structure(n, seed=seed)[1]))
    return path


def _unpack(zip_path: Path, dest: Path) -> Path:
    with zipfile.ZipFile(zip_path) as zf:
        zf.extractall(dest)
    return dest


def _columns(doc: dict) -> list[dict]:
    assert len(doc["leaderboards"]) == 1  # Codabench attaches leaderboards[0] to every phase
    return doc["leaderboards"][0]["columns"]


def _run_solution(root: Path, task: dict, track: str, keys: str, tmp: Path) -> dict:
    """The bundled task's solution through the platform's res/ref layout; returns scores.json."""
    inp = tmp / f"input_{task['index']}"
    shutil.copytree(root / "solutions" / f"task_{task['index']}", inp / "res")
    shutil.copytree(root / task["reference_data"], inp / "ref")
    assert codalab.run(inp, tmp / f"out_{task['index']}", track, keys) == 0
    return json.loads((tmp / f"out_{task['index']}" / "scores.json").read_text())


@pytest.mark.parametrize("track", TRACKS)
def test_default_bundle_passes_the_platform_checks(tmp_path, track) -> None:
    ref = _reference(tmp_path / "ref", track, 30 if track == "align" else 8, seed=5)
    root = _unpack(write_bundle(track, ref, tmp_path / "bundle.zip"), tmp_path / "bundle")
    assert check_bundle(root) == []
    doc = yaml.safe_load((root / "competition.yaml").read_text())
    assert doc["docker_image"] == (DEFAULT_IMAGE if track == "align" else OPENCV_IMAGE)
    assert doc["terms"] == "pages/terms.md" and doc["image"] == "logo.png"
    assert [p["title"] for p in doc["pages"]] == ["Overview", "Evaluation", "Terms"]
    (phase,) = doc["phases"]
    assert phase["tasks"] == [0] and "end" not in phase and phase["max_submissions_per_day"] == 5
    board = doc["leaderboards"][0]
    assert board["submission_rule"] == "Force_Best" and board["primary_index"] == 0  # as `rank --pick best`
    keys = [c["key"] for c in _columns(doc)]
    assert keys[0] == "Final_Score" and set(keys) == {c.key for c in codalab.all_columns(track)}
    assert (root / "reference_data" / ref.name).read_bytes() == ref.read_bytes()
    # The columns are exactly what the bundled program writes.
    scores = _run_solution(root, doc["tasks"][0], track, "official", tmp_path)
    assert set(scores) == set(keys)


def _full_settings(tmp_path: Path, track: str, fmt: str) -> tuple[Path, dict]:
    """A settings file using every option: pages, a JPEG logo, two phases on two references, limits, rule."""
    base = tmp_path / "settings"
    (base / "pages").mkdir(parents=True)
    for name in ("overview", "evaluation", "data", "terms"):
        text = f"# {name.title()}\n\nOrganizer's {name} page: \u00e9t\u00e9 \u2713\n"
        (base / "pages" / f"{name}.md").write_text(text, encoding="utf-8")
    Image.new("RGB", (64, 48), (200, 10, 10)).save(base / "logo.jpeg", "JPEG")
    val = _reference(base / "val", track, 24 if track == "align" else 6, seed=6)
    test = _reference(base / "test", track, 30 if track == "align" else 7, seed=7)
    settings = {
        "title": 'NTIRE 2025 "T2I" quality: #1 \u2014 test', "description": "Line one.\nLine two: !!python/object",
        "logo": "logo.jpeg", "docker_image": "example/scoring:py39-cv2", "leaderboard_rule": "last",
        "keys": "toolkit" if fmt == "json" else "official", "registration_auto_approve": True,
        "contact_email": "organizers@example.org",
        "pages": {name: f"pages/{name}.md" for name in ("overview", "evaluation", "data", "terms")},
        "phases": [
            {"name": "Development", "start": "2025-01-30", "end": "2025-03-14 23:59:59",
             "reference": f"val/{val.name}", "max_submissions_per_day": 5, "max_submissions": 100,
             "execution_time_limit": 900, "description": "Validation set."},
            {"name": "Final", "start": "2025-03-15 00:00:00", "end": "2025-03-21", "reference": f"test/{test.name}",
             "max_submissions_per_day": 2, "max_submissions": 3, "execution_time_limit": 1200},
        ],
    }
    if fmt == "json":
        path = base / "competition.json"
        path.write_text(json.dumps(settings))
    else:
        lines = [f"{k} = {json.dumps(v)}" for k, v in settings.items() if not isinstance(v, (dict, list))]
        lines.append("[pages]")
        lines += [f"{k} = {json.dumps(v)}" for k, v in settings["pages"].items()]
        for phase in settings["phases"]:
            lines.append("[[phases]]")
            lines += [f"{k} = {json.dumps(v)}" for k, v in phase.items()]
        path = base / "competition.toml"
        path.write_text("\n".join(lines) + "\n")
    return path, {"val": val, "test": test, **settings}


@pytest.mark.parametrize("fmt", ["toml", "json"])
@pytest.mark.parametrize("track", TRACKS)
def test_full_settings_bundle_passes_the_platform_checks(tmp_path, track, fmt) -> None:
    path, settings = _full_settings(tmp_path, track, fmt)
    root = _unpack(write_bundle(track, None, tmp_path / "bundle.zip", load_config(path)), tmp_path / "bundle")
    assert check_bundle(root) == []
    doc = yaml.safe_load((root / "competition.yaml").read_text())
    assert doc["title"] == settings["title"] and doc["description"] == settings["description"]
    assert doc["docker_image"] == "example/scoring:py39-cv2" and doc["registration_auto_approve"] is True
    assert doc["contact_email"] == "organizers@example.org"
    assert (root / doc["image"]).read_bytes() == (path.parent / "logo.jpeg").read_bytes()
    assert doc["image"] == "logo.jpg"
    assert [p["title"] for p in doc["pages"]] == ["Overview", "Evaluation", "Data", "Terms"]
    for page in doc["pages"]:
        given = path.parent / "pages" / f"{page['title'].lower()}.md"
        assert (root / page["file"]).read_bytes() == given.read_bytes()
    dev, final = doc["phases"]
    assert (dev["name"], dev["start"], dev["end"]) == ("Development", "2025-01-30 00:00:00", "2025-03-14 23:59:59")
    assert (final["start"], final["end"]) == ("2025-03-15 00:00:00", "2025-03-21 00:00:00")
    assert (dev["max_submissions_per_day"], dev["max_submissions"], dev["execution_time_limit"]) == (5, 100, 900)
    assert (final["max_submissions_per_day"], final["max_submissions"], final["execution_time_limit"]) == (2, 3, 1200)
    assert dev["tasks"] == [0] and final["tasks"] == [1] and dev["description"] == "Validation set."
    tasks = {t["index"]: t for t in doc["tasks"]}
    for index, split in ((0, "val"), (1, "test")):
        ref = settings[split]
        assert (root / tasks[index]["reference_data"] / ref.name).read_bytes() == ref.read_bytes()
    board = doc["leaderboards"][0]
    assert board["submission_rule"] == "Force_Last"  # as `rank --pick last`
    keys = [c["key"] for c in _columns(doc)]
    assert keys[0] == codalab.main_key(track, settings["keys"])
    for task in doc["tasks"]:
        assert set(_run_solution(root, task, track, settings["keys"], tmp_path)) == set(keys)
    score_py = (root / "scoring_program" / "score.py").read_text()
    assert f"keys={settings['keys']!r}" in score_py and f"{track!r}" in score_py


def _valid_root(tmp_path: Path) -> Path:
    ref = _reference(tmp_path / "ref", "align", 12, seed=8)
    return _unpack(write_bundle("align", ref, tmp_path / "b.zip", BundleConfig(solutions=False)), tmp_path / "b")


_BREAKS = {
    "no terms": (lambda d: d.pop("terms"), "terms: missing"),
    "no logo": (lambda d: d.pop("image"), "image: missing"),
    "logo not an image": (lambda d: d.update(image="pages/terms.md"), "is not a readable image"),
    "page file missing": (lambda d: d["pages"][0].update(file="pages/nope.md"), "is not in the bundle"),
    "phases overlap": (lambda d: d["phases"].append({**d["phases"][0], "index": 1, "name": "Final"}),
                       "must have an end"),
    "phase ends before start": (lambda d: d["phases"][0].update(end="2000-01-01 00:00:00"), "ends before it starts"),
    "duplicate column key": (lambda d: _columns(d)[1].update(key=_columns(d)[0]["key"]), "unique keys"),
    "duplicate column index": (lambda d: _columns(d)[1].update(index=0), "unique indexes"),
    "column title too long": (lambda d: _columns(d)[0].update(title="x" * 37), "column title: 37 characters"),
    "bad sorting": (lambda d: _columns(d)[0].update(sorting="up"), "sorting 'up'"),
    "bad rule": (lambda d: d["leaderboards"][0].update(submission_rule="Best"), "submission_rule 'Best'"),
    "undefined task": (lambda d: d["phases"][0].update(tasks=[3]), "are not all defined"),
    "no scoring program": (lambda d: d["tasks"][0].pop("scoring_program"), "no scoring program"),
}


@pytest.mark.parametrize("name", sorted(_BREAKS))
def test_the_checker_finds_what_the_platform_refuses(tmp_path, name) -> None:
    root = _valid_root(tmp_path)
    doc = yaml.safe_load((root / "competition.yaml").read_text())
    breaker, expected = _BREAKS[name]
    breaker(doc)
    (root / "competition.yaml").write_text(yaml.safe_dump(doc))
    problems = check_bundle(root)
    assert any(expected in p for p in problems), problems


@pytest.mark.parametrize("text", ['a "quoted" title: with # and !!python/object/apply:os.system', "two\nlines\t\x07",
                                  "caf\u00e9 \u4e2d\u6587 \U0001f600", "\\x41 back\\slash", "- [not] {a} &list *ref"])
def test_yaml_strings_read_back_exactly(text) -> None:
    assert yaml.safe_load(f"key: {yaml_str(text)}\n") == {"key": text}
    assert yaml_str(text).isascii()


def _error(tmp_path, config, reference="ref") -> str:
    ref = _reference(tmp_path / "ref", "align", 10, seed=9) if reference == "ref" else reference
    with pytest.raises(ConfigError) as info:
        write_bundle("align", ref, tmp_path / "b.zip", config)
    assert not (tmp_path / "b.zip").exists()  # nothing is written before every setting is checked
    return str(info.value)


def test_settings_the_platform_would_refuse_are_refused_first(tmp_path) -> None:
    day = parse_date("x", "2025-03-01")
    overlap = [PhaseConfig("Dev", parse_date("x", "2025-01-30"), day), PhaseConfig("Final", day)]
    assert "start after the previous one has ended" in _error(tmp_path, BundleConfig(phases=overlap))
    open_ended = [PhaseConfig("Dev", parse_date("x", "2025-01-30")), PhaseConfig("Final", day)]
    assert "has no end, but a phase follows it" in _error(tmp_path, BundleConfig(phases=open_ended))
    assert "ends before it starts" in _error(tmp_path, BundleConfig(phases=[PhaseConfig("D", day, day)]))
    assert "best or last" in _error(tmp_path, BundleConfig(leaderboard_rule="first"))
    assert "1 to 256 characters" in _error(tmp_path, BundleConfig(title="t" * 257))
    assert "same name twice" in _error(tmp_path, BundleConfig(phases=[
        PhaseConfig("D", day, parse_date("x", "2025-03-02")), PhaseConfig("D", parse_date("x", "2025-03-03"))]))
    assert "has no reference" in _error(tmp_path, BundleConfig(), reference=None)
    (tmp_path / "empty.md").write_text("  \n")
    assert "empty" in _error(tmp_path, BundleConfig(pages={"terms": tmp_path / "empty.md"}))
    (tmp_path / "logo.png").write_text("not an image")
    assert "is not an image" in _error(tmp_path, BundleConfig(logo=tmp_path / "logo.png"))
    Image.new("RGB", (8, 8)).save(tmp_path / "logo.bmp", "BMP")
    assert "Codabench accepts PNG" in _error(tmp_path, BundleConfig(logo=tmp_path / "logo.bmp"))
    (tmp_path / "opencv_python-4.10.0.84-cp37-abi3-manylinux2014_x86_64.whl").write_bytes(b"")
    assert "libGL" in _error(tmp_path, BundleConfig(
        opencv_wheel=tmp_path / "opencv_python-4.10.0.84-cp37-abi3-manylinux2014_x86_64.whl"))
    assert "not a date" in str(pytest.raises(ConfigError, parse_date, "start", "30/01/2025").value)


def test_settings_file_errors_name_the_setting(tmp_path) -> None:
    for text, expected in (('titel = "x"\n', "titel: is not a setting"),
                           ('[[phases]]\nname = "D"\nstrat = "2025-01-01"\n', "phases[0].strat: is not a phase"),
                           ('[[phases]]\nmax_submissions = 0\n', "must be at least 1"),
                           ('solutions = "yes"\n', "must be true or false"),
                           ("title = \n", "is not valid TOML")):
        (tmp_path / "s.toml").write_text(text)
        with pytest.raises(ConfigError) as info:
            load_config(tmp_path / "s.toml")
        assert expected in str(info.value), (text, str(info.value))
    phases = BundleConfig(phases=[PhaseConfig("A"), PhaseConfig("B")])
    with pytest.raises(ConfigError, match="apply to a single phase"):
        merge(phases, phase_max_submissions=3)


def test_cli_writes_a_bundle_from_options(tmp_path) -> None:
    ref = _reference(tmp_path / "ref", "align", 12, seed=10)
    (tmp_path / "terms.md").write_text("# Terms\n\nBe nice.\n")
    exe = Path(sys.executable).with_name("ntire-t2iqa")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "ntire_t2iqa"]
    proc = subprocess.run([*cmd, "codabench-bundle", str(tmp_path / "b.zip"), "--track", "align", "--ref", str(ref),
                           "--title", "My challenge", "--terms", str(tmp_path / "terms.md"), "--start", "2025-02-01",
                           "--end", "2025-02-28 12:00", "--per-day", "3", "--total", "20", "--time-limit", "300",
                           "--leaderboard-rule", "last", "--keys", "toolkit", "--no-solution"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    root = _unpack(tmp_path / "b.zip", tmp_path / "b")
    assert check_bundle(root) == []
    doc = yaml.safe_load((root / "competition.yaml").read_text())
    assert doc["title"] == "My challenge" and "solutions" not in doc and not (root / "solutions").exists()
    (phase,) = doc["phases"]
    assert (phase["start"], phase["end"], phase["max_submissions_per_day"], phase["max_submissions"],
            phase["execution_time_limit"]) == ("2025-02-01 00:00:00", "2025-02-28 12:00:00", 3, 20, 300)
    assert doc["leaderboards"][0]["submission_rule"] == "Force_Last"
    assert [c["key"] for c in _columns(doc)][:4] == ["main_score", "srcc", "plcc", "acc"]
    assert (root / "pages" / "terms.md").read_text() == "# Terms\n\nBe nice.\n"
    bad = subprocess.run([*cmd, "codabench-bundle", str(tmp_path / "c.zip"), "--track", "align", "--ref", str(ref),
                          "--start", "2025-03-01", "--end", "2025-02-01"], capture_output=True, text=True, timeout=300)
    assert bad.returncode == 2 and "ends before it starts" in bad.stderr and "Traceback" not in bad.stderr


def test_default_logo_is_a_png_codabench_reads() -> None:
    for track in TRACKS:
        with Image.open(io.BytesIO(bundle_mod.default_logo(track))) as image:
            assert image.format == "PNG" and image.size == (256, 256)


def test_the_example_settings_file_builds_a_valid_bundle(tmp_path) -> None:
    """docs/codabench_competition.toml as the README uses it (references of `data synth demo/`)."""
    example = Path(__file__).resolve().parent.parent / "docs" / "codabench_competition.toml"
    (tmp_path / "docs").mkdir()
    shutil.copy(example, tmp_path / "docs" / example.name)
    _reference(tmp_path / "demo" / "align", "align", 20, seed=11)
    (tmp_path / "demo" / "align" / "eval.json").rename(tmp_path / "demo" / "align" / "val_eval.json")
    _reference(tmp_path / "demo" / "align", "align", 20, seed=12)
    (tmp_path / "demo" / "align" / "eval.json").rename(tmp_path / "demo" / "align" / "test_eval.json")
    config = load_config(tmp_path / "docs" / example.name)
    root = _unpack(write_bundle("align", None, tmp_path / "bundle.zip", config), tmp_path / "bundle")
    assert check_bundle(root) == []
    doc = yaml.safe_load((root / "competition.yaml").read_text())
    assert [p["name"] for p in doc["phases"]] == ["Development", "Final"] and len(doc["tasks"]) == 2
