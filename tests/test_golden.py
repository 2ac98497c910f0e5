from datetime import UTC, date, datetime

import duckdb
import pyarrow as pa

from veracity.matching.golden import build
from veracity.matching.resolve import person_id_for
from veracity.schema import CLEAN_PERSON


def _records(rows: list[dict]) -> pa.Table:
    base = {c: None for c in CLEAN_PERSON.column_names}
    full = [{**base, **r, "unique_id": f"{r['source_system']}:{r['source_record_id']}"} for r in rows]
    return pa.Table.from_pylist(full, schema=CLEAN_PERSON.arrow_schema)


def test_person_ids_are_deterministic_and_distinct():
    assert person_id_for("custody:1") == person_id_for("custody:1")
    assert person_id_for("custody:1") != person_id_for("custody:2")
    assert person_id_for("custody:1").startswith("P") and len(person_id_for("custody:1")) == 16


def test_golden_record_survivorship_and_xref():
    t1, t2 = datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 6, 1, tzinfo=UTC)
    records = _records(
        [
            {"source_system": "crime", "source_record_id": "1", "first_name": "JOHN", "last_name": "SMITH",
             "date_of_birth": date(1990, 1, 2), "postcode": "B1 1AA", "extracted_at": t1},
            {"source_system": "custody", "source_record_id": "9", "first_name": "JOHN", "last_name": "SMYTH",
             "date_of_birth": date(1990, 1, 2), "postcode": "B2 2BB", "extracted_at": t2, "pnc_id": "01/0012345H"},
            {"source_system": "crime", "source_record_id": "2", "first_name": "JON", "last_name": "SMITH",
             "date_of_birth": None, "postcode": None, "extracted_at": t2},
            {"source_system": "crime", "source_record_id": "3", "first_name": "ANN", "last_name": "LEE", "extracted_at": t1},
        ]
    )
    clusters = pa.table({"unique_id": ["crime:1", "custody:9", "crime:2", "crime:3"], "cluster_id": ["a", "a", "a", "b"]})
    pairs = pa.table({"unique_id_l": ["crime:1", "crime:1"], "unique_id_r": ["custody:9", "crime:2"],
                      "match_weight": [20.0, 10.0], "match_probability": [0.999, 0.97], "evidence": ["{}", "{}"]})
    person, xref = build(duckdb.connect(), records, clusters, pairs, link_threshold=0.95)
    people = {p["person_id"]: p for p in person.to_pylist()}
    john = people[person_id_for("crime:1")]
    assert (john["first_name"], john["last_name"], john["date_of_birth"]) == ("JOHN", "SMITH", date(1990, 1, 2))
    assert john["postcode"] == "B2 2BB"  # the most recent record's postcode
    assert john["pnc_id"] == "01/0012345H" and john["record_count"] == 3
    assert john["source_systems"] == "crime;custody"
    assert john["first_seen"] == t1 and john["last_seen"] == t2
    probabilities = {(x["source_system"], x["source_record_id"]): x["match_probability"] for x in xref.to_pylist()}
    assert probabilities == {("crime", "1"): 0.999, ("custody", "9"): 0.999, ("crime", "2"): 0.97, ("crime", "3"): 1.0}
