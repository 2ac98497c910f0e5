"""Incremental refresh: a follow-on batch is resolved against the people already known,
changing only those it touches, and every earlier state stays recoverable."""

from __future__ import annotations

import shutil

import duckdb
import pyarrow as pa
import pytest

from veracity import pipeline, snapshots
from veracity.cli import main as cli
from veracity.consistency import compare_partitions
from veracity.errors import LakeError
from veracity.lake import Lake
from veracity.pipeline import run
from veracity.sql import query
from veracity.synthetic import generate
from veracity.synthetic.delta import generate_delta

PEOPLE, SEED = 2000, 17


def _copy(lake: Lake, to) -> Lake:
    shutil.copytree(lake.uri, to)
    return Lake.open(str(to))


def _xref(lake: Lake, run_id: str | None = None) -> dict[tuple[str, str], str]:
    rows = query(lake, "SELECT source_system, source_record_id, person_id FROM person_xref", run_id).to_pylist()
    return {(r["source_system"], r["source_record_id"]): r["person_id"] for r in rows}


def _partition(xref: dict) -> set[frozenset]:
    groups: dict[str, set] = {}
    for key, person in xref.items():
        groups.setdefault(person, set()).add(key)
    return {frozenset(g) for g in groups.values()}


def _state(lake: Lake) -> dict:
    """What a run leaves: the records, who they resolved to, the golden records."""
    clean = query(lake, "SELECT unique_id, batch_id FROM clean_person ORDER BY unique_id").to_pylist()
    person = query(lake, "SELECT * FROM person ORDER BY person_id").to_pylist()
    return {"clean": clean, "xref": _xref(lake), "person": person}


def _truth(lake: Lake, batch_id: str) -> list[dict]:
    return lake.read_table("truth", "records", f"{batch_id}.parquet").to_pylist()


@pytest.fixture(scope="module")
def lakes(tmp_path_factory):
    """(lake resolved once, the same lake after one incremental run, the delta)."""
    root = tmp_path_factory.mktemp("incremental")
    base = Lake.open(str(root / "base"), create=True)
    generate(base, PEOPLE, SEED)
    first = run(base)
    assert first.mode == "full"
    after = _copy(base, root / "after")
    delta = generate_delta(after, 1)
    second = run(after)
    return base, after, delta, first, second


def test_a_delta_scores_only_the_changes(lakes):
    base, after, delta, first, second = lakes
    assert second.mode == "incremental"
    assert second.records_scored < first.records_scored / 20
    assert second.records_scored >= delta.records - delta.deletions
    assert 0 < second.persons_affected < first.persons / 10
    stats = query(after, f"SELECT * FROM run_stats WHERE run_id = '{second.run_id}' AND source_system = '*'").to_pylist()[0]
    assert (stats["mode"], stats["records_scored"]) == ("incremental", second.records_scored)


def test_people_the_delta_does_not_touch_keep_their_ids_and_golden_records(lakes):
    """Touched: a person holding a record the delta delivers, replaces or deletes, or a
    record joined to one of those by a chain of pairs at the link threshold (a chain a
    cluster constraint may have cut). Nobody else's id or golden record changes."""
    base, after, delta, _first, _second = lakes
    before, now = _xref(base), _xref(after)
    members: dict[str, set[str]] = {}
    for (source, rid), person in before.items():
        members.setdefault(person, set()).add(f"{source}:{rid}")
    person_of = {f"{source}:{rid}": person for (source, rid), person in before.items()}
    neighbours: dict[str, set[str]] = {}
    for r in query(after, "SELECT unique_id_l, unique_id_r FROM match_pairs WHERE match_probability >= 0.95").to_pylist():
        neighbours.setdefault(r["unique_id_l"], set()).add(r["unique_id_r"])
        neighbours.setdefault(r["unique_id_r"], set()).add(r["unique_id_l"])
    reached = {f"{r['source_system']}:{r['source_record_id']}" for r in _truth(after, delta.batch_id)}
    frontier = set(reached)
    while frontier:
        grown = set()
        for uid in frontier:
            grown |= neighbours.get(uid, set())
            grown |= members.get(person_of.get(uid), set())
        frontier = grown - reached
        reached |= frontier
    touched = {person_of[uid] for uid in reached if uid in person_of}
    untouched = [key for key, person in before.items() if person not in touched]
    assert len(untouched) > len(before) // 2
    assert [key for key in untouched if now.get(key) != before[key]] == []
    ids = sorted({before[key] for key in untouched})
    sql = "SELECT * EXCLUDE (provenance) FROM person WHERE person_id IN ({}) ORDER BY person_id".format(
        ", ".join(f"'{i}'" for i in ids))
    assert query(after, sql).to_pylist() == query(base, sql).to_pylist()


