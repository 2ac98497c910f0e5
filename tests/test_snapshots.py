"""Snapshots served in layers: a run adds the rows it changed and the keys of the rows
they replace; readers see one table; old layers stay while a kept snapshot reads them."""

from __future__ import annotations

import pyarrow as pa
import pytest

from veracity import snapshots
from veracity.lake import Lake
from veracity.schema import CURATED_TABLES
from veracity.snapshots import Layer, publish_snapshot, read_snapshot, read_table


def _persons(*ids_and_names: tuple[str, str]) -> pa.Table:
    schema = CURATED_TABLES["person"].arrow_schema
    rows = [{"person_id": p, "first_name": n} for p, n in ids_and_names]
    return pa.Table.from_pylist(rows, schema=schema)


def _pairs(*pairs: tuple[str, str, float]) -> pa.Table:
    return pa.Table.from_pylist([{"unique_id_l": left, "unique_id_r": right, "match_probability": p} for left, right, p in pairs],
                                schema=CURATED_TABLES["match_pairs"].arrow_schema)


def _keys(*keys: str) -> pa.Table:
    return pa.table({"key": pa.array(keys, pa.string())})


def _publish(lake: Lake, run_id: str, tables: dict | None = None, layers: dict | None = None, keep: int = 10) -> None:
    publish_snapshot(lake, run_id, tables or {}, layers or {}, model_version=None, keep=keep)


def _names(lake: Lake, run_id: str | None = None) -> dict[str, str]:
    table = read_table(lake, read_snapshot(lake, run_id), "person")
    return dict(zip(table.column("person_id").to_pylist(), table.column("first_name").to_pylist(), strict=True))


@pytest.fixture()
def lake(tmp_path) -> Lake:
    lake = Lake.open(str(tmp_path / "lake"), create=True)
    _publish(lake, "r1", tables={"person": _persons(("P1", "ANN"), ("P2", "BOB"), ("P3", "CY")),
                                 "match_pairs": _pairs(("a", "b", 0.99), ("b", "c", 0.5), ("d", "e", 0.97))})
    return lake


def test_a_layer_replaces_the_rows_of_its_keys_and_adds_its_own(lake):
    _publish(lake, "r2", layers={"person": Layer(_persons(("P2", "ROBERT"), ("P4", "DI")), _keys("P2", "P3"))})
    assert _names(lake) == {"P1": "ANN", "P2": "ROBERT", "P4": "DI"}
    assert _names(lake, "r1") == {"P1": "ANN", "P2": "BOB", "P3": "CY"}  # the earlier snapshot reads as it was
    manifest = read_snapshot(lake)
    assert manifest["tables"]["person"] == ["curated/snapshots/r1/person.parquet", "curated/snapshots/r2/person.parquet"]
    # A later layer's keys reach rows of every earlier layer, its own rows never.
    _publish(lake, "r3", layers={"person": Layer(_persons(("P2", "BOBBY")), _keys("P2", "P4"))})
    assert _names(lake) == {"P1": "ANN", "P2": "BOBBY"}


def test_a_pair_goes_when_either_of_its_records_is_a_key(lake):
    _publish(lake, "r2", layers={"match_pairs": Layer(_pairs(("b", "x", 0.9)), _keys("b"))})
    pairs = read_table(lake, read_snapshot(lake), "match_pairs")
    assert sorted(zip(pairs.column("unique_id_l").to_pylist(), pairs.column("unique_id_r").to_pylist(), strict=True)) == [
        ("b", "x"), ("d", "e")]


def test_sql_reads_the_layered_table_as_one(lake):
    from veracity.sql import query
    _publish(lake, "r2", layers={"person": Layer(_persons(("P2", "ROBERT")), _keys("P2"))})
    assert query(lake, "SELECT count(*) AS n, count(DISTINCT person_id) AS ids FROM person").to_pylist() == [{"n": 3, "ids": 3}]


