"""The results store's pieces, value by value: bounds on stored texts, detail blobs, foreign files, scopes."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np
import pytest

from ntire_t2iqa.errors import StoreError
from ntire_t2iqa.leaderboard.predictions import Predictions
from ntire_t2iqa.leaderboard.store import (
    MAX_FIELD,
    MAX_PROBLEMS,
    Entry,
    Scope,
    Store,
    bounded_reason,
    pack_details,
    unpack_details,
)
from ntire_t2iqa.leaderboard.store import _bounded_metrics as bounded_metrics

SCOPE = Scope("align", "ref1", "official")


def test_a_stored_reason_keeps_known_fields_and_severities_only() -> None:
    assert MAX_PROBLEMS == 20 and MAX_FIELD == 500
    reason = [{"severity": "warning", "where": "w", "what": "x", "fix": "f"},
              {"severity": "info", "what": "odd severity"}, {}, "a bare string", None,
              {"severity": "error", "where": 7, "what": ["list"], "fix": "y" * 501, "extra": "dropped"}]
    assert bounded_reason(reason) == [
        {"severity": "warning", "where": "w", "what": "x", "fix": "f"},
        {"severity": "error", "where": "", "what": "odd severity", "fix": ""},
        {"severity": "error", "where": "", "what": "", "fix": ""},
        {"severity": "error", "where": "", "what": "", "fix": ""},
        {"severity": "error", "where": "", "what": "", "fix": ""},
        {"severity": "error", "where": "<int>", "what": "<list>", "fix": "y" * 500 + "… (501 characters)"},
    ]


def test_a_stored_reason_keeps_twenty_problems_then_counts_the_rest() -> None:
    twenty = [{"severity": "warning", "where": str(i), "what": "w", "fix": ""} for i in range(20)]
    assert bounded_reason(twenty) == twenty
    many = twenty + [{"what": "more"}] * 1234
    out = bounded_reason(many)
    assert out[:20] == twenty and len(out) == 21
    assert out[20] == {"severity": "error", "where": "", "fix": "",
                       "what": "... and 1,234 more problem(s) not kept here"}


def test_stored_metrics_have_their_texts_clipped_and_lists_capped() -> None:
    metrics = {"srcc": 0.5, "n": 3, "none": None, "note": "n" * 600, "k" * 501: 1,
               "warnings": [f"w{i}" for i in range(23)], "short": ["a", 5]}
    assert bounded_metrics(metrics) == {
        "srcc": 0.5, "n": 3, "none": None, "note": "n" * 500 + "… (600 characters)",
        "k" * 500 + "… (501 characters)": 1,
        "warnings": [f"w{i}" for i in range(20)] + ["... and 3 more"], "short": ["a", "<int>"]}
    assert bounded_metrics({"w": [f"w{i}" for i in range(20)]}) == {"w": [f"w{i}" for i in range(20)]}


def test_detail_blobs_hold_the_arrays_only_and_never_unpickle() -> None:
    details = {"gt": np.array([1.5, 2.0]), "n": np.arange(3, dtype=np.int64), "paths": ["a", "b"], "x": 3}
    blob = pack_details(details)
    out = unpack_details(blob)
    assert list(out) == ["gt", "n"]
    assert out["gt"].dtype == np.float64 and np.array_equal(out["gt"], [1.5, 2.0])
    assert out["n"].dtype == np.int64 and np.array_equal(out["n"], [0, 1, 2])
    assert unpack_details(None) == {} and unpack_details(b"") == {}
    import io

    buf = io.BytesIO()
    np.savez(buf, objects=np.array([{"a": 1}], dtype=object))
    with pytest.raises(ValueError, match="allow_pickle"):
        unpack_details(buf.getvalue())


def _foreign(path: Path, statements: list[str]) -> bytes:
    con = sqlite3.connect(path)
    for sql in statements:
        con.execute(sql)
    con.commit()
    con.close()
    return path.read_bytes()


OUR_TABLES = ["CREATE TABLE submissions (id INTEGER)", "CREATE TABLE results (sha256 TEXT)",
              "CREATE TABLE confidence (track TEXT)"]


@pytest.mark.parametrize("statements", [
    ["CREATE TABLE notes (x TEXT)"],
    [*OUR_TABLES],  # no meta table
    [*OUR_TABLES, "CREATE TABLE meta (key TEXT, value TEXT)"],  # no schema version in it
    [*OUR_TABLES, "CREATE TABLE meta (name TEXT)", "INSERT INTO meta VALUES ('schema_version')"],  # other columns
    [*OUR_TABLES[:2], "CREATE TABLE meta (key TEXT, value TEXT)", "INSERT INTO meta VALUES ('schema_version', '1')"],
], ids=["other-tables", "no-meta", "no-version", "meta-of-other-columns", "a-table-missing"])
def test_a_database_of_another_program_is_refused_and_left_unchanged(tmp_path: Path, statements: list[str]) -> None:
    before = _foreign(tmp_path / "other.db", statements)
    with pytest.raises(StoreError) as err:
        Store(tmp_path / "other.db")
    assert str(err.value) == (f"results store error: {tmp_path / 'other.db'}: is an SQLite database of another "
                              "program (it lacks the tables of a results store). Fix: Pass --db a results store, or "
                              "a new file name; the file was left unchanged.")
    assert (tmp_path / "other.db").read_bytes() == before


def _entry(sha: str, team: str = "t", track: str = "align") -> Entry:
    return Entry(track, team, f"{team}/{sha}.zip", sha, 10, 1, "2025-01-01T00:00:00")


def test_details_and_predictions_are_read_for_their_scope_only(tmp_path: Path) -> None:
    other = Scope("align", "ref2", "official")
    with Store(tmp_path / "s.db") as store:
        store.add_entries([_entry("a"), _entry("b")])
        blob = pack_details({"gt": np.array([1.0, 2.0])})
        preds = Predictions(totals=np.array([1.0, 2.0], dtype=np.float32))
        store.add_result(SCOPE, "a", "ok", 0.5, {"srcc": 0.5}, None, blob, preds)
        store.add_result(other, "a", "ok", 0.7, {"srcc": 0.7}, None, pack_details({"gt": np.array([9.0])}),
                         Predictions(totals=np.array([9.0], dtype=np.float32)))
        store.add_result(SCOPE, "b", "ok", 0.6, {"srcc": 0.6}, None, None, None)
        assert np.array_equal(store.details(SCOPE, "a")["gt"], [1.0, 2.0])
        assert np.array_equal(store.details(other, "a")["gt"], [9.0])
        assert store.details(SCOPE, "b") == {} and store.details(SCOPE, "zz") == {}
        assert store.details(Scope("align", "ref1", "poly3"), "a") == {}
        got = store.predictions(SCOPE)
        assert list(got) == ["a"] and np.array_equal(got["a"].totals, [1.0, 2.0])
        assert np.array_equal(store.predictions(other)["a"].totals, [9.0])
        assert store.predictions(Scope("structure", "ref1", "official")) == {}
        with store.transaction() as con:  # a row whose blobs disagree with its image count is left out
            con.execute("UPDATE predictions SET n_images = 5 WHERE ref_sha256 = 'ref2'")
        assert store.predictions(other) == {} and list(store.predictions(SCOPE)) == ["a"]


def test_bootstrap_results_replace_the_scope_s_and_only_for_their_board(tmp_path: Path) -> None:
    other = Scope("align", "ref2", "official")
    with Store(tmp_path / "s.db") as store:
        store.set_confidence(SCOPE, "board1", [("t1", "a", 0.1, 0.3, 0.25), ("t2", "b", 0.0, 0.2, None)], 100)
        store.set_confidence(other, "board9", [("t9", "z", 0.5, 0.6, 0.0)], 50)
        assert store.confidence(SCOPE, "board1") == {"t1": ("a", 0.1, 0.3, 0.25, 100),
                                                     "t2": ("b", 0.0, 0.2, None, 100)}
        assert store.confidence(SCOPE, "board2") == {}
        store.set_confidence(SCOPE, "board2", [("t3", "c", 0.2, 0.4, 0.5)], 200)
        assert store.confidence(SCOPE, "board2") == {"t3": ("c", 0.2, 0.4, 0.5, 200)}
        assert store.confidence(SCOPE, "board1") == {}
        assert store.confidence(other, "board9") == {"t9": ("z", 0.5, 0.6, 0.0, 50)}
        assert store.get_meta("confidence:align:ref1:official") == "board2"


def test_a_read_only_store_refuses_writes_and_a_missing_one_is_not_created(tmp_path: Path) -> None:
    with pytest.raises(StoreError) as err:
        Store(tmp_path / "none.db", readonly=True)
    assert "none.db" in str(err.value) and not (tmp_path / "none.db").exists()
    Store(tmp_path / "s.db").close()
    with Store(tmp_path / "s.db", readonly=True) as store:
        with pytest.raises(StoreError) as err:
            store.set_meta("k", 1)
        assert str(err.value) == f"results store error: {tmp_path / 's.db'}: was opened read-only."
        assert store.get_meta("k", "absent") == "absent"


def test_a_first_version_store_with_exactly_our_tables_is_accepted(tmp_path: Path) -> None:
    from ntire_t2iqa.leaderboard.storefile import TABLES

    _foreign(tmp_path / "old.db", [*OUR_TABLES, "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT)",
                                   "INSERT INTO meta VALUES ('schema_version', '1')"])
    assert TABLES == {"meta", "submissions", "results", "confidence"}
    with Store(tmp_path / "old.db", readonly=True) as store:
        assert store.tables == set(TABLES)


def test_known_hashes_are_found_by_path_size_and_time(tmp_path: Path) -> None:
    with Store(tmp_path / "s.db") as store:
        store.add_entries([_entry("a"), _entry("b", team="u")])
        assert store.known_hash("t/a.zip", 10, 1) == "a" and store.known_hash("u/b.zip", 10, 1) == "b"
        assert store.known_hash("t/a.zip", 10, 2) is None and store.known_hash("t/a.zip", 11, 1) is None
        assert store.known_hash("t/b.zip", 10, 1) is None


def test_rows_carry_every_field_filter_by_phase_and_show_refusals(tmp_path: Path) -> None:
    entries = [Entry("align", "t1", "t1/a.zip", "a", 1, 1, "2025-01-02", leader="L", phase="dev"),
               Entry("align", "t2", "t2/b.zip", "b", 1, 1, "2025-01-01", phase="final"),
               Entry("align", "t3", "t3/c.zip", "c", 1, 1, "2025-01-03", phase="final"),
               Entry("structure", "t4", "t4/d.zip", "d", 1, 1, "2025-01-01", phase="final")]
    with Store(tmp_path / "s.db") as store:
        store.add_entries(entries)
        store.add_result(SCOPE, "a", "ok", 0.5, {"srcc": 0.5}, None, None)
        store.add_result(SCOPE, "c", "invalid", None, None, [{"severity": "error", "where": "w", "what": "x"}], None)
        ids = {r["sha256"]: r["id"] for r in store.rows(SCOPE)}
        store.set_refused("align", {ids["b"]: "over the daily limit"})
        rows = store.rows(SCOPE)
        assert [r["sha256"] for r in rows] == ["b", "a", "c"]  # by submission time
        assert rows[1] == {"id": ids["a"], "team": "t1", "leader": "L", "phase": "dev", "path": "t1/a.zip",
                           "sha256": "a", "submitted_at": "2025-01-02", "status": "ok", "main_score": 0.5,
                           "metrics": {"srcc": 0.5}, "reason": None, "refused": None}
        assert rows[0]["refused"] == "over the daily limit" and rows[0]["status"] is None
        assert rows[2]["reason"] == [{"severity": "error", "where": "w", "what": "x", "fix": ""}]
        assert [r["sha256"] for r in store.rows(SCOPE, phase="final")] == ["b", "c"]
        assert [r["sha256"] for r in store.rows(SCOPE, phase="dev")] == ["a"]
        assert store.rows(SCOPE, phase="none") == []
        store.set_refused("align", {ids["c"]: "x" * 600})
        refused = {r["sha256"]: r["refused"] for r in store.rows(SCOPE)}
        assert refused == {"a": None, "b": None, "c": "x" * 500 + "… (600 characters)"}


def test_a_damaged_predictions_row_is_skipped_and_the_rest_read(tmp_path: Path) -> None:
    with Store(tmp_path / "s.db") as store:
        store.add_entries([_entry("a"), _entry("b")])
        for sha in ("a", "b"):
            store.add_result(SCOPE, sha, "ok", 0.5, {}, None, None,
                             Predictions(totals=np.array([1.0, 2.0], dtype=np.float32)))
        with store.transaction() as con:
            con.execute("UPDATE predictions SET n_images = 7 WHERE sha256 = 'a'")
        assert list(store.predictions(SCOPE)) == ["b"]


def test_a_damaged_page_is_found_before_anything_is_written(tmp_path: Path) -> None:
    Store(tmp_path / "s.db").close()
    data = bytearray((tmp_path / "s.db").read_bytes())
    data[3 * 4096:3 * 4096 + 8] = b"\xff" * 8  # a b-tree page header; the file header and our id stay intact
    (tmp_path / "s.db").write_bytes(bytes(data))
    with pytest.raises(StoreError) as err:
        Store(tmp_path / "s.db")
    assert str(err.value) == (f"results store error: {tmp_path / 's.db'}: is damaged (SQLite's quick_check fails). "
                              "Fix: Restore it from a backup, or pass --db a new file and rank again; the file was "
                              "left unchanged.")
    assert (tmp_path / "s.db").read_bytes() == bytes(data)


def test_a_store_that_cannot_be_opened_says_where_and_why(tmp_path: Path) -> None:
    (tmp_path / "plain").write_text("a file, not a folder")
    with pytest.raises(StoreError) as err:
        Store(tmp_path / "plain" / "s.db")
    assert str(err.value) == (f"results store error: {tmp_path / 'plain' / 's.db'}: cannot be opened: a folder on "
                              "its path is missing or is a file. Fix: Pass --db a path in an existing folder.")
    (tmp_path / "folder.db").mkdir()
    with pytest.raises(StoreError) as err:
        Store(tmp_path / "folder.db")
    assert str(err.value) == (f"results store error: {tmp_path / 'folder.db'}: is not a regular file. Fix: Pass --db "
                              "the path of a results store file.")
    assert not any((tmp_path / "folder.db").iterdir())


def test_a_reader_sees_what_a_writer_still_holds_in_its_wal(tmp_path: Path) -> None:
    with Store(tmp_path / "s.db") as writer:
        writer.add_entries([_entry("a")])
        assert Path(f"{tmp_path / 's.db'}-wal").stat().st_size > 0  # committed, not yet copied into the file
        with Store(tmp_path / "s.db", readonly=True) as reader:
            assert [r["sha256"] for r in reader.rows(SCOPE)] == ["a"]


def test_a_closed_store_says_so(tmp_path: Path) -> None:
    store = Store(tmp_path / "s.db")
    store.close()
    store.close()  # twice is fine
    with pytest.raises(StoreError) as err:
        store.rows(SCOPE)
    assert str(err.value) == f"results store error: {tmp_path / 's.db'}: is closed."


def test_an_sqlite_failure_while_opening_is_a_store_error_naming_the_file(tmp_path: Path, monkeypatch) -> None:
    from ntire_t2iqa.leaderboard import store as store_module

    def fail(con: sqlite3.Connection) -> None:
        raise sqlite3.OperationalError("disk I/O error")

    Store(tmp_path / "s.db").close()
    monkeypatch.setattr(store_module.migrate, "upgrade", fail)
    with pytest.raises(StoreError) as err:
        Store(tmp_path / "s.db")
    assert str(err.value) == (f"results store error: {tmp_path / 's.db'}: failed: OperationalError: disk I/O error. "
                              "Fix: Check the disk that holds it, then run again.")
