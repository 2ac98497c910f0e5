-- Records in, persons out, per source system and over all systems: how far
-- resolution reduces each system's duplicates.
-- area and role: row-level security (stacks/analytics.py); these rows suit every area and role.
SELECT
    coalesce(source_system, 'all systems') AS source_system,
    CAST(count(*) AS BIGINT) AS records_in,
    CAST(count(DISTINCT person_id) AS BIGINT) AS persons_out,
    CAST(count(*) AS DOUBLE) / count(DISTINCT person_id) AS records_per_person,
    CAST(NULL AS VARCHAR) AS area,
    CAST(NULL AS VARCHAR) AS role
FROM person_xref
GROUP BY GROUPING SETS ((source_system), ())
