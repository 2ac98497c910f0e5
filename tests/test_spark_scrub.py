"""The Spark (Glue) scrub gives exactly the local scrub's output, in local PySpark 3.5
(Glue 5.0 runs Spark 3.5.4 on Python 3.11)."""

from __future__ import annotations

import gzip
import importlib.util
import io
import shutil
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from tests.spark_session import local_spark
from veracity import batches as ledger
from veracity.lake import Lake
from veracity.schema import CLEAN_PERSON, EVENT_RECORD, QUARANTINE
from veracity.scrub.readers import is_compressed, iter_extract
from veracity.scrub.scrub import scrub_batch
from veracity.sources import load_sources, parse_config
from veracity.synthetic import generate

pytest.importorskip("pyspark", reason="pyspark is not installed (pip install -r requirements-dev.txt)")
if shutil.which("java") is None:
    pytest.skip("Spark needs a Java runtime and there is no 'java' on PATH", allow_module_level=True)

from veracity.scrub.spark import collect, scrub_with_spark, spark_schema  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:pyspark")  # distutils, pandas APIs
ROOT = Path(__file__).resolve().parent.parent
SOURCES = load_sources()
EXTRACTED = datetime(2026, 11, 1, 6, tzinfo=UTC)


@pytest.fixture(scope="module")
def spark():
    # Not UTC: timestamps must still round-trip.
    with local_spark("veracity-tests", 2, 4, **{"spark.sql.session.timeZone": "Europe/London"}) as session:
        yield session


@pytest.fixture(scope="module")
def lake(tmp_path_factory) -> Lake:
    lake = Lake.open(str(tmp_path_factory.mktemp("spark-lake")), create=True)
    generate(lake, 150, seed=3)
    return lake


def _by(table: pa.Table, schema: pa.Schema, key: str) -> pa.Table:
    table = table.cast(schema)
    return table.take(pc.sort_indices(table, [(key, "ascending")]))


def assert_same(local, spark_result) -> None:
    assert spark_result.rows_in == local.rows_in
    assert spark_result.batch_error == local.batch_error
    want = _by(local.clean, CLEAN_PERSON.arrow_schema, "unique_id")
    got = _by(spark_result.clean, CLEAN_PERSON.arrow_schema, "unique_id")
    assert got.equals(want), (got.to_pylist()[:3], want.to_pylist()[:3])
    want_q = _by(local.quarantine, QUARANTINE.arrow_schema, "line_number")
    got_q = _by(spark_result.quarantine, QUARANTINE.arrow_schema, "line_number")
    assert got_q.equals(want_q), (got_q.to_pylist(), want_q.to_pylist())
    want_e = _by(local.events, EVENT_RECORD.arrow_schema, "unique_id")
    got_e = _by(spark_result.events, EVENT_RECORD.arrow_schema, "unique_id")
    assert got_e.equals(want_e), (got_e.to_pylist()[:3], want_e.to_pylist()[:3])
    assert spark_result.reconciles()


def scrub_both(spark, data: bytes, config, batch_id: str = "b1", extracted_at: datetime = EXTRACTED, compressed: bool = False):
    local = scrub_batch(data, config, batch_id, extracted_at, compressed)
    chunks = iter_extract(io.BytesIO(data), config, compressed, chunk_rows=7)  # several chunks
    return local, collect(scrub_with_spark(spark, chunks, config, batch_id, extracted_at), config.name, batch_id)


def test_spark_schema_is_derived_from_the_arrow_schema():
    from pyspark.sql import types as T

    fields = {f.name: f.dataType for f in spark_schema(CLEAN_PERSON.arrow_schema)}
    assert list(fields) == CLEAN_PERSON.column_names
    assert fields["extracted_at"] == T.TimestampType()
    assert fields["date_of_birth"] == T.DateType()
    assert fields["birth_year"] == T.IntegerType()
    assert fields["first_name"] == T.StringType()
    assert {f.name: f.dataType for f in spark_schema(QUARANTINE.arrow_schema)}["line_number"] == T.LongType()


@pytest.mark.parametrize("source", sorted(SOURCES))
def test_spark_scrub_equals_local_scrub(spark, lake, source):
    (batch_id,) = lake.list_dirs("landing", source)
    checked = ledger.check(lake, ledger.Batch(source, batch_id))
    assert checked.problem is None
    config = SOURCES[source]
    data = lake.read_bytes("landing", source, batch_id, checked.extract_name)
    compressed = is_compressed(config, checked.extract_name)
    local, spark_result = scrub_both(spark, data, config, batch_id, checked.extracted_at, compressed)
    assert local.clean.num_rows > 0
    assert_same(local, spark_result)


