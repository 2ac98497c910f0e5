"""Scoring in slices gives exactly the result of scoring at once."""

import duckdb
import pyarrow.parquet as pq

from veracity.matching import model_store, resolve
from veracity.pipeline import current_records
from veracity.schema import CLERICAL_DECISIONS


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
