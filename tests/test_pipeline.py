"""End to end: synthetic extracts in, golden persons out, on a local and an s3:// lake."""

import types

import boto3
import pyarrow.compute as pc
import pytest

from veracity import pipeline
from veracity.errors import VeracityError
from veracity.evaluate import evaluate
from veracity.lake import Lake
from veracity.pipeline import run, scrub_stage
from veracity.snapshots import read_snapshot
from veracity.sources import load_sources
from veracity.sql import query
from veracity.synthetic import generate

ACCURACY_FLOOR = 0.9  # pairwise F1 on the small synthetic lake


def _assert_resolved(lake: Lake, summary) -> None:
    totals = summary.totals
    assert totals.records_in == totals.records_clean + totals.records_quarantined
    assert totals.records_in > 0 and totals.records_quarantined > 0  # the generator plants faulty rows
    counts = query(lake, "SELECT (SELECT count(*) FROM clean_person) AS clean, (SELECT count(*) FROM quarantine) AS q, "
                         "(SELECT count(*) FROM person_xref) AS xref").to_pylist()[0]
    assert counts == {"clean": totals.records_clean, "q": totals.records_quarantined, "xref": totals.records_clean}
    stats = query(lake, "SELECT records_in, records_clean, records_quarantined, persons FROM run_stats WHERE source_system = '*'")
    assert stats.to_pylist() == [
        {"records_in": totals.records_in, "records_clean": totals.records_clean,
         "records_quarantined": totals.records_quarantined, "persons": summary.persons}
    ]
    result = evaluate(lake)
    assert result.pairwise.f1 >= ACCURACY_FLOOR, result
    assert result.bcubed.f1 >= ACCURACY_FLOOR, result


def test_local_lake_resolves_with_nothing_lost(resolved_lake):
    lake, summary = resolved_lake
    _assert_resolved(lake, summary)


def test_every_person_has_records_and_every_record_one_person(resolved_lake):
    lake, _ = resolved_lake
    orphans = query(lake, "SELECT count(*) AS n FROM person p LEFT JOIN person_xref x USING (person_id) WHERE x.person_id IS NULL")
    assert orphans.column("n")[0].as_py() == 0
    dupes = query(lake, "SELECT count(*) AS n FROM (SELECT source_system, source_record_id FROM person_xref GROUP BY 1, 2 HAVING count(*) > 1)")
    assert dupes.column("n")[0].as_py() == 0
    sizes = query(lake, "SELECT sum(record_count) AS n FROM person")
    assert sizes.column("n")[0].as_py() == query(lake, "SELECT count(*) AS n FROM person_xref").column("n")[0].as_py()


def test_match_pairs_carry_evidence(resolved_lake):
    lake, _ = resolved_lake
    pairs = query(lake, "SELECT evidence, match_probability FROM match_pairs ORDER BY match_weight DESC LIMIT 5")
    assert pairs.num_rows == 5
    assert '"first_name"' in pairs.column("evidence")[0].as_py()
    assert pc.min(pairs.column("match_probability")).as_py() > 0.9


def test_second_run_with_nothing_new_changes_nothing(resolved_lake):
    lake, summary = resolved_lake
    assert run(lake) is None
    assert lake.read_json("curated", "CURRENT.json")["run_id"] == summary.run_id


def test_same_data_gives_same_person_ids(tmp_path, resolved_lake):
    lake, _ = resolved_lake
    other = Lake.open(str(tmp_path / "again"), create=True)
    generate(other, 400, seed=7)
    run(other)
    sql = "SELECT source_system, source_record_id, person_id FROM person_xref ORDER BY 1, 2"
    assert query(other, sql).equals(query(lake, sql))


def _scrubbed(lake: Lake) -> dict[str, list[dict]]:
    """Every file the scrub wrote (the clean and quarantine zones, the ledger), each
    table's rows in a stable order; the ledger without its processing time."""
    out = {}
    for zone in ("clean", "quarantine"):
        for table in lake.list_dirs(zone):
            rows = lake.read_table(zone, table).to_pylist()
            out[f"{zone}/{table}"] = sorted(rows, key=repr)
    out["ledger"] = sorted(repr({k: v for k, v in e.items() if k != "processed_at"}) for e in pipeline.batch_ledger.ledger(lake))
    return out


@pytest.fixture
def pools(monkeypatch) -> list:
    """The process pools the scrub starts, one entry each (the pipeline module's own
    view of multiprocessing is replaced, so other modules' pools are not counted)."""
    started = []
    real = pipeline.multiprocessing
    monkeypatch.setattr(pipeline, "multiprocessing", types.SimpleNamespace(
        get_context=lambda *a: started.append(a) or real.get_context(*a), cpu_count=real.cpu_count))
    return started


def test_batches_scrub_alike_in_worker_processes_and_in_this_one(tmp_path, pools):
    lakes = {}
    for workers in (1, 2):
        lakes[workers] = Lake.open(str(tmp_path / str(workers)), create=True)
        generate(lakes[workers], 60, seed=3)
    stats = {w: scrub_stage(lake, load_sources(), lambda _m: None, workers=w) for w, lake in lakes.items()}
    assert len(pools) == 1  # the second ran its batches in two worker processes
    assert stats[1] == stats[2] and sum(s.batches for s in stats[1].values()) > 1
    assert _scrubbed(lakes[1]) == _scrubbed(lakes[2]) and _scrubbed(lakes[1])["clean/clean_person"]


