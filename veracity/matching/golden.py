"""Golden records by survivorship rules, every name and address a person is known
by, and the record-to-person cross reference.

Each field's value is chosen from the person's records by one rule (FIELD_RULES),
with the other two criteria breaking ties, then the value itself:

- ``frequency``: the value most records give, then the most trusted source, then the latest.
- ``trust``: the value from the most trusted source (``trust:`` in its config), then frequency, then the latest.
- ``recency``: the value in the latest extract, then trust, then frequency.

The home (address, town, postcode) is chosen as one value, by recency, so its parts
always come from one record. ``provenance`` records the record and rule behind every
chosen value.
"""

from __future__ import annotations

import duckdb
import pyarrow as pa

from veracity.schema import PERSON, PERSON_ADDRESS, PERSON_ALIAS, PERSON_XREF

REPRESENTATION = pa.schema([("unique_id", pa.string()), ("represented_by", pa.string())])

FIELD_RULES: dict[str, str] = {
    "first_name": "frequency",
    "last_name": "frequency",
    "date_of_birth": "trust",
    "birth_year": "frequency",
    "sex": "frequency",
    "phone": "recency",
    "email": "recency",
    "pnc_id": "trust",
    "cro_number": "trust",
    "ni_number": "trust",
    "driving_licence": "trust",
}
HOME_RULE = "recency"
RULES = ("frequency", "trust", "recency")

_SORT_KEYS = {  # per rule: the criteria in order, each larger-is-better
    "frequency": ("n", "trust", "latest"),
    "trust": ("trust", "n", "latest"),
    "recency": ("latest", "trust", "n"),
}


def _key(position: int) -> str:
    return "CASE rule " + " ".join(f"WHEN '{rule}' THEN {keys[position]}" for rule, keys in _SORT_KEYS.items()) + " END"