def test_a_full_run_agrees_with_the_incremental_state(lakes, tmp_path):
    _base, after, _delta, _first, second = lakes
    lake = _copy(after, tmp_path / "full")
    summary = run(lake, full=True)
    assert summary.mode == "full"
    assert summary.consistency.records_compared == second.records_resolved
    assert summary.consistency.pairwise_agreement >= 0.995
    stats = query(lake, f"SELECT pairwise_agreement FROM run_stats WHERE run_id = '{summary.run_id}' AND source_system = '*'")
    assert stats.column(0).to_pylist() == [summary.consistency.pairwise_agreement]
    # The report compares the person partitions the two snapshots publish.
    was, now = (query(lk, "SELECT source_system || ':' || source_record_id AS unique_id, person_id FROM person_xref") for lk in (after, lake))
    assert compare_partitions(duckdb.connect(), was, now) == summary.consistency


def test_updates_replace_the_earlier_version_and_deletions_leave_every_table(lakes):
    _base, after, delta, _first, _second = lakes
    truth = _truth(after, delta.batch_id)
    updated = {(r["source_system"], r["source_record_id"]) for r in truth if r["op"] == "update"}
    deleted = {f"{r['source_system']}:{r['source_record_id']}" for r in truth if r["op"] == "delete"}
    assert updated and deleted
    versions = {(r["source_system"], r["source_record_id"]): r["batch_id"]
                for r in query(after, "SELECT source_system, source_record_id, batch_id FROM clean_person").to_pylist()}
    assert all(versions[k] == delta.batch_id for k in updated)
    xref = _xref(after)
    assert all(k in xref for k in updated)
    ids = ", ".join(f"'{d}'" for d in deleted)
    for sql in (
        f"SELECT count(*) FROM clean_person WHERE unique_id IN ({ids})",
        f"SELECT count(*) FROM person_xref WHERE source_system || ':' || source_record_id IN ({ids})",
        f"SELECT count(*) FROM match_pairs WHERE unique_id_l IN ({ids}) OR unique_id_r IN ({ids})",
        f"SELECT count(*) FROM review_queue WHERE unique_id_l IN ({ids}) OR unique_id_r IN ({ids})",
    ):
        assert query(after, sql).column(0).to_pylist() == [0], sql
    # Every person's record count is its records in the cross reference.
    counts = query(after, """
        SELECT count(*) FROM person p JOIN (SELECT person_id, count(*) AS n FROM person_xref GROUP BY 1) x USING (person_id)
        WHERE p.record_count <> x.n""")
    assert counts.column(0).to_pylist() == [0]
    assert query(after, "SELECT count(*) FROM person WHERE person_id NOT IN (SELECT person_id FROM person_xref)").column(0).to_pylist() == [0]


def test_the_review_queue_carries_each_pairs_evidence_after_a_delta(lakes):
    """Queued pairs found among the earlier pairs carry the evidence they were scored with."""
    _base, after, _delta, _first, _second = lakes
    assert query(after, "SELECT count(*) FROM review_queue").column(0)[0].as_py() > 0
    mismatched = query(after, """
        SELECT q.unique_id_l, q.unique_id_r FROM review_queue q LEFT JOIN match_pairs p USING (unique_id_l, unique_id_r)
        WHERE q.evidence IS DISTINCT FROM p.evidence OR p.evidence IS NULL""")
    assert mismatched.num_rows == 0


def test_every_pair_carries_the_cannot_link_rules_verdict_on_its_two_records(lakes):
    """The verdict a delta clusters the earlier pairs by, with no records read, is the
    rules' verdict on the pair's records: after a full run and after a delta."""
    from veracity.matching.model import CANNOT_LINK_SQL, LINK_THRESHOLD, prepare

    base, after, *_ = lakes
    for lake in (base, after):
        con = duckdb.connect()
        con.register("records", prepare(query(lake, "SELECT * FROM clean_person")))
        con.register("pairs", query(lake, "SELECT * FROM match_pairs"))
        verdicts = con.execute(f"""
            SELECT count(*) FILTER (WHERE p.refused_by_rule AND p.match_probability >= {LINK_THRESHOLD}),
                   count(*) FILTER (WHERE p.refused_by_rule IS DISTINCT FROM ({CANNOT_LINK_SQL})), count(*)
            FROM pairs p JOIN records l ON l.unique_id = p.unique_id_l JOIN records r ON r.unique_id = p.unique_id_r
        """).fetchone()
        refused_strong, disagreeing, paired = verdicts
        assert paired == query(lake, "SELECT count(*) FROM match_pairs").column(0)[0].as_py()
        assert refused_strong > 0 and disagreeing == 0


