-- One row per person: the golden record (identifiers left to the person table, where
-- Lake Formation guards them), how many records and systems hold the person, the
-- names and addresses recorded, and when the person was first and last seen.
-- area: the postcode district of the person's current address (row-level security,
-- stacks/analytics.py); role: null, so every role that may see the area sees the row.
SELECT
    p.person_id,
    p.first_name,
    p.last_name,
    CAST(p.date_of_birth AS DATE) AS date_of_birth,
    CAST(p.birth_year AS INTEGER) AS birth_year,
    p.sex,
    p.address,
    p.town,
    p.postcode,
    CAST(p.record_count AS BIGINT) AS record_count,
    CAST(cardinality(split(p.source_systems, ';')) AS BIGINT) AS systems,
    p.source_systems,
    p.records_by_system,
    CAST(coalesce(names.recorded, 0) AS BIGINT) AS names_recorded,
    CAST(coalesce(addresses.recorded, 0) AS BIGINT) AS addresses_recorded,
    CAST(p.first_seen AS TIMESTAMP) AS first_seen,
    CAST(p.last_seen AS TIMESTAMP) AS last_seen,
    CAST(regexp_extract(p.postcode, '^[A-Z]{1,2}[0-9][A-Z0-9]?') AS VARCHAR) AS area,
    CAST(NULL AS VARCHAR) AS role
FROM person AS p
LEFT JOIN (SELECT person_id, count(*) AS recorded FROM person_alias GROUP BY person_id) AS names
    ON names.person_id = p.person_id
LEFT JOIN (SELECT person_id, count(*) AS recorded FROM person_address GROUP BY person_id) AS addresses
    ON addresses.person_id = p.person_id
