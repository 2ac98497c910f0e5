-- One row per association network (veracity/networks.py: communities of persons who
-- offend together): its members and the three most connected of them (most
-- associates, then most crimes shared).
-- area and role: row-level security (stacks/analytics.py); these rows suit every area and role.
WITH ranked AS (
    SELECT
        network_id,
        person_id,
        crimes_together,
        row_number() OVER (
            PARTITION BY network_id ORDER BY associates DESC, crimes_together DESC, person_id
        ) AS connectedness
    FROM network_member
)
SELECT
    network_id,
    CAST(count(*) AS BIGINT) AS members,
    CAST(sum(crimes_together) / 2 AS BIGINT) AS co_offences,
    array_join(array_sort(array_agg(person_id)), '; ') AS member_ids,
    array_join(array_agg(person_id ORDER BY connectedness) FILTER (WHERE connectedness <= 3), '; ') AS most_connected,
    CAST(NULL AS VARCHAR) AS area,
    CAST(NULL AS VARCHAR) AS role
FROM ranked
GROUP BY network_id
