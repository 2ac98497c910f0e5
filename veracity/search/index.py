"""The serving index of person search: from a blocking key to the records holding it.

A record is reachable by the key of every blocking rule of the linkage model whose
columns it holds (``model.PREDICTION_BLOCKING_COLUMNS``), plus name-only keys for
searches that give nothing else; a query's keys are made by the same SQL, so a
search finds the records a pipeline run would have compared it with.

``SnapshotIndex`` serves a lake's published snapshot from memory: sorted 64-bit key
hashes (a binary search per key) and the records' compared fields in one Arrow table.
The search path needs no numpy, so the search Lambda's bundle fits Lambda's size limit.
"""

from __future__ import annotations

import bisect
import hashlib
import json

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
from splink.internals.input_column import InputColumn
from splink.internals.term_frequencies import term_frequencies_for_single_column_sql

from veracity import snapshots
from veracity.lake import Lake
from veracity.matching import model, model_store
from veracity.search.scoring import tf_columns
from veracity.sources import load_sources

SEARCH_KEY_COLUMNS: tuple[tuple[str, ...], ...] = model.PREDICTION_BLOCKING_COLUMNS + (
    ("first_name", "last_name"),
    ("first_name_metaphone", "last_name_metaphone"),
)
# A key held by more records than this is too common to help (JOHN SMITH): a search
# uses it only when no other key reaches anyone.
MAX_POSTINGS = 1_000
MAX_CANDIDATES = 2_000
RECORD_COLUMNS = ("unique_id", "person_id", "source_system", "first_name", "forename_canonical", "middle_names",
                  "last_name", "first_name_metaphone", "last_name_metaphone", "aliases", "date_of_birth", "birth_year",
                  "sex", "address", "postcode", "postcode_sector", "postcode_district", "phone", "email", "pnc_id",
                  "cro_number", "ni_number", "driving_licence", "other_id")
MAX_ASSOCIATIONS = 50
PERSON_SUMMARY = ("person_id", "first_name", "last_name", "date_of_birth", "postcode", "source_systems", "provenance")


def keys_sql(table: str) -> str:
    """(key, row) for every search key a row of ``table`` (clean columns and ``row``)
    holds: the low 64 bits of the MD5 of ``rule|value|value…``, as ``query_keys``."""
    parts = []
    for i, columns in enumerate(SEARCH_KEY_COLUMNS):
        present = " AND ".join(f'"{c}" IS NOT NULL' for c in columns)
        values = ", ".join(f'"{c}"' for c in columns)
        parts.append(f"SELECT md5_number_lower(concat_ws('|', {i}, {values})) AS key, row FROM {table} WHERE {present}")
    return "\nUNION ALL ".join(parts)


def records_sql() -> str:
    """Every current record of the snapshot (``clean_person`` and ``person_xref`` in the
    connection) with its person, numbered by ``row``: what the index serves."""
    return f"""
        SELECT (row_number() OVER (ORDER BY c.unique_id) - 1)::INTEGER AS row,
               {', '.join('x.person_id' if c == 'person_id' else f'c.{c}' for c in RECORD_COLUMNS)}
        FROM clean_person c JOIN person_xref x USING (source_system, source_record_id)
    """


def term_frequency_sql(column: str, table: str) -> str:
    """(value, ``tf_<column>``) over ``table``: Splink's own term frequency SQL, as a run counts them."""
    return term_frequencies_for_single_column_sql(InputColumn(column, sqlglot_dialect_str="duckdb"), table)


def query_keys(records: list[dict]) -> list[int]:
    """The search keys of clean records (dicts), as ``keys_sql`` makes them: sorted, each once."""
    keys = set()
    for record in records:
        for i, columns in enumerate(SEARCH_KEY_COLUMNS):
            values = [record.get(c) for c in columns]
            if all(v is not None for v in values):
                digest = hashlib.md5("|".join([str(i), *map(str, values)]).encode()).digest()
                keys.add(int.from_bytes(digest[8:], "little"))
    return sorted(keys)


