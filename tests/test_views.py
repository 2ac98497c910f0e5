"""The reporting views (sql/views), run over a resolved lake's snapshot in DuckDB: each
one's figures against the tables it summarises."""

from __future__ import annotations

import re
from collections import Counter, defaultdict

import pytest

from stacks.analytics import load_views, require_rls_fields
from veracity.errors import VeracityError
from veracity.sql import VIEWS_DIR, create_views, query, view_queries


def rows(lake, sql: str) -> list[dict]:
    return query(lake, sql).to_pylist()


def test_every_view_is_athena_sql_with_the_row_level_security_columns():
    views = load_views(VIEWS_DIR)
    assert {v.name for v in views} == set(view_queries()) >= {"person_360", "duplicate_reduction", "data_quality"}
    for view in views:
        require_rls_fields(view)


def test_duplicate_reduction_counts_records_in_and_persons_out_per_system(resolved_lake):
    lake, summary = resolved_lake
    xref = rows(lake, "SELECT source_system, person_id FROM person_xref")
    by_system = defaultdict(list)
    for r in xref:
        by_system[r["source_system"]].append(r["person_id"])
    view = {r["source_system"]: r for r in rows(lake, "SELECT * FROM duplicate_reduction")}
    assert set(view) == set(by_system) | {"all systems"}
    for system, persons in by_system.items():
        assert view[system]["records_in"] == len(persons)
        assert view[system]["persons_out"] == len(set(persons))
        assert view[system]["records_per_person"] == pytest.approx(len(persons) / len(set(persons)))
    assert view["all systems"]["records_in"] == len(xref) == summary.records_resolved
    assert view["all systems"]["persons_out"] == summary.persons


def test_data_quality_reconciles_with_what_the_run_scrubbed(resolved_lake):
    lake, summary = resolved_lake
    view = rows(lake, "SELECT * FROM data_quality")
    assert {r["source_system"] for r in view} == set(summary.per_source)
    for source, stats in summary.per_source.items():
        batches = [r for r in view if r["source_system"] == source]
        assert sum(r["records_in"] for r in batches) == stats.records_in
        assert sum(r["records_clean"] for r in batches) == stats.records_clean
        assert sum(r["records_quarantined"] for r in batches) == stats.records_quarantined
    for r in view:
        assert r["records_in"] == r["records_clean"] + r["records_quarantined"]
        assert all(r[k] is None or 0 <= r[k] <= 1 for k in ("date_of_birth_rate", "postcode_rate", "pnc_id_rate"))
    # Only some systems record PNC ids: the rate says which.
    pnc = {r["source_system"]: r["pnc_id_rate"] for r in view}
    assert pnc["custody"] > 0.5 and pnc["road_collisions"] == 0


def test_person_360_has_one_row_per_person_with_its_records_systems_names_and_addresses(resolved_lake):
    lake, summary = resolved_lake
    view = {r["person_id"]: r for r in rows(lake, "SELECT * FROM person_360")}
    assert len(view) == summary.persons
    xref = rows(lake, "SELECT person_id, source_system FROM person_xref")
    records, systems = Counter(r["person_id"] for r in xref), defaultdict(set)
    for r in xref:
        systems[r["person_id"]].add(r["source_system"])
    names = Counter(r["person_id"] for r in rows(lake, "SELECT person_id FROM person_alias"))
    addresses = Counter(r["person_id"] for r in rows(lake, "SELECT person_id FROM person_address"))
    for person_id, r in view.items():
        assert r["record_count"] == records[person_id]
        assert r["systems"] == len(systems[person_id])
        assert sorted(r["source_systems"].split(";")) == sorted(systems[person_id])
        assert r["names_recorded"] == names[person_id] and r["addresses_recorded"] == addresses[person_id]
        assert r["first_seen"] <= r["last_seen"]
        if r["postcode"]:
            assert r["postcode"].startswith(r["area"]) and re.fullmatch(r"[A-Z]{1,2}[0-9][A-Z0-9]?", r["area"])
    assert sum(1 for r in view.values() if r["area"]) > 0.8 * len(view)


def test_person_360_holds_no_identifier_columns():
    columns = {c.name for v in load_views(VIEWS_DIR) if v.name == "person_360" for c in v.columns}
    assert not columns & {"pnc_id", "cro_number", "ni_number", "driving_licence", "provenance"}


