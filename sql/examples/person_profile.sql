-- A person's golden record with where each value came from, every name they are
-- recorded under, and their addresses (most recent first). Replace the filter to
-- look up someone else.
SELECT p.person_id, p.first_name, p.last_name, p.date_of_birth, p.pnc_id,
       json_extract_scalar(p.provenance, '$.date_of_birth.source_system') AS date_of_birth_from,
       a.first_name AS known_first_name, a.last_name AS known_last_name, a.kind, a.records AS name_records,
       h.address, h.postcode, h.last_seen AS at_address_last_seen
FROM person p
JOIN person_alias a ON a.person_id = p.person_id
LEFT JOIN person_address h ON h.person_id = p.person_id
WHERE p.person_id = (SELECT person_id FROM person ORDER BY record_count DESC, person_id LIMIT 1)
ORDER BY a.records DESC, h.last_seen DESC
