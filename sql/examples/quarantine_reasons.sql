-- What was rejected, where, and why.
SELECT source_system, reason_codes, count(*) AS rows_rejected
FROM quarantine
GROUP BY source_system, reason_codes
ORDER BY rows_rejected DESC
