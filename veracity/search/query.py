"""A person search as the API receives it: checked, then standardised into a clean
record by the scrub's own rules, so a query compares with records as records do.

Every value is length- and character-checked before anything reads it; a query is
data throughout (an Arrow row, never SQL text), so no value can act as code.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime

import pyarrow as pa

from veracity.errors import VeracityError
from veracity.scrub.scrub import standardise
from veracity.sources import parse_config

# name -> (longest value, allowed characters, what to write)
NAME = (64, re.compile(r"[^\W\d_]+(?:[ '’.\-][^\W\d_]+)*\.?"), "letters, spaces, hyphens and apostrophes")
LIMITS: dict[str, tuple[int, re.Pattern, str]] = {
    "first_name": NAME,
    "last_name": NAME,
    "date_of_birth": (10, re.compile(r"\d{4}(-\d{2}-\d{2})?"), "YYYY-MM-DD, or YYYY when only the year is known"),
    "postcode": (10, re.compile(r"[A-Za-z0-9 ]+"), "a UK postcode"),
    "pnc_id": (14, re.compile(r"[0-9]{2,4}/[0-9]{1,7}[A-Za-z]"), "a PNC id, YY/NNNNNNNC"),
    "purpose": (64, re.compile(r"[A-Za-z0-9][A-Za-z0-9 /_.:\-]*"), "an investigation or incident reference (letters, digits, / - _ . :)"),
}
SEARCH_FIELDS = ("first_name", "last_name", "date_of_birth", "postcode", "pnc_id")
PERSON_ID = re.compile(r"P[0-9A-F]{15}")

# The query as a source system: the scrub's standardisation turns it into a clean record.
QUERY_SOURCE = parse_config({
    "source": "search",
    "format": "csv",
    "record_id": "query",
    "fields": {
        "first_name": "first_name",
        "last_name": "last_name",
        "date_of_birth": {"column": "date_of_birth", "format": "%Y-%m-%d"},
        "birth_year": {"column": "birth_year", "from": "year"},
        "postcode": "postcode",
        "pnc_id": "pnc_id",
    },
}, "(search query)")


class BadRequest(VeracityError):
    """A request the API refuses with 400: what was wrong and what to send."""


@dataclass(frozen=True)
class SearchQuery:
    purpose: str
    values: dict[str, str] = field(default_factory=dict)  # the search fields given, as given

    def as_records(self, now: datetime | None = None) -> pa.Table:
        """The query as clean_person rows: as given (``search:0``), then, when both
        names are given, with forename and surname exchanged (``search:1``), as
        records often hold them."""
        given = dict(self.values)
        dob = given.pop("date_of_birth", None)
        rows = [given]
        if given.get("first_name") and given.get("last_name"):
            rows.append({**given, "first_name": given["last_name"], "last_name": given["first_name"]})
        raw = {name: [row.get(name) for row in rows] for name in ("first_name", "last_name", "postcode", "pnc_id")}
        raw["date_of_birth"] = [dob if dob and len(dob) == 10 else None] * len(rows)
        raw["birth_year"] = [dob if dob and len(dob) == 4 else None] * len(rows)
        table = pa.table({k: pa.array(v, pa.string()) for k, v in raw.items()})
        ids = pa.array([str(i) for i in range(len(rows))])
        records = standardise(table, ids, QUERY_SOURCE, "search", now or datetime.now(UTC))
        problems = records.column("quality_flags")[0].as_py()
        if problems:
            raise BadRequest(f"not a valid value: {problems.replace(';', ', ')}")
        return records


def check_value(name: str, value: str | None) -> str | None:
    """``value`` stripped, or None when blank; BadRequest when too long or of the wrong characters."""
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    longest, pattern, expected = LIMITS[name]
    if len(value) > longest:
        raise BadRequest(f"{name}: longer than {longest} characters")
    if not pattern.fullmatch(value):
        raise BadRequest(f"{name}: expected {expected}")
    return value


def check_purpose(params: dict[str, str | None]) -> str:
    purpose = check_value("purpose", params.get("purpose"))
    if purpose is None:
        raise BadRequest("purpose: required — give the investigation or incident reference the look-up is for")
    return purpose


def parse_search(params: dict[str, str | None]) -> SearchQuery:
    """A search from the query string's parameters; BadRequest for anything unexpected."""
    unknown = sorted(set(params) - set(SEARCH_FIELDS) - {"purpose"})
    if unknown:
        raise BadRequest(f"{unknown[0]}: not a search parameter (use {', '.join(SEARCH_FIELDS)} and purpose)")
    purpose = check_purpose(params)
    values = {name: v for name in SEARCH_FIELDS if (v := check_value(name, params.get(name))) is not None}
    if not ({"first_name", "last_name", "pnc_id"} & set(values)):
        raise BadRequest("give a name (first_name or last_name) or a pnc_id")
    return SearchQuery(purpose, values)


def check_person_id(person_id: str) -> str:
    if not PERSON_ID.fullmatch(person_id or ""):
        raise BadRequest("person_id: expected P followed by 15 hexadecimal digits")
    return person_id