def build(con: duckdb.DuckDBPyConnection, records: pa.Table, clusters: pa.Table, ids: pa.Table, strongest_link: pa.Table,
          trust: dict[str, int], default_trust: int, link_threshold: float,
          representation: pa.Table | None = None,
          link_groups: pa.Table | None = None) -> tuple[pa.Table, pa.Table, pa.Table, pa.Table]:
    """(person, person_xref, person_alias, person_address) from the clean records,
    their clusters, the clusters' person ids, each linked record's strongest link
    (unique_id, match_probability), for records another stood for in scoring
    ``representation`` (unique_id, represented_by), and the records' ``link_groups``
    (unique_id, link_group: the clusters before the constraints; by default the clusters)."""
    con.register("records", records)
    con.register("clusters", clusters)
    con.register("person_ids", ids)
    con.register("strongest", strongest_link)
    con.register("representation", representation if representation is not None else REPRESENTATION.empty_table())
    con.register("link_groups", link_groups if link_groups is not None
                 else clusters.select(["unique_id", "cluster_id"]).rename_columns(["unique_id", "link_group"]))
    con.register("source_trust", pa.table({"source_system": list(trust), "trust": list(trust.values())}))
    con.register("field_rules", pa.table({"field": list(FIELD_RULES), "rule": list(FIELD_RULES.values())}))
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE resolved AS
        SELECT r.*, p.person_id, coalesce(t.trust, {int(default_trust)}) AS trust
        FROM records r JOIN clusters c USING (unique_id) JOIN person_ids p USING (cluster_id)
        LEFT JOIN source_trust t USING (source_system)
        """
    )
    xref = con.sql(
        f"""
        WITH sizes AS (SELECT person_id, count(*) AS n FROM resolved GROUP BY person_id)
        SELECT r.source_system, r.source_record_id, r.person_id,
               CASE WHEN s.n = 1 THEN 1.0 ELSE coalesce(l.match_probability, {link_threshold}) END AS match_probability,
               rep.represented_by, g.link_group
        FROM resolved r JOIN sizes s USING (person_id) LEFT JOIN strongest l USING (unique_id)
        LEFT JOIN representation rep USING (unique_id) LEFT JOIN link_groups g USING (unique_id)
        ORDER BY r.source_system, r.source_record_id
        """
    ).to_arrow_table().cast(PERSON_XREF.arrow_schema)

    fields = ", ".join(f"CAST({f} AS VARCHAR) AS {f}" for f in FIELD_RULES)
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE chosen AS
        WITH long AS (
            UNPIVOT (SELECT person_id, unique_id, source_system, source_record_id, trust, extracted_at, {fields} FROM resolved)
            ON {", ".join(FIELD_RULES)} INTO NAME field VALUE value
        ), candidates AS (
            SELECT person_id, field, value, count(*) AS n, max(trust) AS trust, epoch_us(max(extracted_at)) AS latest,
                   arg_max(source_system, (trust, extracted_at, unique_id)) AS source_system,
                   arg_max(source_record_id, (trust, extracted_at, unique_id)) AS source_record_id
            FROM long GROUP BY ALL
        )
        SELECT c.*, f.rule FROM candidates c JOIN field_rules f USING (field)
        QUALIFY row_number() OVER (
            PARTITION BY person_id, field ORDER BY {_key(0)} DESC, {_key(1)} DESC, {_key(2)} DESC, value
        ) = 1
        """
    )
    con.execute(
        """
        CREATE OR REPLACE TEMP TABLE home AS
        SELECT person_id,
               arg_max(address, (extracted_at, trust, unique_id)) AS address,
               arg_max(town, (extracted_at, trust, unique_id)) AS town,
               arg_max(postcode, (extracted_at, trust, unique_id)) AS postcode,
               arg_max(source_system, (extracted_at, trust, unique_id)) AS source_system,
               arg_max(source_record_id, (extracted_at, trust, unique_id)) AS source_record_id
        FROM resolved WHERE address IS NOT NULL OR postcode IS NOT NULL GROUP BY person_id
        """
    )
    picks = ",\n".join(f"max(value) FILTER (WHERE field = '{f}') AS {f}" for f in FIELD_RULES)
    person = con.sql(
        f"""
        WITH picked AS (
            SELECT person_id, {picks},
                   -- keys in a fixed order: the same data gives the same text
                   '{{' || string_agg(to_json(field) || ':' || json_object('source_system', source_system,
                                     'source_record_id', source_record_id, 'rule', rule), ',' ORDER BY field) || '}}' AS provenance
            FROM chosen GROUP BY person_id
        ), per_system AS (
            SELECT person_id, source_system, count(*) AS n FROM resolved GROUP BY ALL
        ), totals AS (
            SELECT person_id, sum(n) AS record_count,
                   string_agg(source_system, ';' ORDER BY source_system) AS source_systems,
                   '{{' || string_agg(to_json(source_system) || ':' || n, ',' ORDER BY source_system) || '}}' AS records_by_system
            FROM per_system GROUP BY person_id
        ), seen AS (
            SELECT person_id, min(extracted_at) AS first_seen, max(extracted_at) AS last_seen FROM resolved GROUP BY person_id
        )
        SELECT t.person_id, p.first_name, p.last_name,
               CAST(p.date_of_birth AS DATE) AS date_of_birth,
               coalesce(year(CAST(p.date_of_birth AS DATE)), CAST(p.birth_year AS INTEGER)) AS birth_year,
               p.sex, h.address, h.town, h.postcode, p.phone, p.email,
               p.pnc_id, p.cro_number, p.ni_number, p.driving_licence,
               t.record_count, t.source_systems, t.records_by_system,
               CAST(CASE WHEN h.person_id IS NULL THEN coalesce(p.provenance, '{{}}'::JSON)
                    ELSE json_merge_patch(coalesce(p.provenance, '{{}}'::JSON), json_object('home', json_object(
                         'source_system', h.source_system, 'source_record_id', h.source_record_id, 'rule', '{HOME_RULE}')))
                    END AS VARCHAR) AS provenance,
               s.first_seen, s.last_seen
        FROM totals t JOIN seen s USING (person_id)
        LEFT JOIN picked p USING (person_id) LEFT JOIN home h USING (person_id)
        ORDER BY t.person_id
        """
    ).to_arrow_table().cast(PERSON.arrow_schema)

    seen = ("count(*) AS records, string_agg(DISTINCT source_system, ';' ORDER BY source_system) AS source_systems, "
            "min(extracted_at) AS first_seen, max(extracted_at) AS last_seen")
    aliases = con.sql(
        f"""
        SELECT person_id, first_name, last_name, 'name' AS kind, {seen}
        FROM resolved WHERE first_name IS NOT NULL OR last_name IS NOT NULL GROUP BY person_id, first_name, last_name
        UNION ALL
        SELECT person_id, NULL, alias, 'alias', {seen}
        FROM (SELECT *, unnest(string_split(aliases, '|')) AS alias FROM resolved WHERE aliases IS NOT NULL)
        WHERE alias <> '' GROUP BY person_id, alias
        ORDER BY person_id, kind DESC, records DESC, last_name, first_name
        """
    ).to_arrow_table().cast(PERSON_ALIAS.arrow_schema)
    addresses = con.sql(
        f"""
        SELECT person_id, address, town, postcode, {seen}
        FROM resolved WHERE address IS NOT NULL OR postcode IS NOT NULL GROUP BY person_id, address, town, postcode
        ORDER BY person_id, last_seen DESC, address
        """
    ).to_arrow_table().cast(PERSON_ADDRESS.arrow_schema)
    return person, xref, aliases, addresses