def test_too_many_layers_are_written_whole_with_the_same_rows(lake, monkeypatch):
    monkeypatch.setattr(snapshots, "MAX_LAYERS", 3)
    _publish(lake, "r2", layers={"person": Layer(_persons(("P2", "ROBERT")), _keys("P2"))})
    _publish(lake, "r3", layers={"person": Layer(_persons(("P5", "EVE")), _keys("P1"))})
    assert len(read_snapshot(lake)["tables"]["person"]) == 3
    _publish(lake, "r4", layers={"person": Layer(_persons(("P6", "FAY")), _keys("P3"))})
    manifest = read_snapshot(lake)
    assert manifest["tables"]["person"] == ["curated/snapshots/r4/person.whole.parquet"]
    assert "person" not in manifest["removals"]
    assert _names(lake) == {"P2": "ROBERT", "P5": "EVE", "P6": "FAY"}
    assert not lake.exists("curated", "snapshots", "r4", "person.parquet")


def test_pruning_keeps_the_files_a_kept_snapshot_reads(lake, monkeypatch):
    _publish(lake, "r2", layers={"person": Layer(_persons(("P2", "ROBERT")), _keys("P2"))}, keep=1)
    # r1 is no longer a snapshot, but r2 still reads its person rows; its pairs are read by no one.
    assert snapshots.published(lake) == ["r2"]
    assert lake.exists("curated", "snapshots", "r1", "person.parquet")
    assert not lake.exists("curated", "snapshots", "r1", "match_pairs.parquet")
    assert not lake.exists("curated", "snapshots", "r1", snapshots.SNAPSHOT_FILE)
    assert _names(lake) == {"P1": "ANN", "P2": "ROBERT", "P3": "CY"}
    # Once the table is written whole, nothing reads r1: it goes.
    monkeypatch.setattr(snapshots, "MAX_LAYERS", 2)
    _publish(lake, "r3", layers={"person": Layer(_persons(("P4", "DI")), _keys("P1"))}, keep=1)
    assert not lake.exists("curated", "snapshots", "r1")
    assert _names(lake) == {"P2": "ROBERT", "P3": "CY", "P4": "DI"}


def test_rollback_to_a_snapshot_whose_first_layer_an_older_run_wrote(lake):
    _publish(lake, "r2", layers={"person": Layer(_persons(("P2", "ROBERT")), _keys("P2"))}, keep=2)
    _publish(lake, "r3", layers={"person": Layer(_persons(("P3", "CYRIL")), _keys("P3"))}, keep=2)
    assert snapshots.published(lake) == ["r2", "r3"]
    snapshots.rollback(lake, "r2")
    assert _names(lake) == {"P1": "ANN", "P2": "ROBERT", "P3": "CY"}


def test_a_column_added_since_a_layer_was_written_reads_as_null_and_is_reported(lake):
    old = CURATED_TABLES["person_xref"].arrow_schema
    without = pa.schema([f for f in old if f.name != "link_group"])
    lake.write_table(pa.Table.from_pylist([{"source_system": "s", "source_record_id": "1", "person_id": "P1"}], schema=without),
                     "curated", "snapshots", "old", "person_xref.parquet")
    manifest = {"tables": {"person_xref": ["curated/snapshots/old/person_xref.parquet"]}}
    assert snapshots.missing_columns(lake, manifest, "person_xref") == ["link_group"]
    table = read_table(lake, manifest, "person_xref")
    assert table.schema == old and table.column("link_group").to_pylist() == [None]


def test_layers_on_s3(s3_bucket):
    lake = Lake.open(f"s3://{s3_bucket}/layers")
    _publish(lake, "r1", tables={"person": _persons(("P1", "ANN"), ("P2", "BOB"))})
    _publish(lake, "r2", layers={"person": Layer(_persons(("P2", "ROBERT")), _keys("P2"))})
    assert _names(lake) == {"P1": "ANN", "P2": "ROBERT"}


