"""Follow-on batches: new people, new records, updates under existing ids, deletions."""

import pytest

from veracity.errors import VeracityError
from veracity.lake import Lake
from veracity.pipeline import run
from veracity.sql import query
from veracity.synthetic import generate
from veracity.synthetic.delta import generate_delta


@pytest.fixture(scope="module")
def delta_lake(tmp_path_factory) -> tuple[Lake, object]:
    lake = Lake.open(str(tmp_path_factory.mktemp("delta")), create=True)
    generate(lake, 2000, seed=13)
    return lake, generate_delta(lake, 1)


def _truth(lake: Lake, batch_id: str) -> list[dict]:
    return lake.read_table("truth", "records", f"{batch_id}.parquet").to_pylist()


def test_delta_holds_new_people_new_records_updates_and_deletions(delta_lake):
    lake, delta = delta_lake
    assert delta.new_people >= 1 and delta.updates >= 1 and delta.deletions >= 1
    truth = _truth(lake, delta.batch_id)
    initial = {(r["source_system"], r["source_record_id"]): r["person_id"] for r in lake.read_table("truth", "records", "20261101T060000Z.parquet").to_pylist()}
    new_people = set(lake.read_table("truth", "people", f"{delta.batch_id}.parquet").column("person_id").to_pylist())
    for r in truth:
        key = (r["source_system"], r["source_record_id"])
        if r["op"] in ("update", "delete"):
            assert initial[key] == r["person_id"]  # changes reuse the id of a delivered record
        else:
            assert key not in initial
    assert any(r["op"] == "insert" and r["person_id"] in new_people for r in truth)
    assert any(r["op"] == "insert" and r["person_id"] not in new_people for r in truth)


def test_delta_batches_have_manifests_and_deletion_files(delta_lake):
    lake, delta = delta_lake
    deletions = 0
    for source in lake.list_dirs("landing"):
        if delta.batch_id not in lake.list_dirs("landing", source):
            continue
        manifest = lake.read_json("landing", source, delta.batch_id, "manifest.json")
        kinds = [f["kind"] for f in manifest["files"]]
        assert kinds[0] == "extract" and set(kinds) <= {"extract", "deletions"}
        deletions += sum(f["rows"] for f in manifest["files"] if f["kind"] == "deletions")
    assert deletions == delta.deletions


def test_delta_is_deterministic(tmp_path, delta_lake):
    lake, delta = delta_lake
    other = Lake.open(str(tmp_path), create=True)
    generate(other, 2000, seed=13)
    again = generate_delta(other, 1)
    assert again.batch_id == delta.batch_id
    assert _truth(other, again.batch_id) == _truth(lake, delta.batch_id)


def test_same_delta_twice_is_refused_and_needs_a_population(delta_lake, tmp_path):
    lake, _ = delta_lake
    with pytest.raises(VeracityError, match="already generated"):
        generate_delta(lake, 1)
    with pytest.raises(VeracityError, match="no synthetic population"):
        generate_delta(Lake.open(str(tmp_path), create=True), 1)


def test_pipeline_applies_updates_and_deletions(delta_lake):
    lake, delta = delta_lake
    summary = run(lake)
    truth = _truth(lake, delta.batch_id)
    deleted = [r for r in truth if r["op"] == "delete"]
    updated = [r for r in truth if r["op"] == "update"]
    xref = {(r["source_system"], r["source_record_id"]): r["person_id"] for r in query(lake, "SELECT * FROM person_xref").to_pylist()}
    assert not any((r["source_system"], r["source_record_id"]) in xref for r in deleted)
    assert all((r["source_system"], r["source_record_id"]) in xref for r in updated)
    clean = query(lake, "SELECT unique_id, count(*) AS versions FROM clean_person GROUP BY 1 HAVING count(*) > 1")
    assert clean.num_rows == 0  # one current version per record
    assert summary.totals.deletions == delta.deletions
