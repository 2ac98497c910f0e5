-- Pairs of persons who appear in the same events (each pair once, the lower id
-- first): how many events they share, their roles in them, the kinds of event and
-- when they were first and last seen together.
-- area and role: row-level security (stacks/analytics.py); these rows suit every area and role.
SELECT
    a.person_id AS person_id,
    b.person_id AS associate_id,
    CAST(count(DISTINCT a.source_system || ':' || a.event_ref) AS BIGINT) AS events_together,
    array_join(array_sort(array_distinct(array_agg(
        coalesce(a.participant_role, 'UNKNOWN') || '/' || coalesce(b.participant_role, 'UNKNOWN')))), '; ') AS roles,
    array_join(array_sort(array_distinct(array_agg(a.event_kind))), '; ') AS event_kinds,
    CAST(min(a.event_date) AS DATE) AS first_seen_together,
    CAST(max(a.event_date) AS DATE) AS last_seen_together,
    CAST(NULL AS VARCHAR) AS area,
    CAST(NULL AS VARCHAR) AS role
FROM event_participant AS a
JOIN event_participant AS b
    ON a.source_system = b.source_system AND a.event_ref = b.event_ref AND a.person_id < b.person_id
GROUP BY a.person_id, b.person_id
