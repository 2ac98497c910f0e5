"""The serving index of person search: from a blocking key to the records holding it.

A record is reachable by the key of every blocking rule of the linkage model whose
columns it holds (``model.PREDICTION_BLOCKING_COLUMNS``), plus name-only keys for
searches that give nothing else; a query's keys are made by the same SQL, so a
search finds the records a pipeline run would have compared it with.

``SnapshotIndex`` serves a lake's published snapshot from memory: sorted 64-bit key
hashes (a binary search per key) and the records' compared fields in one Arrow table.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

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
MAX_POSTINGS = 2_000
MAX_CANDIDATES = 5_000
RECORD_COLUMNS = ("unique_id", "person_id", "source_system", "first_name", "forename_canonical", "middle_names",
                  "last_name", "first_name_metaphone", "last_name_metaphone", "aliases", "date_of_birth", "birth_year",
                  "sex", "address", "postcode", "postcode_sector", "postcode_district", "phone", "email", "pnc_id",
                  "cro_number", "ni_number", "driving_licence", "other_id")
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


def query_keys(records: list[dict]) -> np.ndarray:
    """The search keys of clean records (dicts), as ``keys_sql`` makes them."""
    keys = []
    for record in records:
        for i, columns in enumerate(SEARCH_KEY_COLUMNS):
            values = [record.get(c) for c in columns]
            if all(v is not None for v in values):
                digest = hashlib.md5("|".join([str(i), *map(str, values)]).encode()).digest()
                keys.append(int.from_bytes(digest[8:], "little"))
    return np.array(keys, dtype=np.uint64)


def restricted_sources() -> frozenset[str]:
    return frozenset(name for name, config in load_sources().items() if config.sensitivity == "restricted")


@dataclass
class Candidates:
    records: pa.Table  # RECORD_COLUMNS and tf_<column>, one row per candidate record
    keys_used: int
    keys_skipped: int  # too common to help


class SnapshotIndex:
    """The published snapshot of a lake, indexed for search in memory."""

    def __init__(self, lake: Lake, run_id: str | None = None):
        snapshot = snapshots.read_snapshot(lake, run_id)
        self.run_id = snapshot["run_id"]
        version = snapshot.get("model_version")
        self.trained = model_store.load(lake, version).model_json if version else None
        con = duckdb.connect()
        snapshots.register(con, lake, snapshot, ["clean_person", "person_xref", "person", "person_id_history"])
        con.execute(f"""
            CREATE TABLE search_records AS
            SELECT (row_number() OVER (ORDER BY c.unique_id) - 1)::INTEGER AS row,
                   {', '.join('x.person_id' if c == 'person_id' else f'c.{c}' for c in RECORD_COLUMNS)}
            FROM clean_person c JOIN person_xref x USING (source_system, source_record_id)
        """)
        self.tf_columns = tf_columns(self.trained) if self.trained else []
        self.term_frequencies: dict[str, dict[str, float]] = {}
        for column in self.tf_columns:
            counts = con.execute(f"""
                SELECT {column}, count(*) / sum(count(*)) OVER () FROM search_records
                WHERE {column} IS NOT NULL GROUP BY {column}
            """).fetchall()
            self.term_frequencies[column] = dict(counts)
        # One chunk per column: taking rows from many chunks costs a pass over all of them.
        self.records = con.sql("SELECT * EXCLUDE (row) FROM search_records ORDER BY row").to_arrow_table().combine_chunks()
        keys = con.sql(f"SELECT key, row FROM ({keys_sql('search_records')}) ORDER BY key, row").fetchnumpy()
        self._keys = keys["key"].astype(np.uint64)
        self._rows = keys["row"].astype(np.int32)
        self.persons = con.sql(f"SELECT {', '.join(PERSON_SUMMARY)} FROM person").to_arrow_table().combine_chunks()
        self._person_row = {p: i for i, p in enumerate(self.persons.column("person_id").to_pylist())}
        self._merged_into = dict(con.execute(
            "SELECT other_person_id, person_id FROM person_id_history WHERE event = 'merged'").fetchall())
        self._lake, self._snapshot = lake, snapshot
        con.close()

    @property
    def size(self) -> dict[str, int]:
        return {"records": self.records.num_rows, "keys": len(self._keys), "persons": self.persons.num_rows}

    def candidates(self, query_keys: np.ndarray, hidden_sources: frozenset[str]) -> Candidates:
        """The records holding any of ``query_keys`` (common keys only when nothing
        rarer reaches anyone), less those of ``hidden_sources``."""
        query_keys = np.unique(query_keys.astype(np.uint64))
        starts = np.searchsorted(self._keys, query_keys, side="left")
        ends = np.searchsorted(self._keys, query_keys, side="right")
        postings = sorted(((e - s, s, e) for s, e in zip(starts, ends, strict=True) if e > s))
        rare = [p for p in postings if p[0] <= MAX_POSTINGS]
        used = rare or postings[:1]
        rows = np.unique(np.concatenate([self._rows[s:e] for _, s, e in used])) if used else np.array([], np.int32)
        records = self.records.take(pa.array(rows[:MAX_CANDIDATES] if not rare else rows))
        if hidden_sources:
            records = records.filter(pc.invert(pc.is_in(records.column("source_system"), pa.array(sorted(hidden_sources)))))
        return Candidates(self.with_tf(records), len(used), len(postings) - len(used))

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
        """The published rows about one person: golden record, source records, aliases,
        addresses and associations (the ``person_associations`` view)."""
        from veracity.sql import connect  # the views: read only for a person page

        con = connect(self._lake, self.run_id)
        out = {}
        queries = {
            "person": "SELECT * FROM person WHERE person_id = $p",
            "records": """SELECT c.* EXCLUDE (batch_id, quality_flags, forename_canonical, first_name_metaphone,
                                              last_name_metaphone, postcode_sector, postcode_district),
                                 x.match_probability
                          FROM person_xref x JOIN clean_person c USING (source_system, source_record_id)
                          WHERE x.person_id = $p ORDER BY c.source_system, c.source_record_id""",
            "aliases": "SELECT * EXCLUDE (person_id) FROM person_alias WHERE person_id = $p ORDER BY records DESC, last_name, first_name",
            "addresses": "SELECT * EXCLUDE (person_id) FROM person_address WHERE person_id = $p ORDER BY last_seen DESC",
            "associations": """SELECT associate_id AS person_id, events_together, roles, event_kinds, first_seen_together, last_seen_together
                               FROM (SELECT associate_id, * EXCLUDE (associate_id, person_id) FROM person_associations WHERE person_id = $p
                                     UNION ALL
                                     SELECT person_id, * EXCLUDE (associate_id, person_id) FROM person_associations WHERE associate_id = $p)
                               ORDER BY events_together DESC, person_id LIMIT 50""",
        }
        for name, sql in queries.items():
            out[name] = con.sql(sql, params={"p": person_id}).to_arrow_table().to_pylist()
        con.close()
        return out
