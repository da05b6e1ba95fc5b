"""What `integrity` reads: per-image predictions stored while scoring, mask fingerprints, Track 2
findings, and stores of schema 1 (read as they are, then upgraded with their predictions kept)."""

from __future__ import annotations

import hashlib
import json
import pickle
import sqlite3
from pathlib import Path

import cv2
import numpy as np
import pytest
from helpers import align_zip, blob_mask, random_align, random_structure, structure_zip

from ntire_t2iqa.leaderboard import rank, render
from ntire_t2iqa.leaderboard.integrity import analyse
from ntire_t2iqa.leaderboard.predictions import GRID, mask_fingerprint
from ntire_t2iqa.leaderboard.store import SCHEMA_VERSION, Store


def _grid_by_hand(mask: np.ndarray) -> np.ndarray:
    """32 x 32 cells, each the pixels [round(k h / 32), round((k + 1) h / 32)) of a side; set at half full."""
    h, w = mask.shape
    ey, ex = [(k * h + 16) // 32 for k in range(33)], [(k * w + 16) // 32 for k in range(33)]
    return np.array([[np.mean(mask[ey[i]:ey[i + 1], ex[j]:ex[j + 1]] != 0) >= 0.5 for j in range(GRID)]
                     for i in range(GRID)])


@pytest.mark.parametrize("size", [448, 512, 300, 1000])
def test_mask_fingerprint(size) -> None:
    rng = np.random.default_rng(size)
    mask = blob_mask(rng, size, 4)
    digest, grid = mask_fingerprint(mask)
    expected = _grid_by_hand(mask)
    assert expected.any() and np.array_equal(np.unpackbits(grid).astype(bool).reshape(GRID, GRID), expected)
    for same in (mask.copy(), np.ascontiguousarray(np.asfortranarray(mask))):
        assert mask_fingerprint(same)[0] == digest
    for other in (mask * np.uint8(255), mask.astype(np.float32), mask.astype(bool)):  # another array: a change
        assert mask_fingerprint(other)[0] != digest
        assert np.array_equal(mask_fingerprint(other)[1], grid)  # ... of the same shape on the grid
    moved = mask.copy()
    y, x = np.argwhere(mask)[len(np.argwhere(mask)) // 2]
    moved[y, x] = 0  # one pixel
    assert mask_fingerprint(moved)[0] != digest
    empty = mask_fingerprint(np.zeros((size, size), np.uint8))
    assert empty[0] == 0 and not empty[1].any()


def _team_masks(ref: dict, rng: np.random.Generator, score_noise: float) -> dict:
    """A normal team's Track 2 predictions: shifted reference masks plus its own false positives."""
    out = {}
    for name, r in ref.items():
        pm = cv2.resize(r["pred_area"], (448, 448), interpolation=cv2.INTER_NEAREST)
        pm = np.roll(pm, int(rng.integers(-12, 12)), axis=int(rng.integers(0, 2)))
        out[name] = {"score": r["score"] + float(rng.normal(0, score_noise)),
                     "pred_area": np.maximum(pm, blob_mask(rng, 448, int(rng.integers(0, 3))))}
    return out


def test_track2_probing_and_copying_are_found(tmp_path) -> None:
    _, ref = random_structure(30, seed=3)
    (tmp_path / "gt.pkl").write_bytes(pickle.dumps(ref))
    rng = np.random.default_rng(7)
    subs: dict[str, list[dict]] = {}
    for team, noise in (("honestA", 0.6), ("honestB", 0.8)):
        model = _team_masks(ref, rng, noise)
        subs[team] = [model, {n: {**p, "score": p["score"] + float(rng.normal(0, 0.2))} for n, p in model.items()}]
    chain = [_team_masks(ref, rng, 0.7)]
    names = sorted(ref)
    for name in names[3:6]:  # masks only: the score of every image stays the same
        nxt = {n: dict(p) for n, p in chain[-1].items()}
        square = np.zeros((448, 448), np.uint8)
        square[100:200, 100:200] = 1
        nxt[name]["pred_area"] = np.maximum(nxt[name]["pred_area"], square)
        chain.append(nxt)
    subs["prober"] = chain
    copy = {}
    for n, p in subs["honestA"][0].items():
        noisy = p["pred_area"].copy()
        noisy[tuple(rng.integers(0, 448, (2, 20)))] = 1  # 20 stray pixels per image
        copy[n] = {"score": p["score"] + float(rng.normal(0, 0.003)), "pred_area": noisy}
    subs["copier"] = [copy]
    for team, files in subs.items():
        (tmp_path / "subs" / team).mkdir(parents=True)
        for k, preds in enumerate(files):
            structure_zip(tmp_path / "subs" / team / f"s{k}.zip", preds)
    db = tmp_path / "lb.db"
    rank(tmp_path / "subs", "structure", tmp_path / "gt.pkl", db, workers=2)
    report = analyse(db, "structure")
    assert [(t.team, t.probes, t.flagged) for t in report.probing] == [("prober", 3, True)]
    assert sorted(report.data.image_name(i) for i in report.probing[0].images()) == names[3:6]
    assert [(p.team_a, p.team_b) for p in report.copies] == [("copier", "honestA")]
    m = report.copies[0].matches[0]
    assert {m.a.file, m.b.file} == {"s0.zip"} and m.pearson > 0.999 and m.agreement >= 0.9 and not m.identical
    grids = [np.unpackbits(np.stack([mask_fingerprint(p["pred_area"])[1] for p in s.values()]), axis=1).astype(bool)
             for s in (copy, subs["honestA"][0])]
    both, either = (grids[0] & grids[1]).sum(), (grids[0] | grids[1]).sum()
    assert m.agreement == pytest.approx(both / either)
    assert not report.baseline_copies and not report.data.notes


# --------------------------------------------------------------------------- schema 1 stores


def _probing_store(tmp_path: Path) -> tuple[Path, Path, Path]:
    sub, ref = random_align(80, seed=9)
    (tmp_path / "eval.json").write_text(json.dumps(ref))
    (tmp_path / "subs" / "p").mkdir(parents=True)
    (tmp_path / "subs" / "q").mkdir(parents=True)
    recs = [dict(r) for r in sub]
    for k in range(3):
        align_zip(tmp_path / "subs" / "p" / f"s{k}.zip", recs)
        recs = [dict(r) for r in recs]
        recs[10 + k]["total_score"] += 1.0
    align_zip(tmp_path / "subs" / "q" / "mine.zip", [{**r, "total_score": r["total_score"] + 1e-3 * (i % 3)}
                                                      for i, r in enumerate(sub)])
    db = tmp_path / "lb.db"
    rank(tmp_path / "subs", "align", tmp_path / "eval.json", db)
    return db, tmp_path / "subs", tmp_path / "eval.json"


def _to_schema_1(db: Path) -> None:
    """What ntire-t2iqa wrote before schema 2: the same tables, without predictions and refused."""
    with sqlite3.connect(db) as con:
        con.execute("DROP TABLE predictions")
        con.execute("DROP TABLE refused")
        con.execute("DELETE FROM meta WHERE key LIKE 'images:%' OR key LIKE 'limits:%'")
        con.execute("UPDATE meta SET value = '1' WHERE key = 'schema_version'")
        con.execute("PRAGMA user_version = 1")
    con.close()


def _stored(db: Path) -> list[tuple]:
    with sqlite3.connect(db) as con:
        rows = con.execute("SELECT sha256, track, ref_sha256, n_images, totals, decisions, n_decisions FROM "
                           "predictions ORDER BY sha256").fetchall()
    con.close()
    return rows


def _version(db: Path) -> int:
    return int.from_bytes(db.read_bytes()[60:64], "big")


def test_a_schema_1_store_is_read_as_it_is_then_upgraded_with_its_predictions(tmp_path) -> None:
    db, subs, ref = _probing_store(tmp_path)
    fresh = analyse(db, "align")
    original = _stored(db)
    assert len(original) == 4 and _version(db) == SCHEMA_VERSION == 2
    _to_schema_1(db)
    stamp = hashlib.sha256(db.read_bytes()).hexdigest()
    board = render(db, "align", "json")
    old = analyse(db, "align")  # read-only: predictions from the stored details
    assert hashlib.sha256(db.read_bytes()).hexdigest() == stamp and _version(db) == 1
    assert any("before schema 2" in n for n in old.data.notes)
    for report in (fresh, old):
        assert [(t.team, t.probes, t.single_image_probes) for t in report.probing] == [("p", 2, 2)]
        assert [(p.team_a, p.team_b) for p in report.copies] == [("p", "q")]
    order = sorted(r["img_path"] for r in json.loads(ref.read_text()))
    changed = sorted(order.index(json.loads(ref.read_text())[k]["img_path"]) for k in (10, 11))
    assert [old.data.image_name(i) for i in sorted(old.probing[0].images())] == \
        [f"image #{i + 1}" for i in changed]  # keys were not kept before schema 2: positions
    assert [fresh.data.image_name(i) for i in sorted(fresh.probing[0].images())] == [order[i] for i in changed]
    with Store(db):  # a writer's open upgrades it
        pass
    assert _version(db) == SCHEMA_VERSION and _stored(db) == original
    with sqlite3.connect(db) as con:
        assert con.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()[0] == "2"
        assert {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")} >= \
            {"predictions", "refused"}
    con.close()
    assert render(db, "align", "json") == board
    upgraded = analyse(db, "align")
    assert not upgraded.data.notes and upgraded.to_dict()["probing"][0]["bits_estimate"] == 2.0