def test_a_snapshot_whose_pairs_lack_the_verdict_is_resolved_again_in_full(lakes, tmp_path):
    """Pairs written before the verdict was kept cannot be clustered without their
    records: the next run resolves every record, and says why."""
    import pyarrow.parquet as pq

    base, *_ = lakes
    lake = _copy(base, tmp_path / "older")
    for f in snapshots.read_snapshot(lake)["tables"]["match_pairs"]:
        pq.write_table(pq.read_table(lake.path(f)).drop_columns(["refused_by_rule"]), lake.path(f))
    generate_delta(lake, 1)
    said: list[str] = []
    again = run(lake, progress=said.append)
    assert again.mode == "full"
    assert any("match_pairs.refused_by_rule" in m for m in said)
    assert not snapshots.missing_columns(lake, snapshots.read_snapshot(lake), "match_pairs")


def _pairs(lake: Lake) -> list[dict]:
    """Every current scored pair, keys aside."""
    return query(lake, "SELECT * EXCLUDE (key_l, key_r) FROM match_pairs ORDER BY unique_id_l, unique_id_r").to_pylist()


@pytest.mark.parametrize("keys", ["shared", "another engine's"])
def test_the_earlier_pairs_are_found_alike_by_their_records_keys_and_by_their_ids(lakes, tmp_path, monkeypatch, keys):
    """A delta finds the earlier pairs of the records it clusters again by the records'
    integer keys. Where two records share a key (here every key is one of three), or
    a layer's keys were hashed by another DuckDB, it reads the ids: the same state."""
    from veracity.matching import pair_keys

    base, after, *_ = lakes
    by_key = _copy(base, tmp_path / "by_key")
    generate_delta(by_key, 1)
    said: list[str] = []
    run(by_key, progress=said.append)
    assert any("earlier pairs of the affected records (by their records' keys)" in m for m in said)
    lake = _copy(base, tmp_path / "by_id")
    generate_delta(lake, 1)
    with monkeypatch.context() as patched:
        if keys == "shared":
            patched.setattr(pair_keys, "key_sql", lambda column: f"(hash({column}) % 3)::BIGINT")
        else:
            patched.setattr(pair_keys, "canary", lambda: "another DuckDB")
        said.clear()
        run(lake, progress=said.append)
    assert any("earlier pairs of the affected records (by their records' ids)" in m for m in said)
    assert _state(lake) == _state(by_key) == _state(after)
    assert _pairs(lake) == _pairs(by_key)
    queue = "SELECT * FROM review_queue ORDER BY unique_id_l, unique_id_r"
    assert query(lake, queue).to_pylist() == query(by_key, queue).to_pylist()


def test_every_pair_carries_its_records_keys(lakes):
    """match_pairs.key_l and key_r: each record's key, after a full run and a delta."""
    from veracity.matching import pair_keys

    base, after, *_ = lakes
    for lake in (base, after):
        pairs = query(lake, "SELECT * FROM match_pairs")
        assert pairs.num_rows
        assert pairs.select(list(pair_keys.KEY_COLUMNS)).to_pylist() == pair_keys.with_keys(pairs).select(list(pair_keys.KEY_COLUMNS)).to_pylist()
        assert pairs.column("key_l").null_count == 0
        for f in snapshots.read_snapshot(lake)["tables"]["match_pairs"]:
            with lake.fs.open_input_file(lake.path(f)) as handle:
                assert pair_keys.file_usable(handle)


def test_the_same_batch_twice_changes_nothing(lakes, tmp_path):
    _base, after, delta, _first, _second = lakes
    lake = _copy(after, tmp_path / "again")
    before = _state(lake)
    assert run(lake) is None  # delivered again under its batch id: already in the ledger
    # Delivered again under a new batch id, with the same extract time: the same records.
    for source in lake.list_dirs("landing"):
        if delta.batch_id in lake.list_dirs("landing", source):
            shutil.copytree(lake.path("landing", source, delta.batch_id), lake.path("landing", source, delta.batch_id + "-resent"))
    again = run(lake)
    assert again is not None and again.id_changes.get("created", 0) == 0
    now = _state(lake)
    assert now["xref"] == before["xref"]
    assert [r["unique_id"] for r in now["clean"]] == [r["unique_id"] for r in before["clean"]]