def test_a_view_that_reads_another_is_created_after_it_and_one_that_cannot_be_made_is_named():
    import duckdb

    con = duckdb.connect()
    con.execute("CREATE TABLE t AS SELECT 1 AS x")
    assert create_views(con, {"b": "SELECT x + 1 AS y FROM a", "a": "SELECT x FROM t"}) == {}
    assert con.sql("SELECT y FROM b").fetchall() == [(2,)]
    unavailable = create_views(duckdb.connect(), {"lost": "SELECT x FROM nowhere"})
    assert list(unavailable) == ["lost"] and "nowhere" in unavailable["lost"]


def test_querying_a_view_the_snapshot_cannot_serve_says_why(resolved_lake, monkeypatch):
    lake, _ = resolved_lake
    monkeypatch.setattr("veracity.sql.view_queries", lambda: {"lost": "SELECT x FROM nowhere"})
    with pytest.raises(VeracityError, match="View lost is unavailable here: .*nowhere"):
        query(lake, "SELECT * FROM lost")


def test_person_search_finds_each_person_by_the_keys_of_its_current_records(resolved_lake):
    lake, _ = resolved_lake
    search = rows(lake, "SELECT * FROM person_search")
    assert {r["person_id"] for r in search} == {r["person_id"] for r in rows(lake, "SELECT person_id FROM person")}
    records = rows(lake, """
        SELECT x.person_id, c.last_name, c.first_name_metaphone, c.date_of_birth, c.pnc_id
        FROM person_xref AS x JOIN clean_person AS c ON c.unique_id = x.source_system || ':' || x.source_record_id
    """)
    keys = {(r["person_id"], r["last_name"], r["first_name_metaphone"], r["date_of_birth"], r["pnc_id"]) for r in search}
    assert all((r["person_id"], r["last_name"], r["first_name_metaphone"], r["date_of_birth"], r["pnc_id"]) in keys
               for r in records)
    assert len(search) == len({tuple(sorted(r.items(), key=lambda kv: kv[0])) for r in search})  # distinct rows
    assert {r["role"] for r in search} == {"investigator"}
    assert any(r["pnc_id"] for r in search) and any(r["forename_canonical"] for r in search)


EVENT_SOURCES = {"crime": "crime", "command_and_control": "incident", "stop_search": "search"}


def test_event_participants_are_the_current_records_of_event_sources_resolved_to_persons(resolved_lake):
    lake, _ = resolved_lake
    participants = rows(lake, "SELECT * FROM event_participant")
    xref = {(r["source_system"], r["source_record_id"]): r["person_id"]
            for r in rows(lake, "SELECT source_system, source_record_id, person_id FROM person_xref")}
    current = {key for key in xref if key[0] in EVENT_SOURCES}
    assert {(r["source_system"], r["source_record_id"]) for r in participants} == current
    assert len(participants) == len(current)  # one row per record: its latest version
    for r in participants:
        assert r["person_id"] == xref[(r["source_system"], r["source_record_id"])]
        assert r["event_kind"] == EVENT_SOURCES[r["source_system"]] and r["event_ref"]
    crime_roles = {r["participant_role"] for r in participants if r["source_system"] == "crime"}
    assert crime_roles >= {"SUSPECT", "VICTIM"}
    # Searches have no reference of their own: each is an event of its own.
    searches = [r for r in participants if r["source_system"] == "stop_search"]
    assert all(r["event_ref"] == r["source_record_id"] for r in searches)


