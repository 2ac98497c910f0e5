-- One row per event: its kind, date, category and area, and how many records and
-- persons took part. Participants' records may disagree on the details: the earliest
-- date is kept, and a category and area that some record gives.
-- area: the event's area (row-level security, stacks/analytics.py); role: null.
SELECT
    source_system,
    event_ref,
    event_kind,
    CAST(min(event_date) AS DATE) AS event_date,
    CAST(max_by(category, category IS NOT NULL) AS VARCHAR) AS category,
    CAST(count(*) AS BIGINT) AS participant_records,
    CAST(count(DISTINCT person_id) AS BIGINT) AS persons,
    CAST(max_by(area, area IS NOT NULL) AS VARCHAR) AS area,
    CAST(NULL AS VARCHAR) AS role
FROM event_participant
GROUP BY source_system, event_ref, event_kind
