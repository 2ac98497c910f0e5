"""Golden records and the record-to-person cross reference, from clusters."""

from __future__ import annotations

import duckdb
import pyarrow as pa

from veracity.matching.resolve import person_id_for
from veracity.schema import PERSON, PERSON_XREF


def _ids(con: duckdb.DuckDBPyConnection) -> pa.Table:
    keys = con.sql("SELECT cluster_id, min(unique_id) AS cluster_key FROM clusters GROUP BY cluster_id").to_arrow_table()
    return pa.table(
        {
            "cluster_id": keys.column("cluster_id"),
            "person_id": pa.array([person_id_for(k) for k in keys.column("cluster_key").to_pylist()], pa.string()),
        }
    )


def build(con: duckdb.DuckDBPyConnection, records: pa.Table, clusters: pa.Table, pairs: pa.Table, link_threshold: float) -> tuple[pa.Table, pa.Table]:
    """(person, person_xref) from the clean records, their clusters and the scored pairs."""
    con.register("records", records)
    con.register("clusters", clusters)
    con.register("pairs", pairs)
    con.register("person_ids", _ids(con))
    con.execute(
        """
        CREATE OR REPLACE TEMP TABLE resolved AS
        SELECT r.*, p.person_id
        FROM records r JOIN clusters c USING (unique_id) JOIN person_ids p USING (cluster_id)
        """
    )
    xref = con.sql(
        f"""
        WITH links AS (
            SELECT unique_id_l AS unique_id, match_probability FROM pairs WHERE match_probability >= {link_threshold}
            UNION ALL
            SELECT unique_id_r, match_probability FROM pairs WHERE match_probability >= {link_threshold}
        ), strongest AS (
            SELECT unique_id, max(match_probability) AS match_probability FROM links GROUP BY unique_id
        ), sizes AS (SELECT person_id, count(*) AS n FROM resolved GROUP BY person_id)
        SELECT r.source_system, r.source_record_id, r.person_id,
               CASE WHEN s.n = 1 THEN 1.0 ELSE coalesce(l.match_probability, {link_threshold}) END AS match_probability
        FROM resolved r JOIN sizes s USING (person_id) LEFT JOIN strongest l USING (unique_id)
        ORDER BY r.source_system, r.source_record_id
        """
    ).to_arrow_table().cast(PERSON_XREF.arrow_schema)
    person = con.sql(
        """
        SELECT person_id,
               mode(first_name ORDER BY first_name) AS first_name,
               mode(last_name ORDER BY last_name) AS last_name,
               mode(date_of_birth ORDER BY date_of_birth) AS date_of_birth,
               mode(sex ORDER BY sex) AS sex,
               arg_max(postcode, extracted_at) FILTER (WHERE postcode IS NOT NULL) AS postcode,
               mode(pnc_id ORDER BY pnc_id) AS pnc_id,
               mode(ni_number ORDER BY ni_number) AS ni_number,
               count(*) AS record_count,
               string_agg(DISTINCT source_system, ';' ORDER BY source_system) AS source_systems,
               min(extracted_at) AS first_seen,
               max(extracted_at) AS last_seen
        FROM resolved GROUP BY person_id ORDER BY person_id
        """
    ).to_arrow_table().cast(PERSON.arrow_schema)
    return person, xref
