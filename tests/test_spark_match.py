"""The Spark (Glue) resolution gives the embedded engine's: one declared model, trained
once on DuckDB, run by Splink on both, in local PySpark 3.5 (Glue 5.0 runs Spark 3.5.4)
with Splink's similarity jar."""

from __future__ import annotations

import csv
import importlib.util
import json
import shutil
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.spark_session import local_spark
from veracity import review, snapshots
from veracity.lake import Lake
from veracity.matching import model, model_store, pair_keys
from veracity.matching.resolve import connect, resolve, train
from veracity.pipeline import current_records, scrub_stage
from veracity.sources import load_sources
from veracity.sql import query
from veracity.synthetic import generate

pytest.importorskip("pyspark", reason="pyspark is not installed (pip install -r requirements-dev.txt)")
if shutil.which("java") is None:
    pytest.skip("Spark needs a Java runtime and there is no 'java' on PATH", allow_module_level=True)

from veracity.matching.spark import records_frame, resolve_with_spark, spark_sql  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:pyspark")  # distutils, pandas APIs
ROOT = Path(__file__).resolve().parent.parent
PEOPLE = 170  # about 1,700 clean records: the sample both engines resolve


@pytest.fixture(scope="module")
def spark(tmp_path_factory):
    from splink.backends.spark import similarity_jar_location

    # One core: the many small jobs of a small linkage run finish sooner without contention.
    with local_spark("veracity-match-tests", 1, 1, **{"spark.jars": similarity_jar_location()}) as session:
        # spark.jars reaches the driver's classpath only when this session starts the JVM;
        # when another test module started it, the jar is added to the running session.
        session.sql(f"ADD JAR '{similarity_jar_location()}'")
        session.sparkContext.setCheckpointDir(str(tmp_path_factory.mktemp("spark-checkpoints")))
        yield session


@pytest.fixture(scope="module")
def lake(tmp_path_factory) -> Lake:
    """A scrubbed lake with a model trained on DuckDB and two reviewers' decisions: a
    must-link across two persons and a cannot-link inside one."""
    lake = Lake.open(str(tmp_path_factory.mktemp("match-lake")), create=True)
    generate(lake, PEOPLE, seed=7)
    scrub_stage(lake, load_sources(), lambda _message: None)
    records = current_records(duckdb.connect(), lake)
    model_json, summary = train(duckdb.connect(), records)
    trained = model_store.save(lake, model_json, summary)

    undecided = _resolve_on_duckdb(records, trained.model_json, review.current_decisions(lake), tmp_path_factory)
    cluster_of = dict(zip(*undecided.clusters.select(["unique_id", "cluster_id"]).to_pydict().values(), strict=True))
    members: dict[str, set[str]] = {}
    for uid, cid in cluster_of.items():
        members.setdefault(cid, set()).add(uid)
    pnc = {u: p for u, p in zip(*records.select(["unique_id", "pnc_id"]).to_pydict().values(), strict=True) if p}

    def pncs(*uids: str) -> set[str]:
        return {pnc[u] for uid in uids for u in members[cluster_of[uid]] if u in pnc}

    by_ids = [("unique_id_l", "ascending"), ("unique_id_r", "ascending")]
    # A linked pair that is a person of two records: ruling it apart makes two persons.
    linked_pair = next(r for r in pq.read_table(undecided.pairs_file).sort_by(by_ids).to_pylist()
                       if r["match_probability"] >= model.LINK_THRESHOLD
                       and members[cluster_of[r["unique_id_l"]]] == {r["unique_id_l"], r["unique_id_r"]})
    # Two persons with one PNC id at most: joining them breaks no constraint.
    apart_pair = next(r for r in undecided.review_candidates.sort_by(by_ids).to_pylist()
                      if len(pncs(r["unique_id_l"], r["unique_id_r"])) <= 1)
    decisions = tmp_path_factory.mktemp("review") / "decisions.csv"
    with open(decisions, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["unique_id_l", "unique_id_r", "decision"])
        writer.writerow([linked_pair["unique_id_l"], linked_pair["unique_id_r"], "cannot_link"])
        writer.writerow([apart_pair["unique_id_l"], apart_pair["unique_id_r"], "must_link"])
    review.import_decisions(lake, str(decisions))
    return lake


def _resolve_on_duckdb(records, model_json, decisions, tmp_path_factory):
    scratch = tmp_path_factory.mktemp("duckdb")
    return resolve(connect(str(scratch)), records, model_json, decisions, str(scratch))


