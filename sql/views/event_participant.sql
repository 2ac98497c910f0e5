-- One row per person's part in an event (a crime, an incident, a search): the event
-- as its source records it and the person the record resolved to. Only current
-- records: a record delivered again counts in its latest version, a deleted one not
-- at all (person_xref holds current records only).
-- area: the event's area (row-level security, stacks/analytics.py); role: null.
-- Versions are ranked only for the few records delivered more than once: ranking
-- every record would sort them all.
SELECT
    e.source_system,
    e.event_ref,
    e.event_kind,
    CAST(e.event_date AS DATE) AS event_date,
    e.category,
    e.participant_role,
    e.source_record_id,
    x.person_id,
    e.area,
    CAST(NULL AS VARCHAR) AS role
FROM event_record AS e
JOIN person_xref AS x
    ON x.source_system = e.source_system AND x.source_record_id = e.source_record_id
LEFT JOIN (
    SELECT
        unique_id,
        extracted_at,
        batch_id,
        row_number() OVER (PARTITION BY unique_id ORDER BY extracted_at DESC, batch_id DESC) AS version
    FROM event_record
    WHERE unique_id IN (SELECT unique_id FROM event_record GROUP BY unique_id HAVING count(*) > 1)
) AS v
    ON v.unique_id = e.unique_id AND v.extracted_at = e.extracted_at AND v.batch_id = e.batch_id
WHERE v.version IS NULL OR v.version = 1
