"""The canonical person record and every output table, declared once.

Readers, writers, the SQL layer, the CDK catalog and the docs all derive their
columns from the declarations here.
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa

# Who may read a column; the CDK catalog (stacks/catalog.py) enforces it with Lake Formation tags.
SENSITIVITY_LEVELS = ("general", "identifier", "restricted")


@dataclass(frozen=True)
class Column:
    """One column of a table.

    ``sensitivity`` is one of SENSITIVITY_LEVELS: "general" columns are for every
    analyst; "identifier" columns hold identity numbers (PNC id, CRO, NI, driving
    licence, other shared ids); intelligence-system fields, and anything that may carry
    them such as a raw source row, are "restricted".
    """

    name: str
    type: pa.DataType
    doc: str
    sensitivity: str = "general"  # one of SENSITIVITY_LEVELS

    def __post_init__(self) -> None:
        if self.sensitivity not in SENSITIVITY_LEVELS:
            raise ValueError(
                f"column {self.name}: sensitivity {self.sensitivity!r} is not one of {SENSITIVITY_LEVELS}"
            )


@dataclass(frozen=True)
class Table:
    name: str
    doc: str
    columns: tuple[Column, ...]

    @property
    def arrow_schema(self) -> pa.Schema:
        return pa.schema([pa.field(c.name, c.type) for c in self.columns])

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    def empty(self) -> pa.Table:
        return self.arrow_schema.empty_table()


STR = pa.string()

# Canonical fields a source config may map (see sources/*.yaml). Every one is optional.
CANONICAL_FIELDS: dict[str, str] = {
    "first_name": "Forename as given",
    "middle_names": "Middle names, space separated",
    "last_name": "Surname",
    "full_name": "A single name field, split into first/middle/last names",
    "aliases": "Other names the person is known by",
    "date_of_birth": "Date of birth",
    "birth_year": "Year of birth when only a year or an age is known",
    "sex": "Sex as recorded (M, F or U)",
    "address": "Address lines, joined",
    "town": "Post town",
    "postcode": "UK postcode",
    "phone": "Telephone number",
    "email": "Email address",
    "pnc_id": "Police National Computer id (YY/NNNNNNNC)",
    "cro_number": "Criminal Records Office number (NNNNNN/YYC)",
    "ni_number": "National Insurance number",
    "driving_licence": "DVLA driving licence number",
    "other_id": "An identifier shared with other sources that is none of the named ones",
}

_KEYS = (
    Column("source_system", STR, "Source system the record came from"),
    Column("batch_id", STR, "Landing batch the record arrived in"),
    Column("source_record_id", STR, "The source system's own key for the record"),
)

CLEAN_PERSON = Table(
    "clean_person",
    "One standardised row per accepted source record",
    _KEYS
    + (
        Column("unique_id", STR, "source_system:source_record_id, unique across sources"),
        Column("extracted_at", pa.timestamp("us", tz="UTC"), "When the source extracted the batch"),
        Column("first_name", STR, "Forename, upper case ASCII"),
        Column("forename_canonical", STR, "Full forms the forename may stand for, '|'-separated (BOB -> BERT|BOB|BOBBY|ROBERT)"),
        Column("middle_names", STR, "Middle names, upper case ASCII"),
        Column("last_name", STR, "Surname, upper case ASCII"),
        Column("first_name_metaphone", STR, "Double Metaphone key of the forename, for blocking"),
        Column("last_name_metaphone", STR, "Double Metaphone key of the surname, for blocking"),
        Column("aliases", STR, "Other names, '|' separated, upper case ASCII"),
        Column("date_of_birth", pa.date32(), "Date of birth; null when unknown or invalid"),
        Column("birth_year", pa.int32(), "Year of birth, from the date of birth or an age"),
        Column("sex", STR, "M, F or null"),
        Column("address", STR, "Address lines, upper case, single spaced"),
        Column("town", STR, "Post town, upper case"),
        Column("postcode", STR, "UK postcode normalised as 'OUT IN'; null when invalid"),
        Column("postcode_sector", STR, "Postcode sector, e.g. 'B12 9'"),
        Column("postcode_district", STR, "Postcode district (outward code), e.g. 'B12'"),
        Column("phone", STR, "Telephone number in E.164"),
        Column("email", STR, "Email, lower case"),
        Column("pnc_id", STR, "PNC id with a valid check letter", "identifier"),
        Column("cro_number", STR, "CRO number", "identifier"),
        Column("ni_number", STR, "National Insurance number with a valid prefix", "identifier"),
        Column("driving_licence", STR, "Driving licence number", "identifier"),
        Column("other_id", STR, "Other shared identifier", "identifier"),
        Column("quality_flags", STR, "';' separated field problems found while scrubbing"),
    ),
)

QUARANTINE = Table(
    "quarantine",
    "Source rows that were rejected, with the reason and the raw row as received",
    _KEYS
    + (
        Column("line_number", pa.int64(), "1-based line (or record) number in the extract"),
        Column("reason_codes", STR, "';' separated reason codes"),
        Column("raw_record", STR, "The row as received", "restricted"),
    ),
)

PERSON = Table(
    "person",
    "One golden record per resolved person; each value chosen by a survivorship rule",
    (
        Column("person_id", STR, "Stable person id"),
        Column("first_name", STR, "Forename (most frequent, then most trusted source)"),
        Column("last_name", STR, "Surname (most frequent, then most trusted source)"),
        Column("date_of_birth", pa.date32(), "Date of birth (most trusted source, then most frequent)"),
        Column("birth_year", pa.int32(), "Year of birth (from the date of birth, else most frequent)"),
        Column("sex", STR, "Sex (most frequent, then most trusted source)"),
        Column("address", STR, "Address of the most recent record holding one"),
        Column("town", STR, "Town of that address"),
        Column("postcode", STR, "Postcode of that address"),
        Column("phone", STR, "Phone of the most recent record holding one"),
        Column("email", STR, "Email of the most recent record holding one"),
        Column("pnc_id", STR, "PNC id (most trusted source, then most frequent)", "identifier"),
        Column("cro_number", STR, "CRO number (most trusted source, then most frequent)", "identifier"),
        Column("ni_number", STR, "National Insurance number (most trusted source, then most frequent)", "identifier"),
        Column("driving_licence", STR, "Driving licence number (most trusted source, then most frequent)", "identifier"),
        Column("record_count", pa.int64(), "Source records resolved to this person"),
        Column("source_systems", STR, "';' separated systems holding this person"),
        Column("records_by_system", STR, "JSON: source system -> records"),
        Column("provenance", STR, "JSON: field -> {source_system, source_record_id, rule} of the chosen value"),
        Column("first_seen", pa.timestamp("us", tz="UTC"), "Earliest extract holding the person"),
        Column("last_seen", pa.timestamp("us", tz="UTC"), "Latest extract holding the person"),
    ),
)

_SEEN = (
    Column("records", pa.int64(), "Source records holding it"),
    Column("source_systems", STR, "';' separated systems holding it"),
    Column("first_seen", pa.timestamp("us", tz="UTC"), "Earliest extract holding it"),
    Column("last_seen", pa.timestamp("us", tz="UTC"), "Latest extract holding it"),
)

PERSON_ALIAS = Table(
    "person_alias",
    "Every name a person is recorded under, including recorded aliases",
    (
        Column("person_id", STR, "Person"),
        Column("first_name", STR, "Forename as recorded (null for a one-part alias)"),
        Column("last_name", STR, "Surname as recorded, or the whole alias"),
        Column("kind", STR, "'name' (a record's name) or 'alias' (a recorded alias)"),
    )
    + _SEEN,
)

PERSON_ADDRESS = Table(
    "person_address",
    "Every address a person is recorded at",
    (
        Column("person_id", STR, "Person"),
        Column("address", STR, "Address lines"),
        Column("town", STR, "Town"),
        Column("postcode", STR, "Postcode"),
    )
    + _SEEN,
)

PERSON_ID_HISTORY = Table(
    "person_id_history",
    "Every person id issued, merged, split or retired, run by run",
    (
        Column("run_id", STR, "Run that made the change"),
        Column("event", STR, "created, merged (other_person_id joined person_id), split (other_person_id split off) or retired"),
        Column("person_id", STR, "The id the event is about (the survivor of a merge)"),
        Column("other_person_id", STR, "The id merged in or split off"),
        Column("records", pa.int64(), "Records moved (merged, split) or held (created)"),
    ),
)

REVIEW_QUEUE = Table(
    "review_queue",
    "Record pairs in different persons for clerical review: uncertain scores, and strong scores a rule or a constraint kept apart",
    (
        Column("unique_id_l", STR, "Left record (SOURCE:ID)"),
        Column("unique_id_r", STR, "Right record (SOURCE:ID)"),
        Column("match_probability", pa.float64(), "Model probability"),
        Column("match_weight", pa.float64(), "Model match weight"),
        Column("reason", STR, "'uncertain' (below the link threshold), 'refused by rule' (a cannot-link rule) or "
                              "'split by a constraint' (a person never holds two PNC ids, nor two records a reviewer ruled apart)"),
        Column("person_id_l", STR, "Left record's person"),
        Column("person_id_r", STR, "Right record's person"),
        Column("evidence", STR, "JSON: comparison -> match weight, as in match_pairs"),
        Column("decision", STR, "Blank: a reviewer fills in must_link or cannot_link"),
        Column("reviewer", STR, "Blank: the reviewer's name or id"),
        Column("note", STR, "Blank: the reviewer's reason"),
    ),
)

CLERICAL_DECISIONS = Table(
    "clerical_decisions",
    "Reviewers' decisions on record pairs; every run honours the latest per pair",
    (
        Column("unique_id_l", STR, "Left record (the smaller SOURCE:ID)"),
        Column("unique_id_r", STR, "Right record"),
        Column("decision", STR, "must_link or cannot_link"),
        Column("reviewer", STR, "Who decided"),
        Column("note", STR, "Why"),
        Column("decided_at", pa.timestamp("us", tz="UTC"), "When the decision was imported"),
        Column("import_file", STR, "File the decision came from"),
    ),
)

CLUSTER_SIZES = Table(
    "cluster_sizes",
    "How many persons hold how many records, per run",
    (
        Column("run_id", STR, "Run"),
        Column("records_per_person", pa.int64(), "Records in a person"),
        Column("persons", pa.int64(), "Persons with that many records"),
    ),
)

PERSON_XREF = Table(
    "person_xref",
    "Every source record and the person it resolved to",
    (
        Column("source_system", STR, "Source system"),
        Column("source_record_id", STR, "Source record id"),
        Column("person_id", STR, "Person the record resolved to"),
        Column("match_probability", pa.float64(), "Strongest link into its person; 1 for singletons"),
        Column("represented_by", STR,
               "unique_id of an identical record (equal in every compared field) that stood for this one in scoring; "
               "their pair in match_pairs carries the score. Null when the record was scored itself"),
        Column("link_group", STR,
               "The records joined to this one by a chain of links, before the cluster constraints split them "
               "(named by one of them): persons sharing a group were linked but kept apart by a rule"),
    ),
)

MATCH_PAIRS = Table(
    "match_pairs",
    "Scored record pairs above the review floor, with the evidence for each",
    (
        Column("unique_id_l", STR, "Left record"),
        Column("unique_id_r", STR, "Right record"),
        Column("match_weight", pa.float64(), "Total match weight"),
        Column("match_probability", pa.float64(), "Match probability"),
        Column("evidence", STR, "JSON: comparison -> match weight (term-frequency adjusted); comparisons with a value missing are left out"),
        Column("refused_by_rule", pa.bool_(), "A cannot-link rule refuses the pair: it is never linked, however high it scores"),
        Column("key_l", pa.int64(), "Integer key of the left record (a hash of its id), for a refresh's lookups (veracity.matching.pair_keys)"),
        Column("key_r", pa.int64(), "Integer key of the right record"),
    ),
)

RUN_STATS = Table(
    "run_stats",
    "What each run did",
    (
        Column("run_id", STR, "Run id"),
        Column("started_at", pa.timestamp("us", tz="UTC"), "Start"),
        Column("finished_at", pa.timestamp("us", tz="UTC"), "End"),
        Column("source_system", STR, "Source system, or '*' for the run's totals"),
        Column("batches", pa.int64(), "Batches scrubbed in this run"),
        Column("records_in", pa.int64(), "Rows received"),
        Column("records_clean", pa.int64(), "Rows accepted"),
        Column("records_quarantined", pa.int64(), "Rows rejected"),
        Column("persons", pa.int64(), "Persons resolved (totals row only)"),
        Column("pairs_scored", pa.int64(), "Pairs above the review floor (totals row only)"),
        Column("comparisons", pa.int64(), "Record pairs the blocking rules brought together (totals row only)"),
        Column("links", pa.int64(), "Pairs linked (totals row only)"),
        Column("review_queue", pa.int64(), "Pairs queued for clerical review (totals row only)"),
        Column("model_version", STR, "Trained model used (totals row only)"),
        Column("mode", STR, "'full' (every record scored) or 'incremental' (only the changes; totals row only)"),
        Column("records_scored", pa.int64(), "Records scored this run (totals row only)"),
        Column("persons_affected", pa.int64(), "Incremental runs: earlier persons re-clustered (totals row only)"),
        Column("pairwise_agreement", pa.float64(),
               "Full runs over a snapshot: record pairs both put in one person over pairs either does (totals row only)"),
    ),
)

DELETIONS = Table(
    "deletions",
    "Source records withdrawn by their system (retention review, erasure request)",
    (
        Column("source_system", STR, "Source system"),
        Column("source_record_id", STR, "Withdrawn record"),
        Column("batch_id", STR, "Batch that carried the deletion"),
        Column("extracted_at", pa.timestamp("us", tz="UTC"), "When the source extracted that batch"),
    ),
)

DATA_QUALITY = Table(
    "data_quality_checks",
    "Per batch and source: how complete and valid each field is, and why rows were rejected",
    (
        Column("source_system", STR, "Source system"),
        Column("batch_id", STR, "Batch"),
        Column("check_type", STR, "'field' (a clean_person column) or 'quarantine' (a reason code)"),
        Column("name", STR, "Field name or quarantine reason code"),
        Column("records", pa.int64(), "Clean rows (fields) or rows received (quarantine) in the batch"),
        Column("count", pa.int64(), "Rows with the field populated, or rows quarantined for the reason"),
        Column("rate", pa.float64(), "count / records"),
        Column("invalid", pa.int64(), "Rows whose value was invalid and so nulled (fields only)"),
        Column("invalid_rate", pa.float64(), "invalid / records"),
        Column("distinct_values", pa.int64(), "Approximate distinct values (fields only)"),
    ),
)

# Athena serves a layered snapshot table through a view: its layers' rows less those a
# later layer removed, listed per file in this table (veracity.snapshots writes it).
ATHENA_REMOVED = Table(
    "athena_removed",
    "Row keys of a layered snapshot table that a later layer replaced or deleted, per file",
    (
        Column("key", STR, "A value of the table's removal key column(s): the rows holding it are gone"),
        Column("path", STR, "The s3:// URI of the layer file the key's rows are gone from"),
    ),
)

EVENT_RECORD = Table(
    "event_record",
    "Each source record that is a person's part in an event (a crime, an incident, a search), as scrubbed",
    _KEYS
    + (
        Column("unique_id", STR, "source_system:source_record_id"),
        Column("extracted_at", pa.timestamp("us", tz="UTC"), "When the source extracted the batch"),
        Column("event_kind", STR, "Kind of event, from the source's config (crime, incident, search, ...)"),
        Column("event_ref", STR, "The source's reference for the event; the record id where it has none"),
        Column("event_date", pa.date32(), "When the event happened; null when unknown or invalid"),
        Column("category", STR, "Offence group or incident type, upper case"),
        Column("area", STR, "Neighbourhood, beat or area of the event, upper case"),
        Column("participant_role", STR, "The person's part in the event (suspect, victim, ...), upper case"),
    ),
)

NETWORK_MEMBER = Table(
    "network_member",
    "Each person in an association network: a community of persons who offend together (veracity.networks)",
    (
        Column("network_id", STR, "The network, named after its lowest person id"),
        Column("person_id", STR, "A member"),
        Column("network_size", pa.int64(), "Members of the network"),
        Column("associates", pa.int64(), "Members this one has offended with"),
        Column("crimes_together", pa.int64(), "Crimes shared with other members, summed over them"),
        Column("graph_part", STR, "Fingerprint of the connected part of the co-offending graph the network was "
                                  "found in: a part no run has changed keeps its networks"),
    ),
)

SEARCH_AUDIT = Table(
    "search_audit",
    "Every person search API request, answered or refused: who, when, why, what was asked and which persons were returned",
    (
        Column("request_id", STR, "The request's id"),
        Column("time", STR, "When, ISO 8601 UTC"),
        Column("user", STR, "Who asked (the token's user name); null when no valid token came"),
        Column("groups", pa.list_(pa.string()), "The user's groups: officer, analyst, admin"),
        Column("purpose", STR, "The investigation or incident reference given"),
        Column("route", STR, "The API route"),
        Column("query", STR, "JSON: the parameters as received (names, dates of birth, ...)", "restricted"),
        Column("person_ids", pa.list_(pa.string()), "Persons returned, in order"),
        Column("outcome", STR, "answered, redirected, bad_request, unauthorised, not_found or error"),
        Column("status", pa.int32(), "HTTP status"),
        Column("detail", STR, "Why a request was refused"),
    ),
)

CURATED_TABLES: dict[str, Table] = {
    t.name: t
    for t in (
        PERSON, PERSON_XREF, PERSON_ALIAS, PERSON_ADDRESS, PERSON_ID_HISTORY, MATCH_PAIRS, REVIEW_QUEUE,
        CLERICAL_DECISIONS, CLEAN_PERSON, QUARANTINE, RUN_STATS, CLUSTER_SIZES, DATA_QUALITY, EVENT_RECORD,
        NETWORK_MEMBER,
    )
}
