-- The keys a person can be found by: every distinct combination of names (as recorded,
-- their full forms and Double Metaphone keys), date or year of birth, postcode and
-- identifiers among the person's current source records. Search by any of them, then
-- read the person in person_360.
-- area: the record's postcode district; role: investigator, since the rows hold
-- identifiers (row-level security, stacks/analytics.py).
SELECT DISTINCT
    x.person_id,
    c.first_name,
    c.last_name,
    c.forename_canonical,
    c.first_name_metaphone,
    c.last_name_metaphone,
    CAST(c.date_of_birth AS DATE) AS date_of_birth,
    CAST(c.birth_year AS INTEGER) AS birth_year,
    c.postcode,
    c.postcode_district,
    c.pnc_id,
    c.cro_number,
    c.ni_number,
    c.driving_licence,
    c.postcode_district AS area,
    CAST('investigator' AS VARCHAR) AS role
FROM clean_person AS c
JOIN person_xref AS x
    ON c.unique_id = x.source_system || ':' || x.source_record_id