def test_a_late_batch_is_applied_in_extract_time_order(lakes, tmp_path):
    base, *_ = lakes
    in_order, late = _copy(base, tmp_path / "in_order"), _copy(base, tmp_path / "late")
    for lake in (in_order, late):
        generate_delta(lake, 1)
        generate_delta(lake, 2)
    # The late lake sees batch 2 first; batch 1 (extracted earlier) arrives afterwards.
    batch_1 = sorted({b for s in late.list_dirs("landing") for b in late.list_dirs("landing", s)})[1]
    parked = tmp_path / "parked"
    for source in late.list_dirs("landing"):
        if batch_1 in late.list_dirs("landing", source):
            (parked / source).mkdir(parents=True)
            shutil.move(late.path("landing", source, batch_1), parked / source / batch_1)
    run(late)
    for source in [p.name for p in parked.iterdir()]:
        shutil.move(parked / source / batch_1, late.path("landing", source, batch_1))
    run(late)
    run(in_order)
    ordered, arrived_late = _state(in_order), _state(late)
    assert arrived_late["clean"] == ordered["clean"]  # each record's latest extract wins, whatever the arrival order
    assert _partition(arrived_late["xref"]) == _partition(ordered["xref"])


@pytest.mark.parametrize("stage", ["scrub", "match", "golden", "publish"])
def test_a_run_stopped_at_any_stage_reruns_to_the_same_state(lakes, tmp_path, monkeypatch, stage):
    base, after, _delta, _first, _second = lakes
    lake = _copy(base, tmp_path / "stopped")
    generate_delta(lake, 1)

    class Stopped(Exception):
        pass

    def stop(*_args, **_kwargs):
        raise Stopped(stage)

    def progress(message: str) -> None:
        if stage == "scrub" and message.startswith("scrubbed"):
            raise Stopped(stage)  # after the first batch of the delta is scrubbed and in the ledger

    with monkeypatch.context() as patched:
        if stage == "match":
            patched.setattr(pipeline, "resolve_increment", stop)
        elif stage == "golden":
            patched.setattr(pipeline.golden, "build", stop)
        elif stage == "publish":
            patched.setattr(snapshots, "prune", stop)  # after the switch: the snapshot is out, pruning is not
        with pytest.raises(Stopped):
            run(lake, progress=progress)
    assert run(lake) is not None or stage == "publish"
    stopped, uninterrupted = _state(lake), _state(after)
    assert stopped["clean"] == uninterrupted["clean"]
    assert stopped["xref"] == uninterrupted["xref"]
    assert stopped["person"] == uninterrupted["person"]


def test_rollback_makes_an_earlier_snapshot_current_and_runs_lists_them(lakes, tmp_path, capsys):
    _base, after, _delta, first, second = lakes
    lake = _copy(after, tmp_path / "rollback")
    listed = snapshots.runs(lake)
    assert [r["run_id"] for r in listed] == [first.run_id, second.run_id]
    assert [r["current"] for r in listed] == [False, True]
    assert listed[1]["persons"] == second.persons
    assert cli(["runs", "--lake", lake.uri]) == 0
    assert second.run_id in capsys.readouterr().out

    assert cli(["rollback", "--lake", lake.uri, "--to", first.run_id]) == 0
    assert snapshots.current_run_id(lake) == first.run_id
    assert _xref(lake) == _xref(lake, first.run_id)
    with pytest.raises(LakeError, match="no snapshot"):
        snapshots.rollback(lake, "20990101T000000000000Z")
    # The next run applies again the batches the restored snapshot does not hold.
    again = run(lake)
    assert again.mode == "incremental"
    assert _partition(_xref(lake)) == _partition(_xref(after))


def test_only_the_newest_snapshots_are_kept(lakes, tmp_path):
    base, *_ = lakes
    lake = _copy(base, tmp_path / "kept")
    runs = [snapshots.current_run_id(lake)]
    for batch in (1, 2):
        generate_delta(lake, batch)
        runs.append(run(lake).run_id)
    assert snapshots.prune(lake, 2) == [runs[0]]
    assert snapshots.published(lake) == runs[1:]
    with pytest.raises(LakeError, match="at least the current"):
        snapshots.prune(lake, 0)