@pytest.fixture(scope="module")
def both(spark, lake, tmp_path_factory):
    """(records, decisions, DuckDB's resolution, Spark's resolution) with the same trained model."""
    records = current_records(duckdb.connect(), lake)
    trained = model_store.current(lake)
    decisions = review.current_decisions(lake)
    assert trained is not None and decisions.num_rows == 2
    local = _resolve_on_duckdb(records, trained.model_json, decisions, tmp_path_factory)
    on_spark = resolve_with_spark(spark, records_frame(spark, records), trained.model_json, decisions,
                                  str(tmp_path_factory.mktemp("spark-out")))
    return records, decisions, local, on_spark


def _partition(clusters: pa.Table) -> set[frozenset[str]]:
    members: dict[str, set[str]] = {}
    for uid, cid in zip(*clusters.select(["unique_id", "cluster_id"]).to_pydict().values(), strict=True):
        members.setdefault(cid, set()).add(uid)
    return {frozenset(m) for m in members.values()}


def _by_pair(table: pa.Table) -> dict[tuple[str, str], dict]:
    return {(r["unique_id_l"], r["unique_id_r"]): r for r in table.to_pylist()}


def _jaro_winkler_differs(spark, records: pa.Table, pairs: set[tuple[str, str]]) -> set[tuple[str, str]]:
    """The pairs among ``pairs`` whose forenames, surnames or addresses DuckDB's
    Jaro-Winkler and the Splink jar's score differently (see veracity.matching.spark)."""
    if not pairs:
        return set()
    con = duckdb.connect()
    con.register("records", records.select(["unique_id", "first_name", "last_name", "address"]))
    con.register("pairs", pa.table({"l": [p[0] for p in pairs], "r": [p[1] for p in pairs]}))
    values = con.sql(
        """
        SELECT p.l, p.r, x, y, jaro_winkler_similarity(x, y) AS here FROM pairs p
        JOIN records a ON a.unique_id = p.l JOIN records b ON b.unique_id = p.r,
        LATERAL (VALUES (a.first_name, b.first_name), (a.last_name, b.last_name), (a.address, b.address)) v(x, y)
        WHERE x IS NOT NULL AND y IS NOT NULL
        """
    ).to_arrow_table()
    scored = spark.createDataFrame(values.to_pandas()).selectExpr("l", "r", "here", "jaro_winkler(x, y) AS there").collect()
    return {(row.l, row.r) for row in scored if abs(row.here - row.there) > 1e-9}


def test_the_spark_dialect_sql_has_no_duckdb_only_functions():
    sql = spark_sql(f"SELECT 1 FROM a l JOIN b r ON NOT ({model.CANNOT_LINK_SQL})").lower()
    assert "jaro_winkler(" in sql and "arrays_overlap(" in sql
    assert "jarowinkler_similarity" not in sql and "&&" not in sql and "list_" not in sql


def test_same_clusters_on_spark_as_on_duckdb(both):
    records, decisions, local, on_spark = both
    assert on_spark.clusters.num_rows == local.clusters.num_rows == records.num_rows
    assert _partition(on_spark.clusters) == _partition(local.clusters)
    for result in (local, on_spark):
        cluster_of = dict(zip(*result.clusters.to_pydict().values(), strict=True))
        for d in decisions.to_pylist():
            together = cluster_of[d["unique_id_l"]] == cluster_of[d["unique_id_r"]]
            assert together == (d["decision"] == "must_link"), d
    assert on_spark.comparisons == local.comparisons
    assert on_spark.links == local.links


def test_same_scored_pairs_and_evidence_on_spark_as_on_duckdb(spark, both):
    records, _decisions, local, on_spark = both
    here, there = _by_pair(pq.read_table(local.pairs_file)), _by_pair(pq.read_table(on_spark.pairs_file))
    assert len(here) > 1000
    different = set(here) ^ set(there)
    different |= {
        pair for pair in set(here) & set(there)
        if abs(here[pair]["match_probability"] - there[pair]["match_probability"]) > 1e-6
        or here[pair]["evidence"] != there[pair]["evidence"]
    }
    # The only differences allowed: pairs whose Jaro-Winkler the two engines compute differently.
    explained = _jaro_winkler_differs(spark, records, different)
    assert different == explained, sorted(different - explained)[:5]
    assert len(different) <= len(here) // 1000, sorted(different)
    for pair in set(here) - different:
        assert json.loads(there[pair]["evidence"]) == json.loads(here[pair]["evidence"])

    strongest = [dict(zip(*t.to_pydict().values(), strict=True)) for t in (local.strongest_link, on_spark.strongest_link)]
    assert strongest[0].keys() == strongest[1].keys()
    touched = {uid for pair in different for uid in pair}
    assert all(abs(strongest[0][u] - strongest[1][u]) <= 1e-6 for u in strongest[0] if u not in touched)
    candidates = [set(_by_pair(t)) for t in (local.review_candidates, on_spark.review_candidates)]
    assert candidates[0] - different == candidates[1] - different