def visible(records: pa.Table, hidden_sources: frozenset[str]) -> pa.Table:
    """``records`` less those of ``hidden_sources``."""
    if not hidden_sources or records.num_rows == 0:
        return records
    return records.filter(pc.invert(pc.is_in(records.column("source_system"), pa.array(sorted(hidden_sources)))))


def restricted_sources() -> frozenset[str]:
    return frozenset(name for name, config in load_sources().items() if config.sensitivity == "restricted")


def choose_postings(postings: list[tuple[int, object]]) -> list[object]:
    """Of the query's keys found, as (records holding it, posting), the postings to read:
    every key held by at most MAX_POSTINGS records, or, when there is none, the rarest one."""
    ordered = sorted(postings, key=lambda p: p[0])
    return [p for n, p in ordered if n <= MAX_POSTINGS] or [p for _, p in ordered[:1]]


class SnapshotIndex:
    """The published snapshot of a lake, indexed for search in memory."""

    def __init__(self, lake: Lake, run_id: str | None = None):
        snapshot = snapshots.read_snapshot(lake, run_id)
        self.run_id = snapshot["run_id"]
        version = snapshot.get("model_version")
        self.trained = model_store.load(lake, version).model_json if version else None
        con = duckdb.connect()
        snapshots.register(con, lake, snapshot, ["clean_person", "person_xref", "person", "person_id_history"])
        con.execute(f"CREATE TABLE search_records AS {records_sql()}")
        self.tf_columns = tf_columns(self.trained) if self.trained else []
        self.term_frequencies: dict[str, dict[str, float]] = {}
        for column in self.tf_columns:
            self.term_frequencies[column] = dict(con.execute(term_frequency_sql(column, "search_records")).fetchall())
        # One chunk per column: taking rows from many chunks costs a pass over all of them.
        self.records = con.sql("SELECT * EXCLUDE (row) FROM search_records ORDER BY row").to_arrow_table().combine_chunks()
        keys = con.sql(f"SELECT key, row FROM ({keys_sql('search_records')}) ORDER BY key, row").to_arrow_table()
        self._keys = _as_sequence(keys.column("key").combine_chunks(), "Q")  # for bisect, without a copy
        self._rows = keys.column("row").combine_chunks()
        self.persons = con.sql(f"SELECT {', '.join(PERSON_SUMMARY)} FROM person").to_arrow_table().combine_chunks()
        self._person_row = {p: i for i, p in enumerate(self.persons.column("person_id").to_pylist())}
        self._merged_into = dict(con.execute(
            "SELECT other_person_id, person_id FROM person_id_history WHERE event = 'merged'").fetchall())
        self._lake = lake
        con.close()

    @property
    def size(self) -> dict[str, int]:
        return {"records": self.records.num_rows, "keys": len(self._keys), "persons": self.persons.num_rows}

    def candidates(self, query_keys: list[int], hidden_sources: frozenset[str]) -> pa.Table:
        """The records holding any of ``query_keys`` (common keys only when nothing
        rarer reaches anyone), less those of ``hidden_sources``."""
        spans = [(bisect.bisect_left(self._keys, k), bisect.bisect_right(self._keys, k)) for k in query_keys]
        used = choose_postings([(end - start, (start, end)) for start, end in spans if end > start])
        rows = sorted({row for start, end in used for row in self._rows.slice(start, end - start).to_pylist()})
        records = self.records.take(pa.array(rows[:MAX_CANDIDATES], pa.int64()))
        return self.with_tf(visible(records, hidden_sources))

    def with_tf(self, records: pa.Table) -> pa.Table:
        for column in self.tf_columns:
            frequencies = self.term_frequencies[column]
            values = records.column(column).to_pylist()
            records = records.append_column(f"tf_{column}", pa.array([frequencies.get(v) for v in values], pa.float64()))
        return records

    def person_summaries(self, person_ids: list[str]) -> dict[str, dict]:
        rows = [self._person_row[p] for p in person_ids if p in self._person_row]
        return {r["person_id"]: r for r in self.persons.take(pa.array(rows, pa.int64())).to_pylist()}

    def survivor(self, person_id: str) -> str | None:
        """The current id a person id stands for now: itself, or the survivor of the
        merges it went into; None when no such person is known."""
        seen = set()
        while person_id not in self._person_row:
            if person_id in seen or person_id not in self._merged_into:
                return None
            seen.add(person_id)
            person_id = self._merged_into[person_id]
        return person_id

    def person_tables(self, person_id: str) -> dict[str, list[dict]]:
        """The published rows about one person (``person_pages_sql``)."""
        from veracity.sql import connect  # the views: read only for a person page

        con = connect(self._lake, self.run_id)
        try:
            found = con.sql(person_pages_sql("WHERE person_id = $p"), params={"p": person_id}).fetchall()
        finally:
            con.close()
        return json.loads(found[0][1])