def test_records_scored_through_an_identical_record_say_so_and_are_rescored_when_it_changes(lakes):
    base, after, delta, _first, second = lakes
    rows = query(base, "SELECT source_system || ':' || source_record_id AS unique_id, represented_by FROM person_xref").to_pylist()
    represented = {r["unique_id"]: r["represented_by"] for r in rows if r["represented_by"]}
    assert len(represented) > len(rows) // 10
    assert not set(represented.values()) & set(represented)  # a representative stands for itself
    pairs = {(r["unique_id_l"], r["unique_id_r"])
             for r in query(base, "SELECT unique_id_l, unique_id_r FROM match_pairs").to_pylist()}
    assert all((by, uid) in pairs for uid, by in represented.items())
    # The delta replaced or deleted some representatives: the records they stood for were scored afresh.
    changed = {f"{r['source_system']}:{r['source_record_id']}" for r in _truth(after, delta.batch_id) if r["op"] != "insert"}
    orphaned = {uid for uid, by in represented.items() if by in changed and uid not in changed}
    assert orphaned
    now = {r["unique_id"]: r["represented_by"] for r in query(
        after, "SELECT source_system || ':' || source_record_id AS unique_id, represented_by FROM person_xref").to_pylist()}
    assert all(now[uid] is None for uid in orphaned)


def test_the_known_records_scored_against_are_exactly_those_sharing_a_blocking_key(resolved_lake):
    """The candidates for ``predict_between``: every known record that agrees with a
    record to score on all the columns of some blocking rule, none other, and none an
    identical record stands for. Records to score that did not change (an identical
    record stood for them) are keyed and read as they are now."""
    import duckdb

    from veracity.matching import incremental, model
    from veracity.pipeline import current_records

    records = current_records(duckdb.connect(), resolved_lake[0])
    rows = records.to_pylist()
    new = rows[::40]
    new_ids = {r["unique_id"] for r in new}
    represented = {r["unique_id"] for r in rows[1::7]} - new_ids
    con = duckdb.connect()
    con.register("veracity_current", records)
    con.register("veracity_changed", pa.Table.from_pylist(new[::2], schema=records.schema))  # the rest unchanged
    con.register("veracity_to_score", pa.table({"unique_id": sorted(new_ids)}))
    con.register(incremental.PREVIOUS_XREF, pa.table({
        "unique_id": [r["unique_id"] for r in rows],
        "represented_by": ["someone" if r["unique_id"] in represented else None for r in rows]}))
    incremental._candidates(con)
    found = {u for (u,) in con.execute("SELECT unique_id FROM veracity_candidate_ids").fetchall()}
    read = con.sql("SELECT * FROM veracity_linker_records").to_arrow_table().to_pylist()

    def keys(row):
        return {(i, tuple(row[c] for c in cols)) for i, cols in enumerate(model.PREDICTION_BLOCKING_COLUMNS)
                if all(row[c] is not None for c in cols)}

    wanted = set().union(*(keys(r) for r in new))
    expected = {r["unique_id"] for r in rows
                if r["unique_id"] not in new_ids | represented and keys(r) & wanted}
    assert len(expected) > len(new)
    assert found == expected
    by_id = {r["unique_id"]: r for r in rows}
    assert len(read) == len(new_ids | found)
    assert {r["unique_id"]: r for r in read} == {u: by_id[u] for u in new_ids | found}


def test_term_frequencies_are_splinks_over_every_current_record(resolved_lake):
    """Counted in one read for every column, they equal Splink's own SQL per column
    over all the current records (not only those the linker holds), nulls left out."""
    from splink.internals.term_frequencies import term_frequencies_for_single_column_sql

    from veracity.matching import incremental, model_store
    from veracity.matching.resolve import linker_for
    from veracity.pipeline import current_records

    lake = resolved_lake[0]
    con = duckdb.connect()
    records = current_records(con, lake)
    linker = linker_for(con, records.slice(0, 50), model_store.current(lake).model_json, as_table=True)
    columns = linker._settings_obj._term_frequency_columns
    assert columns
    con.register("records", records)
    blanked = ", ".join(f"CASE WHEN hash(unique_id) % 9 = 0 THEN NULL ELSE {c.name} END AS {c.name}" for c in columns)
    con.execute(f"CREATE VIEW veracity_current AS SELECT * REPLACE ({blanked}) FROM records")
    incremental._register_term_frequencies(con, linker)
    for column in columns:
        name = column.unquote().name
        ours = con.sql(f"SELECT * FROM veracity_tf_{name} ORDER BY 1").fetchall()
        splinks = con.sql(f"SELECT * FROM ({term_frequencies_for_single_column_sql(column, 'veracity_current')}) ORDER BY 1").fetchall()
        assert ours == splinks
        distinct = con.sql(f"SELECT count(DISTINCT {column.name}), count(*) - count({column.name}) FROM veracity_current").fetchall()[0]
        assert len(ours) == distinct[0] > 50 and distinct[1] > 0  # every value, not the linker's few; nulls left out
