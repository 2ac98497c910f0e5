"""UK reference formats and their check rules, shared by the generator and the scrub.

One implementation each: the generator builds values with these functions and the
scrub validates with them, so the two can never disagree.
"""

from __future__ import annotations

import re
from datetime import date

# PNC and CRO numbers end in a check letter: the digits (year then serial) modulo 23
# index this alphabet, which omits I, O and S.
_CHECK_ALPHABET = "ZABCDEFGHJKLMNPQRTUVWXY"


def mod23_check_letter(year2: int, serial: int) -> str:
    return _CHECK_ALPHABET[int(f"{year2:02d}{serial:07d}") % 23]


def format_pnc_id(year2: int, serial: int) -> str:
    return f"{year2:02d}/{serial:07d}{mod23_check_letter(year2, serial)}"


_PNC_RE = re.compile(r"^(\d{2}|\d{4})/?(\d{1,7})([A-Z])$")


def normalise_pnc_id(value: str | None) -> str | None:
    """Canonical 'YY/NNNNNNNC' when the check letter is right, else None."""
    if not value:
        return None
    m = _PNC_RE.match(re.sub(r"\s+", "", value.upper()))
    if not m:
        return None
    year2, serial, letter = int(m.group(1)[-2:]), int(m.group(2)), m.group(3)
    if mod23_check_letter(year2, serial) != letter:
        return None
    return format_pnc_id(year2, serial)


def format_cro_number(serial: int, year2: int) -> str:
    return f"{serial:06d}/{year2:02d}{mod23_check_letter(year2, serial)}"


_CRO_RE = re.compile(r"^(\d{1,6})/(\d{2})([A-Z])$")


def normalise_cro_number(value: str | None) -> str | None:
    if not value:
        return None
    m = _CRO_RE.match(re.sub(r"\s+", "", value.upper()))
    if not m:
        return None
    serial, year2, letter = int(m.group(1)), int(m.group(2)), m.group(3)
    if mod23_check_letter(year2, serial) != letter:
        return None
    return format_cro_number(serial, year2)


# National Insurance numbers: first letter not D F I Q U V; second not D F I O Q U V;
# some pairs are never issued; suffix A-D.
NI_FIRST = "ABCEGHJKLMNOPRSTWXYZ"
NI_SECOND = "ABCEGHJKLMNPRSTWXYZ"
NI_BANNED_PREFIXES = frozenset({"BG", "GB", "KN", "NK", "NT", "TN", "ZZ"})
_NI_RE = re.compile(r"^([A-Z]{2})(\d{6})([A-D])$")


def normalise_ni_number(value: str | None) -> str | None:
    if not value:
        return None
    m = _NI_RE.match(re.sub(r"[\s-]+", "", value.upper()))
    if not m:
        return None
    prefix = m.group(1)
    if prefix[0] not in NI_FIRST or prefix[1] not in NI_SECOND or prefix in NI_BANNED_PREFIXES:
        return None
    return prefix + m.group(2) + m.group(3)


def driving_licence_stem(last_name: str, first_initials: str, dob: date, female: bool) -> str:
    """The first 13 characters of a DVLA licence number, derived from name and DOB."""
    surname = re.sub(r"[^A-Z]", "", last_name.upper())[:5].ljust(5, "9")
    month = dob.month + (50 if female else 0)
    initials = re.sub(r"[^A-Z]", "", first_initials.upper())[:2].ljust(2, "9")
    return f"{surname}{str(dob.year)[2]}{month:02d}{dob.day:02d}{str(dob.year)[3]}{initials}"


_DL_RE = re.compile(r"^[A-Z9]{5}\d[0156]\d[0-3]\d\d[A-Z9]{2}\d[A-Z0-9]{2}$")


def normalise_driving_licence(value: str | None) -> str | None:
    if not value:
        return None
    v = re.sub(r"\s+", "", value.upper())
    return v if _DL_RE.match(v) else None


# Postcodes: the outward code (area letters, district) then the inward code (sector
# digit, two unit letters drawn from a restricted alphabet).
POSTCODE_UNIT_LETTERS = "ABDEFGHJLNPQRSTUWXYZ"
_POSTCODE_RE = re.compile(
    r"^([A-Z]{1,2}[0-9][A-Z0-9]?)([0-9][" + POSTCODE_UNIT_LETTERS + r"]{2})$"
)


def normalise_postcode(value: str | None) -> str | None:
    """'b12  9qt' -> 'B12 9QT'; None when it is not a valid UK postcode shape."""
    if not value:
        return None
    m = _POSTCODE_RE.match(re.sub(r"[^A-Z0-9]", "", value.upper()))
    return f"{m.group(1)} {m.group(2)}" if m else None


def normalise_uk_phone(value: str | None) -> str | None:
    """A UK number in E.164 ('+447700900123'); None when it has the wrong length."""
    if not value:
        return None
    digits = re.sub(r"\D", "", value)
    if digits.startswith("44"):
        digits = "0" + digits[2:]
    if digits.startswith("0") and len(digits) == 11:
        return "+44" + digits[1:]
    return None