def test_an_event_record_delivered_again_takes_part_in_its_latest_version_only():
    """The latest version of each record: the latest extract, then the latest batch
    of that extract; a record delivered once stands as it is."""
    import duckdb
    import pyarrow as pa

    from veracity.schema import EVENT_RECORD, PERSON_XREF

    def at(day):
        from datetime import UTC, datetime
        return datetime(2026, 11, day, tzinfo=UTC)

    versions = [  # (record, batch, extracted on, role)
        ("C1", "b1", 1, "SUSPECT"), ("C1", "b2", 3, "VICTIM"), ("C1", "b3", 2, "WITNESS"),  # latest extract wins
        ("C2", "b4", 5, "SUSPECT"), ("C2", "b5", 5, "OFFENDER"), ("C2", "b1", 5, "VICTIM"),  # a tie: latest batch
        ("C3", "b1", 1, "ACCUSED"),
    ]
    event_record = pa.Table.from_pylist([
        {"source_system": "crime", "source_record_id": r, "batch_id": b, "unique_id": f"crime:{r}", "extracted_at": at(d),
         "event_kind": "crime", "event_ref": "E1", "participant_role": role} for r, b, d, role in versions
    ], schema=EVENT_RECORD.arrow_schema)
    person_xref = pa.Table.from_pylist([{"source_system": "crime", "source_record_id": r, "person_id": f"P{r}"}
                                        for r in ("C1", "C2", "C3")], schema=PERSON_XREF.arrow_schema)
    con = duckdb.connect()
    con.register("event_record", event_record)
    con.register("person_xref", person_xref)
    assert "event_participant" not in create_views(con, {"event_participant": view_queries()["event_participant"]})
    found = sorted(con.execute("SELECT source_record_id, person_id, participant_role FROM event_participant").fetchall())
    assert found == [("C1", "PC1", "VICTIM"), ("C2", "PC2", "OFFENDER"), ("C3", "PC3", "ACCUSED")]


def test_events_count_their_participants(resolved_lake):
    lake, _ = resolved_lake
    participants = rows(lake, "SELECT source_system, event_ref, person_id, event_date FROM event_participant")
    by_event = defaultdict(list)
    for r in participants:
        by_event[(r["source_system"], r["event_ref"])].append(r)
    events = rows(lake, "SELECT * FROM event")
    assert {(e["source_system"], e["event_ref"]) for e in events} == set(by_event)
    for e in events:
        taking_part = by_event[(e["source_system"], e["event_ref"])]
        assert e["participant_records"] == len(taking_part)
        assert e["persons"] == len({r["person_id"] for r in taking_part})
        assert e["event_date"] == min((r["event_date"] for r in taking_part if r["event_date"]), default=None)
    assert any(e["persons"] > 1 for e in events if e["source_system"] == "crime")  # crimes with several people


def test_person_associations_pair_the_persons_of_each_shared_event(resolved_lake):
    lake, _ = resolved_lake
    by_event = defaultdict(set)
    for r in rows(lake, "SELECT source_system, event_ref, person_id FROM event_participant"):
        by_event[(r["source_system"], r["event_ref"])].add(r["person_id"])
    expected = Counter((a, b) for persons in by_event.values() for a in persons for b in persons if a < b)
    associations = rows(lake, "SELECT * FROM person_associations")
    assert {(r["person_id"], r["associate_id"]): r["events_together"] for r in associations} == dict(expected)
    assert expected and all(r["first_seen_together"] <= r["last_seen_together"] for r in associations)
    assert all(re.fullmatch(r"[A-Z_]+/[A-Z_]+(; [A-Z_]+/[A-Z_]+)*", r["roles"]) for r in associations)


def test_crime_trends_count_crimes_by_month_area_and_category_against_a_year_before(resolved_lake):
    lake, _ = resolved_lake
    crimes = Counter(
        (r["event_date"].replace(day=1), r["area"], r["category"])
        for r in rows(lake, "SELECT event_date, area, category FROM event WHERE event_kind = 'crime'")
        if r["event_date"]
    )
    trends = rows(lake, "SELECT * FROM crime_trends")
    assert {(r["month"], r["area"], r["category"]): r["offences"] for r in trends} == dict(crimes)
    for r in trends:
        before = crimes.get((r["month"].replace(year=r["month"].year - 1), r["area"], r["category"]))
        assert r["offences_a_year_before"] == before
        assert r["change_on_a_year_before"] == r["offences"] - (before or 0)
    assert any(r["offences_a_year_before"] for r in trends)


def test_the_types_the_catalog_declares_for_each_view_are_the_types_it_returns(resolved_lake):
    """Athena marks a view stale when its declared columns differ from its query's: the
    types sqlglot gives each column are checked against the rows the view returns here."""
    from stacks.catalog import glue_type, reporting_view_columns

    lake, _ = resolved_lake
    for name, columns in reporting_view_columns(load_views(VIEWS_DIR)).items():
        returned = query(lake, f"SELECT * FROM {name} LIMIT 1").schema
        assert [(f.name, glue_type(f.type)) for f in returned] == columns, name
