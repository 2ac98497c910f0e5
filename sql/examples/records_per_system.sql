-- Records and distinct persons per source system, with the share of each
-- system's records that resolved to a person seen in another system too.
SELECT
    x.source_system,
    count(*) AS records,
    count(DISTINCT x.person_id) AS persons,
    round(avg(CASE WHEN strpos(p.source_systems, ';') > 0 THEN 1.0 ELSE 0.0 END), 4) AS share_seen_elsewhere
FROM person_xref x
JOIN person p ON p.person_id = x.person_id
GROUP BY x.source_system
ORDER BY records DESC
