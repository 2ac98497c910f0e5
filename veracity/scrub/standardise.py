"""Field standardisers: functions from an Arrow array of raw strings to a clean array.

Validators return (values, problem) where ``problem`` marks rows whose non-empty
input was invalid and so was nulled: the scrub turns those into quality flags.
Records are never rejected for a field problem. Rules written in Python run once
per distinct value (``map_distinct``), which keeps them cheap at scale.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date
from functools import cache

import pyarrow as pa
import pyarrow.compute as pc
from anyascii import anyascii
from doublemetaphone import doublemetaphone
from nicknames import NickNamer

from veracity import uk

TITLES = r"^(MR|MRS|MS|MISS|MX|DR|REV|SIR|DAME|LADY|LORD)\s+"
SUFFIXES = r"\s+(JR|JNR|JUNIOR|SR|SNR|SENIOR|II|III|IV)$"
PLACEHOLDER_DOBS = (date(1900, 1, 1), date(1901, 1, 1), date(1800, 1, 1))
MAX_AGE_YEARS = 120
STRING = pa.string()
NULL_STR = pa.scalar(None, STRING)


def map_distinct(arr: pa.Array, rule: Callable[[str], object], out_type: pa.DataType = STRING) -> pa.Array:
    """Apply a Python rule to each distinct non-null value once, and spread the results."""
    arr = arr.combine_chunks() if isinstance(arr, pa.ChunkedArray) else arr
    distinct = pc.unique(pc.drop_null(arr))
    mapped = pa.array([rule(v) for v in distinct.to_pylist()], out_type)
    return pc.take(mapped, pc.index_in(arr, value_set=distinct))


def _blank_to_null(arr: pa.Array) -> pa.Array:
    return pc.if_else(pc.equal(arr, ""), NULL_STR, arr)


def ascii_upper(arr: pa.Array) -> pa.Array:
    """Unicode-normalise and transliterate to ASCII (Wiśniewski, Michał, Søren -> WISNIEWSKI,
    MICHAL, SOREN), upper-case, single-space."""
    arr = pc.utf8_normalize(arr, "NFKD")
    arr = pc.replace_substring_regex(arr, r"\p{Mn}+", "")  # combining accents
    if pc.any(pc.match_substring_regex(arr, r"[^\x00-\x7f]")).as_py():
        arr = map_distinct(arr, anyascii)  # letters with no decomposition: ł, ø, đ, ß
    arr = pc.utf8_upper(arr)
    arr = pc.replace_substring_regex(arr, r"\s+", " ")
    return _blank_to_null(pc.utf8_trim_whitespace(arr))


def name(arr: pa.Array) -> pa.Array:
    """Names: letters and single spaces only; titles and suffixes removed."""
    arr = ascii_upper(arr)
    arr = pc.replace_substring_regex(arr, r"'", "")
    arr = pc.replace_substring_regex(arr, r"[^A-Z ]+", " ")
    arr = pc.replace_substring_regex(arr, r"\s+", " ")
    arr = pc.utf8_trim_whitespace(arr)
    arr = pc.replace_substring_regex(arr, TITLES, "")
    arr = pc.replace_substring_regex(arr, SUFFIXES, "")
    return _blank_to_null(arr)


def first_token(arr: pa.Array) -> tuple[pa.Array, pa.Array]:
    """'JOHN PAUL' -> ('JOHN', 'PAUL'); middle is null when there is one token."""
    first = _blank_to_null(pc.replace_substring_regex(arr, r" .*$", ""))
    rest = _blank_to_null(pc.replace_substring_regex(arr, r"^[^ ]+ ?", ""))
    return first, rest


def split_full_name(raw: pa.Array, order: str) -> tuple[pa.Array, pa.Array, pa.Array]:
    """Split a single name field into (first, middle, last) standardised names."""
    if order == "surname_first":
        # 'SMITH, John Paul' (or 'SMITH John Paul' with no comma)
        has_comma = pc.match_substring(raw, ",")
        last = pc.if_else(has_comma, pc.replace_substring_regex(raw, r",.*$", ""), pc.replace_substring_regex(raw, r"^\s*(\S+).*$", r"\1"))
        given = pc.if_else(has_comma, pc.replace_substring_regex(raw, r"^[^,]*,", ""), pc.replace_substring_regex(raw, r"^\s*\S+\s*", ""))
    else:
        # 'John Paul Smith': the last word is the surname
        trimmed = pc.utf8_trim_whitespace(raw)
        last = pc.replace_substring_regex(trimmed, r"^.*\s", "")
        given = pc.if_else(pc.match_substring_regex(trimmed, r"\s"), pc.replace_substring_regex(trimmed, r"\s+\S+$", ""), NULL_STR)
    first, middle = first_token(name(given))
    return first, middle, name(last)


@cache
def _nicknamer() -> NickNamer:
    return NickNamer()


def _full_forms(first: str) -> str:
    """The full forms a forename may stand for, itself included: BOB -> BERT|BOB|BOBBY|ROBERT.
    Nicknames are ambiguous (BILL is William or Robert), so all are kept; two records
    share a forename when their sets intersect."""
    forms = {first.lower()} | _nicknamer().canonicals_of(first.lower())
    return "|".join(sorted(f.upper() for f in forms))


def canonical_forename(arr: pa.Array) -> pa.Array:
    return map_distinct(arr, _full_forms)


def metaphone(arr: pa.Array) -> pa.Array:
    """Primary Double Metaphone key of the whole name (SMITH, SMYTH -> SM0)."""
    return _blank_to_null(map_distinct(arr, lambda v: doublemetaphone(v)[0]))


def _date_shape(arr: pa.Array) -> pa.Array:
    """Upper case, leading zeros of numbers dropped: '01-Feb-1990' ~ '1-FEB-1990'."""
    return pc.replace_substring_regex(pc.utf8_upper(arr), r"(^|[^0-9])0+([0-9])", r"\1\2")


def dates(arr: pa.Array, formats: tuple[str, ...], extracted: date) -> tuple[pa.Array, pa.Array, pa.Array]:
    """Parse with each format in turn. Returns (dates, unparseable, implausible).

    Placeholders (01/01/1900), future dates and ages over 120 are nulled and flagged
    as implausible rather than trusted.
    """
    arr = pc.utf8_trim_whitespace(arr)
    parsed = pa.nulls(len(arr), pa.timestamp("s"))
    for fmt in formats:
        attempt = pc.strptime(arr, format=fmt, unit="s", error_is_null=True)
        # strptime rolls impossible dates over (31/02 -> 03/03): keep a parse only if
        # writing it back in the same format gives the input again.
        round_trip = pc.equal(_date_shape(pc.strftime(attempt, format=fmt)), _date_shape(arr))
        attempt = pc.if_else(pc.fill_null(round_trip, False), attempt, pa.scalar(None, pa.timestamp("s")))
        parsed = pc.coalesce(parsed, attempt)
    as_date = pc.cast(parsed, pa.date32())
    unparseable = pc.and_(pc.is_valid(arr), pc.is_null(as_date))
    earliest = date(extracted.year - MAX_AGE_YEARS, extracted.month, min(extracted.day, 28))
    placeholder = pc.is_in(as_date, value_set=pa.array(PLACEHOLDER_DOBS, pa.date32()))
    implausible = pc.or_(
        placeholder,
        pc.or_(pc.greater(as_date, pa.scalar(extracted, pa.date32())), pc.less(as_date, pa.scalar(earliest, pa.date32()))),
    )
    implausible = pc.fill_null(implausible, False)
    clean = pc.if_else(implausible, pa.scalar(None, pa.date32()), as_date)
    return clean, pc.fill_null(unparseable, False), implausible


def birth_year_from(arr: pa.Array, kind: str, extracted: date) -> tuple[pa.Array, pa.Array]:
    """A birth year from a year column or an age at extraction (approximate by a year)."""
    numbers = pc.cast(
        pc.if_else(pc.match_substring_regex(arr, r"^\s*\d{1,4}\s*$"), pc.utf8_trim_whitespace(arr), NULL_STR),
        pa.int32(),
    )
    years = pc.subtract(pa.scalar(extracted.year, pa.int32()), numbers) if kind == "age" else numbers
    plausible = pc.and_(
        pc.greater_equal(years, extracted.year - MAX_AGE_YEARS), pc.less_equal(years, extracted.year)
    )
    clean = pc.if_else(pc.fill_null(plausible, False), years, pa.scalar(None, pa.int32()))
    problem = pc.and_(pc.is_valid(arr), pc.is_null(clean))
    return clean, pc.fill_null(problem, False)


DEFAULT_SEX_VALUES = {"M": "M", "MALE": "M", "F": "F", "FEMALE": "F", "U": "", "UNKNOWN": "", "NOT KNOWN": ""}


def sex(arr: pa.Array, values: dict[str, str]) -> tuple[pa.Array, pa.Array]:
    """M or F. A value mapped to '' is a known 'not recorded': null, not flagged."""
    mapping = {k.strip().upper(): v.strip().upper() for k, v in (values or {}).items()} or DEFAULT_SEX_VALUES
    code = map_distinct(arr, lambda v: mapping.get(v.strip().upper(), "?"))
    clean = pc.if_else(pc.is_in(code, value_set=pa.array(["M", "F"])), code, NULL_STR)
    return clean, pc.fill_null(pc.equal(code, "?"), False)


def with_rule(rule: Callable[[str | None], str | None]) -> Callable[[pa.Array], tuple[pa.Array, pa.Array]]:
    """Lift a scalar rule from veracity.uk over an array."""

    def apply(arr: pa.Array) -> tuple[pa.Array, pa.Array]:
        clean = map_distinct(arr, rule)
        return clean, pc.and_(pc.is_valid(arr), pc.is_null(clean))

    return apply


_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def _email(value: str | None) -> str | None:
    if not value:
        return None
    v = value.strip().lower()
    return v if _EMAIL.match(v) else None


def free_postcode(arr: pa.Array) -> tuple[pa.Array, pa.Array]:
    """Postcodes with UK validation turned off: upper case, single spaced, kept as given."""
    return ascii_upper(arr), pa.array([False] * len(arr))


def free_phone(arr: pa.Array) -> tuple[pa.Array, pa.Array]:
    """Phone numbers with UK validation turned off: digits and a leading '+' only, so
    '+49 176 948-7785' and '+491769487785' agree; nothing is rejected."""
    digits = pc.replace_substring_regex(arr, r"[^0-9]", "")
    international = pc.starts_with(pc.utf8_trim_whitespace(arr), "+")
    kept = pc.if_else(pc.and_(international, pc.not_equal(digits, "")), pc.binary_join_element_wise("+", digits, ""), digits)
    return _blank_to_null(kept), pa.array([False] * len(arr))


def postcode_parts(postcode: pa.Array) -> tuple[pa.Array, pa.Array]:
    """(sector, district) of normalised UK postcodes: 'B12 9QT' -> ('B12 9', 'B12')."""
    uk_shaped = pc.match_substring_regex(postcode, r"^[A-Z]{1,2}[0-9][A-Z0-9]? [0-9][A-Z]{2}$")
    sector = pc.if_else(uk_shaped, pc.utf8_slice_codeunits(postcode, 0, -2), NULL_STR)
    district = pc.if_else(uk_shaped, pc.replace_substring_regex(postcode, r" .*$", ""), NULL_STR)
    return sector, district


postcode = with_rule(uk.normalise_postcode)
phone = with_rule(uk.normalise_uk_phone)
pnc_id = with_rule(uk.normalise_pnc_id)
cro_number = with_rule(uk.normalise_cro_number)
ni_number = with_rule(uk.normalise_ni_number)
driving_licence = with_rule(uk.normalise_driving_licence)
email = with_rule(_email)

IDENTIFIER_RULES = {
    "postcode": postcode,
    "phone": phone,
    "email": email,
    "pnc_id": pnc_id,
    "cro_number": cro_number,
    "ni_number": ni_number,
    "driving_licence": driving_licence,
}
