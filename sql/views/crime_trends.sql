-- Crimes recorded per month, area and offence category, with the same month a year
-- before and the change on it.
-- area: the crimes' area (row-level security, stacks/analytics.py); role: null.
WITH monthly AS (
    SELECT
        CAST(date_trunc('month', event_date) AS DATE) AS month,
        area,
        category,
        count(*) AS offences
    FROM event
    WHERE event_kind = 'crime' AND event_date IS NOT NULL
    GROUP BY 1, 2, 3
)
SELECT
    m.month,
    m.area,
    m.category,
    CAST(m.offences AS BIGINT) AS offences,
    CAST(prior.offences AS BIGINT) AS offences_a_year_before,
    CAST(m.offences - coalesce(prior.offences, 0) AS BIGINT) AS change_on_a_year_before,
    CAST(NULL AS VARCHAR) AS role
FROM monthly AS m
LEFT JOIN monthly AS prior
    ON prior.area IS NOT DISTINCT FROM m.area
    AND prior.category IS NOT DISTINCT FROM m.category
    AND prior.month = date_add('year', -1, m.month)