def test_removal_keys_only_for_tables_keyed_so(lake):
    from veracity.errors import LakeError
    _publish(lake, "r2", tables={"cluster_sizes": CURATED_TABLES["cluster_sizes"].empty()})
    with pytest.raises(LakeError, match="not removed by key"):
        _publish(lake, "r3", layers={"cluster_sizes": Layer(CURATED_TABLES["cluster_sizes"].empty(), _keys("x"))})


def _served_by_athena(lake: Lake, name: str) -> set[tuple]:
    """``name`` as Athena serves it: the Trino SQL of ``athena_table_sql`` over the
    manifest's files (each row with its file as "$path") and the removed keys, run in DuckDB."""
    import duckdb
    import pyarrow.dataset as ds
    import sqlglot

    def with_path(uri: str) -> pa.Table:
        table = ds.dataset(uri.removeprefix("s3://"), filesystem=lake.fs, format="parquet").to_table()
        return table.append_column("$path", pa.repeat(pa.scalar(uri), table.num_rows))

    listed = lake.read_bytes(*snapshots.ATHENA, name, snapshots.MANIFEST_FILE).decode().split()
    con = duckdb.connect()
    con.register("layer_rows", pa.concat_tables([with_path(uri) for uri in listed], promote_options="default"))
    con.register("removed_keys", lake.read_table(*snapshots.ATHENA, f"{name}_removed", snapshots.REMOVED_FILE))
    sql = sqlglot.transpile(snapshots.athena_table_sql(name, "layer_rows", "removed_keys"), read="athena", write="duckdb")[0]
    rows = con.sql(sql).to_arrow_table()
    return set(zip(*(rows.column(k).to_pylist() for k in _ROW_KEYS[name]), strict=True))


_ROW_KEYS = {"person": ("person_id", "first_name"), "match_pairs": ("unique_id_l", "unique_id_r")}


def test_athena_serves_the_current_snapshot_as_the_lake_reads_it(s3_bucket):
    lake = Lake.open(f"s3://{s3_bucket}/lake")
    _publish(lake, "r1", tables={"person": _persons(("P1", "ANN"), ("P2", "BOB"), ("P3", "CY")),
                                 "match_pairs": _pairs(("a", "b", 0.99), ("b", "c", 0.5), ("d", "e", 0.97))})
    _publish(lake, "r2", layers={"person": Layer(_persons(("P2", "ROBERT"), ("P4", "DI")), _keys("P2", "P3")),
                                 "match_pairs": Layer(_pairs(("b", "x", 0.9)), _keys("b"))})

    def as_the_lake_reads(name: str) -> set[tuple]:
        table = read_table(lake, read_snapshot(lake), name)
        return set(zip(*(table.column(k).to_pylist() for k in _ROW_KEYS[name]), strict=True))

    assert _served_by_athena(lake, "match_pairs") == as_the_lake_reads("match_pairs") == {("b", "x"), ("d", "e")}
    _publish(lake, "r3", layers={"person": Layer(_persons(("P2", "BOBBY")), _keys("P2", "P4"))})
    assert len(read_snapshot(lake)["tables"]["person"]) == 3  # layered, with removals in effect
    assert _served_by_athena(lake, "person") == as_the_lake_reads("person") == {("P1", "ANN"), ("P2", "BOBBY")}
    # A table the snapshot does not hold is not served from an older one.
    assert not lake.exists(*snapshots.ATHENA, "match_pairs") and not lake.exists(*snapshots.ATHENA, "match_pairs_removed")
    # A rollback points Athena back at the earlier snapshot too.
    snapshots.rollback(lake, "r1")
    assert _served_by_athena(lake, "person") == {("P1", "ANN"), ("P2", "BOB"), ("P3", "CY")}


def test_local_lakes_write_no_athena_files(lake):
    assert not lake.exists(*snapshots.ATHENA)
