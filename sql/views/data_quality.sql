-- Per source system and batch: rows received, clean and quarantined, how complete the
-- fields that link people are, and how many values were invalid (and so nulled):
-- data_quality_checks, one row per check, summed up.
-- area and role: row-level security (stacks/analytics.py); these rows suit every area and role.
SELECT
    source_system,
    batch_id,
    CAST(coalesce(max(CASE WHEN check_type = 'field' THEN records END), 0)
         + coalesce(sum(CASE WHEN check_type = 'quarantine' THEN "count" END), 0) AS BIGINT) AS records_in,
    CAST(coalesce(max(CASE WHEN check_type = 'field' THEN records END), 0) AS BIGINT) AS records_clean,
    CAST(coalesce(sum(CASE WHEN check_type = 'quarantine' THEN "count" END), 0) AS BIGINT) AS records_quarantined,
    CAST(max(CASE WHEN check_type = 'field' AND name = 'date_of_birth' THEN rate END) AS DOUBLE) AS date_of_birth_rate,
    CAST(max(CASE WHEN check_type = 'field' AND name = 'postcode' THEN rate END) AS DOUBLE) AS postcode_rate,
    CAST(max(CASE WHEN check_type = 'field' AND name = 'pnc_id' THEN rate END) AS DOUBLE) AS pnc_id_rate,
    CAST(coalesce(sum(CASE WHEN check_type = 'field' THEN invalid END), 0) AS BIGINT) AS invalid_values,
    CAST(NULL AS VARCHAR) AS area,
    CAST(NULL AS VARCHAR) AS role
FROM data_quality_checks
GROUP BY source_system, batch_id
