"""Scoring shortcuts change no result: slices, and identical records scored once."""

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from veracity.matching import model, model_store, resolve
from veracity.pipeline import current_records
from veracity.schema import CLEAN_PERSON, CLERICAL_DECISIONS


def _partition(clusters) -> set[frozenset]:
    groups: dict[str, set] = {}
    for uid, cid in zip(clusters.column("unique_id").to_pylist(), clusters.column("cluster_id").to_pylist(), strict=True):
        groups.setdefault(cid, set()).add(uid)
    return {frozenset(g) for g in groups.values()}


def test_scoring_in_slices_changes_nothing(resolved_lake, tmp_path, monkeypatch):
    lake, _ = resolved_lake
    records = current_records(duckdb.connect(), lake)
    trained = model_store.current(lake).model_json
    whole_dir, sliced_dir = tmp_path / "whole", tmp_path / "sliced"
    whole_dir.mkdir()
    sliced_dir.mkdir()
    whole = resolve.resolve(resolve.connect(str(tmp_path)), records, trained, CLERICAL_DECISIONS.empty(), str(whole_dir))
    monkeypatch.setattr(resolve, "PREDICT_CHUNK_RECORDS", records.num_rows // 5)
    sliced = resolve.resolve(resolve.connect(str(tmp_path)), records, trained, CLERICAL_DECISIONS.empty(), str(sliced_dir))
    assert (sliced.pairs, sliced.links, sliced.comparisons) == (whole.pairs, whole.links, whole.comparisons)
    assert whole.links > 0
    assert _partition(sliced.clusters) == _partition(whole.clusters)
    order = [("unique_id_l", "ascending"), ("unique_id_r", "ascending")]
    assert pq.read_table(sliced.pairs_file).sort_by(order).equals(pq.read_table(whole.pairs_file).sort_by(order))



def _pairs(resolution) -> dict[tuple[str, str], dict]:
    rows = pq.read_table(resolution.pairs_file).to_pylist()
    return {(r["unique_id_l"], r["unique_id_r"]): r for r in rows}


def _resolve(records, trained, decisions, out_dir):
    """(resolution, the ids of the records scored individually)."""
    out_dir.mkdir()
    con = resolve.connect(str(out_dir))
    resolution = resolve.resolve(con, records, trained, decisions, str(out_dir))
    return resolution, {r[0] for r in con.execute(f"SELECT unique_id FROM {resolve.REPRESENTATIVES_TABLE}").fetchall()}


def test_identical_records_are_scored_once_with_no_change_to_any_score_or_cluster(resolved_lake, tmp_path, monkeypatch):
    lake, _ = resolved_lake
    records = current_records(duckdb.connect(), lake)
    trained = model_store.current(lake).model_json
    collapsed, scored_alone = _resolve(records, trained, CLERICAL_DECISIONS.empty(), tmp_path / "collapsed")
    compared = model.compared_columns()
    monkeypatch.setattr(model, "compared_columns", lambda: (*compared, "unique_id"))  # no two records identical
    every, _ = _resolve(records, trained, CLERICAL_DECISIONS.empty(), tmp_path / "every")

    assert _partition(collapsed.clusters) == _partition(every.clusters)
    assert len(scored_alone) < records.num_rows * 0.8
    assert collapsed.comparisons < every.comparisons * 0.6
    # A record not scored alone is represented by the smallest id of its identical records.
    con = duckdb.connect()
    con.register("recs", model.prepare(records))
    con.register("decided", CLERICAL_DECISIONS.empty())
    monkeypatch.undo()
    group = dict(con.execute(resolve.identical_groups_sql("recs", "decided")).fetchall())
    stands_for = {uid: uid if uid in scored_alone else group[uid] for uid in group}
    # Every pair scored record by record is scored, with the same evidence, between the
    # records that stand for them; records that stand for one another carry their group's score.
    one_by_one, represented = _pairs(every), _pairs(collapsed)
    for (left, right), row in one_by_one.items():
        pair = tuple(sorted((stands_for[left], stands_for[right])))
        if pair[0] == pair[1]:
            continue
        assert represented[pair]["match_probability"] == pytest.approx(row["match_probability"], abs=1e-9), pair
        assert represented[pair]["evidence"] == row["evidence"], pair
    for (left, right), row in represented.items():
        if right not in scored_alone:
            assert stands_for[right] == left
            assert row["match_probability"] >= model.LINK_THRESHOLD


def test_identical_records_that_could_not_link_are_scored_alone(resolved_lake, tmp_path):
    lake, _ = resolved_lake
    records = current_records(duckdb.connect(), lake)
    trained = model_store.current(lake).model_json
    blank = dict.fromkeys(CLEAN_PERSON.column_names)
    known = records.slice(0, 1).to_pylist()[0]
    extra = [
        # a name and nothing else, twice: the names-alone rule forbids linking them
        {**blank, "unique_id": "test:name-only-1", "source_system": "test", "first_name": "ZEBEDEE", "last_name": "QUIXOTE",
         "forename_canonical": "ZEBEDEE"},
        {**blank, "unique_id": "test:name-only-2", "source_system": "test", "first_name": "ZEBEDEE", "last_name": "QUIXOTE",
         "forename_canonical": "ZEBEDEE"},
        # three copies of a known record; a reviewer ruled the third apart from it
        {**known, "unique_id": "test:copy-1"},
        {**known, "unique_id": "test:copy-2"},
        {**known, "unique_id": "test:copy-3"},
    ]
    both = pa.concat_tables([records, pa.Table.from_pylist(extra, schema=records.schema)])
    decisions = pa.Table.from_pylist(
        [{"unique_id_l": known["unique_id"], "unique_id_r": "test:copy-3", "decision": "cannot_link"}],
        schema=pa.schema([("unique_id_l", pa.string()), ("unique_id_r", pa.string()), ("decision", pa.string())]),
    )
    resolution, scored_alone = _resolve(both, trained, decisions, tmp_path / "out")
    cluster_of = dict(zip(*resolution.clusters.to_pydict().values(), strict=True))
    assert {"test:name-only-1", "test:name-only-2", "test:copy-3", known["unique_id"]} <= scored_alone
    assert "test:copy-2" not in scored_alone
    assert cluster_of["test:name-only-1"] != cluster_of["test:name-only-2"]
    assert cluster_of["test:copy-1"] == cluster_of["test:copy-2"] == cluster_of[known["unique_id"]] != cluster_of["test:copy-3"]
    assert (known["unique_id"], "test:copy-3") in _pairs(resolution)  # scored, kept as evidence, not linked


def test_duckdb_works_in_its_share_of_the_memory_setting_and_a_bad_setting_is_refused(monkeypatch):
    from veracity.errors import ConfigError
    from veracity.matching.resolve import limit_memory

    con = duckdb.connect()
    monkeypatch.setenv("VERACITY_DUCKDB_MEMORY", "2GiB")
    limit_memory(con, 0.5)
    assert con.execute("SELECT current_setting('memory_limit')").fetchall()[0][0] == "1.0 GiB"
    monkeypatch.setenv("VERACITY_DUCKDB_MEMORY", "3000MB")
    limit_memory(con)
    assert con.execute("SELECT current_setting('memory_limit')").fetchall()[0][0] == "2.7 GiB"
    for bad in ("lots", "8 parsecs", "-1GB"):
        monkeypatch.setenv("VERACITY_DUCKDB_MEMORY", bad)
        with pytest.raises(ConfigError, match="not an amount of memory"):
            limit_memory(con)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_records_are_clustered_as_splinks_connected_components_cluster_them(seed):
    """Each node's cluster is the smallest id a chain of links at the threshold reaches,
    as Splink names it: long chains, nodes with no link, links below the threshold
    and links named in either order included."""
    import random

    from splink import DuckDBAPI
    from splink.clustering import cluster_pairwise_predictions_at_threshold

    rng = random.Random(seed)
    ids = [f"{rng.choice(['custody', 'crime', 'pnd'])}:{rng.randrange(10**6)}" for _ in range(3000)]
    ids = sorted(set(ids), key=lambda _u: rng.random())
    links = [(ids[i], ids[i + 1], 0.999) for i in range(0, 600)]  # one chain of 601 records
    links += [(rng.choice(ids), rng.choice(ids), rng.choice([0.2, 0.97, 0.999, 1.0])) for _ in range(1800)]
    links = [(a, b, p) for a, b, p in links if a != b]
    con = duckdb.connect()
    con.register("nodes", pa.table({"unique_id": ids}))
    con.register("links", pa.table({"unique_id_l": [a for a, _b, _p in links], "unique_id_r": [b for _a, b, _p in links],
                                    "match_probability": [p for _a, _b, p in links]}))
    con.execute("CREATE VIEW veracity_nodes AS SELECT * FROM nodes")
    con.execute("CREATE VIEW veracity_links AS SELECT * FROM links")
    resolve._connected_clusters(con)
    ours = dict(con.execute("SELECT unique_id, cluster_id FROM veracity_clusters").fetchall())
    splinks = cluster_pairwise_predictions_at_threshold("nodes", "links", DuckDBAPI(connection=con), "unique_id",
                                                        threshold_match_probability=model.LINK_THRESHOLD)
    expected = dict(con.execute(f"SELECT unique_id, cluster_id FROM {splinks.physical_name}").fetchall())
    assert ours == expected and len(ours) == len(ids)
    assert 1 < len(set(ours.values())) < len(ids)
    assert len({ours[u] for u in ids[:601]}) == 1 and ours[ids[600]] <= min(ids[:601])  # the chain is one cluster