@pytest.mark.parametrize("threshold, pooled", [(pipeline.PARALLEL_SCRUB_BYTES, False), (1, True)])
def test_worker_processes_start_only_when_the_landed_batches_are_big_enough_to_repay_them(tmp_path, monkeypatch, pools,
                                                                                           threshold, pooled):
    lake = Lake.open(str(tmp_path), create=True)
    generate(lake, 60, seed=3)
    assert lake.total_size("landing") < pipeline.PARALLEL_SCRUB_BYTES
    monkeypatch.setattr(pipeline.multiprocessing, "cpu_count", lambda: 2)
    monkeypatch.setattr(pipeline, "PARALLEL_SCRUB_BYTES", threshold)
    stats = scrub_stage(lake, load_sources(), lambda _m: None)
    assert bool(pools) == pooled
    assert sum(s.records_clean for s in stats.values()) > 0


def test_unknown_source_is_quarantined_not_lost(tmp_path):
    lake = Lake.open(str(tmp_path), create=True)
    generate(lake, 30, seed=2)
    lake.write_bytes(b"ID\n1\n", "landing", "mystery", "b1", "x.csv")
    summary = run(lake)
    assert any("unknown_source" in p for p in summary.totals.rejected_batches)
    q = query(lake, "SELECT reason_codes, raw_record FROM quarantine WHERE source_system = 'mystery'").to_pylist()
    assert q[0]["reason_codes"] == "batch_rejected" and "missing_manifest" in q[0]["raw_record"]


def test_checksum_mismatch_rejects_the_batch(tmp_path):
    lake = Lake.open(str(tmp_path), create=True)
    generate(lake, 30, seed=2)
    (batch,) = lake.list_dirs("landing", "custody")
    name = lake.read_json("landing", "custody", batch, "manifest.json")["files"][0]["name"]
    lake.write_bytes(lake.read_bytes("landing", "custody", batch, name) + b"CUS999,X,Y,,,,,,,,,\n", "landing", "custody", batch, name)
    summary = run(lake)
    assert summary.per_source["custody"].records_clean == 0
    assert "custody/" + batch + ": checksum_mismatch" in summary.per_source["custody"].rejected_batches


def test_empty_landing_is_an_error(tmp_path):
    with pytest.raises(VeracityError, match="no batches"):
        run(Lake.open(str(tmp_path), create=True))


def test_s3_lake_on_moto_resolves_like_a_local_one(s3_bucket):
    # As deployed: landing, clean and quarantine in buckets of their own.
    s3 = boto3.client("s3", region_name="eu-west-2")
    zones = {zone: f"{s3_bucket[:40]}-{zone}" for zone in ("landing", "clean", "quarantine")}
    for bucket in zones.values():
        s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": "eu-west-2"})
    lake = Lake.open(f"s3://{s3_bucket}/veracity?" + "&".join(f"{z}=s3://{b}" for z, b in zones.items()))
    generate(lake, 400, seed=7)
    summary = run(lake)
    _assert_resolved(lake, summary)
    assert lake.display("curated").startswith(f"s3://{s3_bucket}/veracity/")
    for zone, bucket in zones.items():
        keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])]
        assert keys and all(k.startswith(f"{zone}/") for k in keys), zone
    home = [o["Key"] for o in s3.list_objects_v2(Bucket=s3_bucket).get("Contents", [])]
    assert home and not [k for k in home if k.split("/")[1] in zones]
    # A delta: resolved incrementally, its layers read back through pyarrow's S3 filesystem.
    from veracity.synthetic.delta import generate_delta
    generate_delta(lake, 1)
    second = run(lake)
    assert second.mode == "incremental" and second.records_scored > 0
    assert len(read_snapshot(lake)["tables"]["person"]) == 2
    counts = query(lake, "SELECT (SELECT count(*) FROM clean_person) AS clean, (SELECT count(*) FROM person_xref) AS xref, "
                         "(SELECT sum(record_count) FROM person) AS held, (SELECT count(*) FROM person) AS persons").to_pylist()[0]
    # Athena is pointed at the new snapshot: each table's manifest lists its files.
    for name, files in read_snapshot(lake)["tables"].items():
        listed = lake.read_bytes("curated", "athena", name, "manifest").decode().split()
        assert listed == [lake.display(f) for f in files], name
    assert counts == {"clean": second.records_resolved, "xref": second.records_resolved, "held": second.records_resolved,
                      "persons": second.persons}


def test_blocking_recall_is_measured_on_a_sample_of_persons_when_there_are_many(resolved_lake, monkeypatch):
    from veracity import evaluate as evaluation
    lake, _ = resolved_lake
    whole = evaluate(lake).blocking
    assert whole["share_of_persons"] == 1.0
    persons = query(lake, "SELECT count(DISTINCT person_id) AS n FROM person").column("n")[0].as_py()
    monkeypatch.setattr(evaluation, "BLOCKING_SAMPLE_PERSONS", persons // 4)
    sampled = evaluate(lake).blocking
    assert 0 < sampled["share_of_persons"] < 0.5
    assert 0 < sampled["true_pairs"] < whole["true_pairs"] / 2
    assert abs(sampled["reachable"] - whole["reachable"]) < 0.05
