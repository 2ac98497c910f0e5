"""The data quality of one scrubbed batch: completeness and validity per field, and
the reasons rows were quarantined."""

from __future__ import annotations

import duckdb
import pyarrow as pa

from veracity.schema import CLEAN_PERSON, DATA_QUALITY

# Quality flag codes that are not "<field>_invalid", and the field each concerns.
FLAG_FIELDS = {"dob_unparseable": "date_of_birth", "dob_implausible": "date_of_birth", "birth_year_invalid": "birth_year", "sex_unrecognised": "sex"}
KEY_COLUMNS = {"source_system", "batch_id", "source_record_id", "unique_id", "extracted_at", "quality_flags"}


def _flag_field(code: str) -> str:
    return FLAG_FIELDS.get(code, code.removesuffix("_invalid"))


def batch_quality(source: str, batch_id: str, clean: pa.Table | object, quarantine: pa.Table | object, rows_in: int) -> pa.Table:
    """``clean`` and ``quarantine`` are Arrow tables or datasets (DuckDB scans either)."""
    con = duckdb.connect()
    con.register("clean", clean)
    con.register("quarantine", quarantine)
    fields = [c for c in CLEAN_PERSON.column_names if c not in KEY_COLUMNS]
    total = con.execute("SELECT count(*) FROM clean").fetchone()[0]
    counts = con.execute(
        "SELECT " + ", ".join(f'count("{f}"), approx_count_distinct("{f}")' for f in fields) + " FROM clean"
    ).fetchone()
    flags = dict(
        con.execute(
            "SELECT flag, count(*) FROM (SELECT unnest(string_split(quality_flags, ';')) AS flag FROM clean "
            "WHERE quality_flags IS NOT NULL) GROUP BY flag"
        ).fetchall()
    )
    invalid: dict[str, int] = {}
    for code, n in flags.items():
        invalid[_flag_field(code)] = invalid.get(_flag_field(code), 0) + n
    rows = []
    for i, f in enumerate(fields):
        populated, distinct = counts[2 * i], counts[2 * i + 1]
        bad = invalid.get(f, 0)
        rows.append(("field", f, total, populated, bad, distinct))
    for reason, n in con.execute("SELECT reason_codes, count(*) FROM quarantine GROUP BY 1 ORDER BY 1").fetchall():
        rows.append(("quarantine", reason, rows_in, n, None, None))
    return pa.Table.from_pylist(
        [
            {
                "source_system": source, "batch_id": batch_id, "check_type": kind, "name": name,
                "records": records, "count": count, "rate": count / records if records else None,
                "invalid": bad, "invalid_rate": (bad / records if records else None) if bad is not None else None,
                "distinct_values": distinct,
            }
            for kind, name, records, count, bad, distinct in rows
        ],
        schema=DATA_QUALITY.arrow_schema,
    )