def _as_sequence(array: pa.Array, format: str) -> memoryview:
    """A fixed-width Arrow array without nulls as a read-only sequence of Python numbers
    (``format`` as in ``struct``), sharing the array's memory."""
    data = array.buffers()[1]
    if data is None or len(array) == 0:
        return memoryview(b"").cast(format)
    return memoryview(data).cast(format)[array.offset:array.offset + len(array)]


def person_pages_sql(where: str = "") -> str:
    """(person_id, page): per person of ``person`` (filtered by ``where``), the JSON of
    its golden record, source records, aliases, addresses and associations (the
    ``person_associations`` view), over a connection with the snapshot's views."""
    return f"""
        WITH p AS (SELECT * FROM person {where}),
        records AS (
            SELECT x.person_id, list(struct_pack(
                       source_system := c.source_system, source_record_id := c.source_record_id,
                       first_name := c.first_name, middle_names := c.middle_names, last_name := c.last_name,
                       aliases := c.aliases, date_of_birth := c.date_of_birth, birth_year := c.birth_year, sex := c.sex,
                       address := c.address, town := c.town, postcode := c.postcode, phone := c.phone, email := c.email,
                       pnc_id := c.pnc_id, cro_number := c.cro_number, ni_number := c.ni_number,
                       driving_licence := c.driving_licence, other_id := c.other_id, extracted_at := c.extracted_at,
                       match_probability := x.match_probability)
                   ORDER BY c.source_system, c.source_record_id) AS rows
            FROM person_xref x JOIN clean_person c USING (source_system, source_record_id)
            WHERE x.person_id IN (SELECT person_id FROM p) GROUP BY x.person_id),
        aliases AS (
            SELECT person_id, list(a ORDER BY a.records DESC, a.last_name, a.first_name) AS rows
            FROM (SELECT person_id, struct_pack(first_name, last_name, kind, records, source_systems, first_seen, last_seen) AS a
                  FROM person_alias WHERE person_id IN (SELECT person_id FROM p)) GROUP BY person_id),
        addresses AS (
            SELECT person_id, list(a ORDER BY a.last_seen DESC, a.address) AS rows
            FROM (SELECT person_id, struct_pack(address, town, postcode, records, source_systems, first_seen, last_seen) AS a
                  FROM person_address WHERE person_id IN (SELECT person_id FROM p)) GROUP BY person_id),
        pairs AS (
            SELECT person_id, associate_id, events_together, roles, event_kinds, first_seen_together, last_seen_together
            FROM person_associations
            UNION ALL
            SELECT associate_id, person_id, events_together, roles, event_kinds, first_seen_together, last_seen_together
            FROM person_associations),
        associations AS (
            SELECT person_id, list(a ORDER BY a.events_together DESC, a.person_id)[1:{MAX_ASSOCIATIONS}] AS rows
            FROM (SELECT person_id, struct_pack(person_id := associate_id, events_together, roles, event_kinds,
                                                first_seen_together, last_seen_together) AS a
                  FROM pairs WHERE person_id IN (SELECT person_id FROM p)) GROUP BY person_id)
        SELECT p.person_id, to_json(struct_pack(
            person := p, records := coalesce(records.rows, []), aliases := coalesce(aliases.rows, []),
            addresses := coalesce(addresses.rows, []), associations := coalesce(associations.rows, [])))
        FROM p LEFT JOIN records USING (person_id) LEFT JOIN aliases USING (person_id)
        LEFT JOIN addresses USING (person_id) LEFT JOIN associations USING (person_id)
    """