def _load_job(script: str = "match.py"):
    spec = importlib.util.spec_from_file_location(f"glue_jobs_{script[:-3]}", ROOT / "glue_jobs" / script)
    job = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(job)
    return job


@pytest.fixture(scope="module")
def small_lake(lake, tmp_path_factory) -> Lake:
    """A few people's records, with the module lake's trained model: the Glue job's run
    is mostly Spark's fixed costs, so it is tried on little data."""
    small = Lake.open(str(tmp_path_factory.mktemp("small-match-lake")), create=True)
    generate(small, 15, seed=11)
    scrub_stage(small, load_sources(), lambda _message: None)
    trained = model_store.current(lake)
    model_store.save(small, trained.model_json, trained.summary)
    return small


@pytest.mark.slow  # Spark's fixed costs: about half a minute however few the records
def test_glue_match_job_stages_the_spark_resolution(spark, small_lake, tmp_path, capsys):
    job = _load_job()
    argv = ["--lake", small_lake.root, "--run-id", "r1", "--JOB_NAME", "veracity-match"]
    assert job.main(argv) == 0
    assert "matched " in capsys.readouterr().out
    staged = ("staging", "match", "r1")
    records = current_records(duckdb.connect(), small_lake)
    local = resolve(connect(str(tmp_path)), records, model_store.current(small_lake).model_json,
                    review.current_decisions(small_lake), str(tmp_path))
    assert _partition(small_lake.read_table(*staged, "clusters")) == _partition(local.clusters)
    pairs = small_lake.read_table(*staged, "match_pairs")
    assert set(_by_pair(pairs)) == set(_by_pair(pq.read_table(local.pairs_file)))
    summary = small_lake.read_json(*staged, "summary.json")
    assert summary["model_version"] == model_store.current(small_lake).version
    assert summary["records"] == records.num_rows
    assert (summary["comparisons"], summary["pairs"], summary["links"]) == (local.comparisons, local.pairs, local.links)
    assert summary["persons"] == len(_partition(local.clusters))
    assert not small_lake.exists(*staged, "checkpoints")

    # The publish job turns the staged match into the lake's snapshot, as a local run would.
    publish = _load_job("publish.py")
    assert publish.main(["--lake", small_lake.root, "--JOB_NAME", "veracity-publish"]) == 0
    assert "published r1" in capsys.readouterr().out
    assert snapshots.current_run_id(small_lake) == "r1" and not small_lake.exists(*staged)
    xref = query(small_lake, "SELECT source_system || ':' || source_record_id AS unique_id, person_id FROM person_xref")
    assert xref.num_rows == records.num_rows
    assert _partition(xref.rename_columns(["unique_id", "cluster_id"])) == _partition(local.clusters)
    # Spark hashes otherwise: the published pairs carry DuckDB's keys of their records.
    published = query(small_lake, "SELECT * FROM match_pairs")
    assert published.num_rows == summary["pairs"]
    keys = list(pair_keys.KEY_COLUMNS)
    assert published.select(keys).to_pylist() == pair_keys.with_keys(published).select(keys).to_pylist()
    for f in snapshots.read_snapshot(small_lake)["tables"]["match_pairs"]:
        with small_lake.fs.open_input_file(small_lake.path(f)) as handle:
            assert pair_keys.file_usable(handle)
    assert publish.main(["--lake", small_lake.root]) == 1  # nothing staged now
    assert "no staged match" in capsys.readouterr().err


def test_glue_match_job_needs_a_trained_model(lake, capsys):
    job = _load_job()
    assert job.main(["--lake", lake.root, "--model-version", "v-none"]) == 1
    assert "no model version" in capsys.readouterr().err