CSV = parse_config(
    {
        "source": "example", "format": "csv", "record_id": "ID",
        "fields": {"first_name": "FIRST", "last_name": "LAST", "date_of_birth": {"column": "DOB", "format": "%d/%m/%Y"},
                   "postcode": "PC"},
    },
    "example.yaml",
)
CSV_ROWS = (
    "ID,FIRST,LAST,DOB,PC\n"
    "1, Dr  José ,O'Brien,01/02/1990,b12 9qt\n"
    ",No,Id,,\n"  # missing id
    "2,Ann,Lee,31/02/1990,\n"
    "2,Ann,Leigh,,\n"  # duplicate id
    "3,Short\n"  # wrong column count
    '4,"Mary\nAnn","O""Neil",,\n'  # embedded newline and quote
    "5,Ragged,Row,,,EXTRA\n"
    "6,Łukasz,Wiśniewski,01/01/1980,NOT A PC\n"
)


def test_row_level_rejections_match(spark):
    data = CSV_ROWS.encode() + b"7,Bad\xff,Bytes,,\n" + b"2,Third,Two,,\n"
    local, spark_result = scrub_both(spark, data, CSV)
    reasons = set(local.quarantine.column("reason_codes").to_pylist())
    assert reasons == {"missing_record_id", "duplicate_record_id", "wrong_column_count", "undecodable"}
    assert_same(local, spark_result)


def test_two_kinds_of_field_problem_in_one_chunk(spark):
    data = "ID,FIRST,LAST,DOB,PC\n1,A,B,01/01/2030,\n2,C,D,,NOT A PC\n3,E,F,,\n"
    local, spark_result = scrub_both(spark, data.encode(), CSV)
    assert_same(local, spark_result)


def test_nested_json_columns_with_dots_match(spark):
    config = SOURCES["intelligence"]
    lines = [
        '{"subject_id": "A1", "name": {"given": "Bob", "family": "Smith"}, "aliases": ["Rob S", "Bobby"]}',
        '{"subject_id": "A1", "name": {"given": "Robert", "family": "Smith"}}',
        '{"name": {"given": "No", "family": "Id"}}',
        "not json",
        '{"subject_id": "B2", "name": {"given": "Jo", "family": "Bloggs"}, "dob": "19900102", "pnc": "x"}',
    ]
    local, spark_result = scrub_both(spark, "\n".join(lines).encode(), config)
    assert local.quarantine.num_rows == 4
    assert_same(local, spark_result)


@pytest.mark.parametrize(
    ("data", "compressed"),
    [
        (b"ID,FIRST\n1,A\n", False),  # a mapped column is missing: the batch is rejected
        (gzip.compress(CSV_ROWS.encode())[:40], True),  # truncated gzip
        (b"ID,FIRST,LAST,DOB,PC\n", False),  # header only: nothing to scrub
    ],
    ids=["missing-column", "truncated-gzip", "header-only"],
)
def test_batch_level_outcomes_match(spark, data, compressed):
    local, spark_result = scrub_both(spark, data, CSV, compressed=compressed)
    assert_same(local, spark_result)


def test_glue_scrub_job_writes_the_local_paths(spark, lake, capsys):
    spec = importlib.util.spec_from_file_location("glue_jobs_scrub", ROOT / "glue_jobs" / "scrub.py")
    job = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(job)
    (batch_id,) = lake.list_dirs("landing", "crime")
    argv = ["--lake", lake.root, "--source", "crime", "--batch-id", batch_id, "--JOB_NAME", "veracity-scrub"]
    assert job.main(argv) == 0
    assert f"scrubbed crime/{batch_id}:" in capsys.readouterr().out

    checked = ledger.check(lake, ledger.Batch("crime", batch_id))
    data = lake.read_bytes("landing", "crime", batch_id, checked.extract_name)
    local = scrub_batch(data, SOURCES["crime"], batch_id, checked.extracted_at)
    clean = lake.read_table("clean", "clean_person", "crime", f"{batch_id}.parquet")
    quarantine = lake.read_table("quarantine", "crime", f"{batch_id}.parquet")
    assert clean.schema.equals(CLEAN_PERSON.arrow_schema) and quarantine.schema.equals(QUARANTINE.arrow_schema)
    assert _by(clean, CLEAN_PERSON.arrow_schema, "unique_id").equals(_by(local.clean, CLEAN_PERSON.arrow_schema, "unique_id"))
    assert quarantine.equals(local.quarantine)
    events = lake.read_table("clean", "event_record", "crime", f"{batch_id}.parquet")
    assert local.events.num_rows == local.clean.num_rows
    assert _by(events, EVENT_RECORD.arrow_schema, "unique_id").equals(_by(local.events, EVENT_RECORD.arrow_schema, "unique_id"))
    assert job.main(["--lake", lake.root, "--source", "crime", "--batch-id", "no-such-batch"]) == 1
