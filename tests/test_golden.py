import json
from datetime import UTC, date, datetime

import duckdb
import pyarrow as pa

from veracity.matching.golden import build
from veracity.matching.resolve import person_id_for
from veracity.schema import CLEAN_PERSON

T1, T2, T3 = datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 6, 1, tzinfo=UTC), datetime(2026, 9, 1, tzinfo=UTC)
TRUST = {"custody": 90, "crime": 60, "intelligence": 40}


def _records(rows: list[dict]) -> pa.Table:
    base = {c: None for c in CLEAN_PERSON.column_names}
    full = [{**base, **r, "unique_id": f"{r['source_system']}:{r['source_record_id']}"} for r in rows]
    return pa.Table.from_pylist(full, schema=CLEAN_PERSON.arrow_schema)


def _build(rows: list[dict], clusters: dict[str, str], strongest: dict[str, float] | None = None):
    records = _records(rows)
    cluster_table = pa.table({"unique_id": list(clusters), "cluster_id": list(clusters.values())})
    ids = pa.table({"cluster_id": sorted(set(clusters.values())), "person_id": [f"P-{c}" for c in sorted(set(clusters.values()))]})
    strongest = strongest or {}
    links = pa.table({"unique_id": pa.array(list(strongest), pa.string()),
                      "match_probability": pa.array(list(strongest.values()), pa.float64())})
    return build(duckdb.connect(), records, cluster_table, ids, links, TRUST, 50, link_threshold=0.95)


def test_person_ids_are_deterministic_and_distinct():
    assert person_id_for("custody:1") == person_id_for("custody:1")
    assert person_id_for("custody:1") != person_id_for("custody:2")
    assert person_id_for("custody:1").startswith("P") and len(person_id_for("custody:1")) == 16


JOHN = [
    {"source_system": "crime", "source_record_id": "1", "first_name": "JOHN", "last_name": "SMITH",
     "date_of_birth": date(1990, 1, 2), "postcode": "B1 1AA", "address": "1 HIGH ST", "extracted_at": T1,
     "pnc_id": "02/0000002Z"},
    {"source_system": "custody", "source_record_id": "9", "first_name": "JOHN", "last_name": "SMYTH",
     "date_of_birth": date(1990, 2, 1), "postcode": "B2 2BB", "address": "2 LOW RD", "extracted_at": T2,
     "pnc_id": "01/0012345H", "aliases": "JACK SMITH|JS"},
    {"source_system": "crime", "source_record_id": "2", "first_name": "JON", "last_name": "SMITH",
     "date_of_birth": date(1990, 1, 2), "postcode": None, "extracted_at": T3, "phone": "+447700900001"},
    {"source_system": "intelligence", "source_record_id": "7", "first_name": "JOHN", "last_name": "SMITH",
     "birth_year": 1990, "postcode": "B3 3CC", "address": "3 NEW RD", "extracted_at": T2, "phone": "+447700900002"},
    {"source_system": "crime", "source_record_id": "3", "first_name": "ANN", "last_name": "LEE", "extracted_at": T1},
]
JOHN_CLUSTERS = {"crime:1": "a", "custody:9": "a", "crime:2": "a", "intelligence:7": "a", "crime:3": "b"}


def test_each_field_follows_its_survivorship_rule():
    person, _, _, _ = _build(JOHN, JOHN_CLUSTERS)
    john = {p["person_id"]: p for p in person.to_pylist()}["P-a"]
    # frequency: three records say JOHN, three SMITH
    assert (john["first_name"], john["last_name"]) == ("JOHN", "SMITH")
    # trust: custody (90) outranks crime's two records for the date of birth and the PNC id
    assert john["date_of_birth"] == date(1990, 2, 1) and john["birth_year"] == 1990
    assert john["pnc_id"] == "01/0012345H"
    # recency: the latest phone wins
    assert john["phone"] == "+447700900001"
    assert john["record_count"] == 4 and john["source_systems"] == "crime;custody;intelligence"
    assert json.loads(john["records_by_system"]) == {"crime": 2, "custody": 1, "intelligence": 1}
    assert john["first_seen"] == T1 and john["last_seen"] == T3
    provenance = json.loads(john["provenance"])
    assert provenance["date_of_birth"] == {"source_system": "custody", "source_record_id": "9", "rule": "trust"}
    assert provenance["phone"] == {"source_system": "crime", "source_record_id": "2", "rule": "recency"}
    assert provenance["first_name"]["rule"] == "frequency"
    assert provenance["home"]["rule"] == "recency"


def test_home_is_taken_whole_from_the_latest_record_and_ties_go_to_the_trusted_source():
    person, _, _, _ = _build(JOHN, JOHN_CLUSTERS)
    john = {p["person_id"]: p for p in person.to_pylist()}["P-a"]
    # custody:9 and intelligence:7 are both from T2 (the latest with a home): custody is more trusted
    assert (john["address"], john["postcode"]) == ("2 LOW RD", "B2 2BB")
    assert json.loads(john["provenance"])["home"]["source_record_id"] == "9"


def test_a_change_in_trust_changes_the_chosen_value():
    rows = [dict(r) for r in JOHN]
    for r in rows:
        if r["source_system"] == "custody":
            r["source_system"] = "intelligence"  # now the least trusted
            r["source_record_id"] = "99"
    clusters = {("intelligence:99" if k == "custody:9" else k): v for k, v in JOHN_CLUSTERS.items()}
    person, _, _, _ = _build(rows, clusters)
    john = {p["person_id"]: p for p in person.to_pylist()}["P-a"]
    assert john["date_of_birth"] == date(1990, 1, 2) and john["pnc_id"] == "02/0000002Z"


def test_every_name_and_address_is_kept_with_first_and_last_seen():
    _, _, aliases, addresses = _build(JOHN, JOHN_CLUSTERS)
    names = {(a["first_name"], a["last_name"], a["kind"]): a for a in aliases.to_pylist() if a["person_id"] == "P-a"}
    assert set(names) == {("JOHN", "SMITH", "name"), ("JOHN", "SMYTH", "name"), ("JON", "SMITH", "name"),
                          (None, "JACK SMITH", "alias"), (None, "JS", "alias")}
    js = names[("JOHN", "SMITH", "name")]
    assert (js["records"], js["source_systems"], js["first_seen"], js["last_seen"]) == (2, "crime;intelligence", T1, T2)
    homes = {a["postcode"]: a for a in addresses.to_pylist() if a["person_id"] == "P-a"}
    assert set(homes) == {"B1 1AA", "B2 2BB", "B3 3CC"}
    assert homes["B1 1AA"]["first_seen"] == T1 and homes["B1 1AA"]["source_systems"] == "crime"


def test_xref_carries_each_records_strongest_link():
    _, xref, _, _ = _build(JOHN, JOHN_CLUSTERS, {"crime:1": 0.999, "custody:9": 0.999, "crime:2": 0.97})
    probabilities = {(x["source_system"], x["source_record_id"]): x["match_probability"] for x in xref.to_pylist()}
    assert probabilities == {("crime", "1"): 0.999, ("custody", "9"): 0.999, ("crime", "2"): 0.97,
                             ("intelligence", "7"): 0.95, ("crime", "3"): 1.0}
    assert {x["person_id"] for x in xref.to_pylist()} == {"P-a", "P-b"}
