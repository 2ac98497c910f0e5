"""The eleven source systems: each renders a record draft in its own native shape.

Formats, field names, date formats, encodings and quirks differ on purpose; the
matching `sources/<system>.yaml` tells the scrub how to read each one back.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from functools import lru_cache

from veracity.synthetic.errors import RecordDraft

Render = Callable[[RecordDraft, str, date], object]


@lru_cache(maxsize=1 << 17)
def format_date(d: date, fmt: str) -> str:
    """Dates repeat across a person's records: format each once."""
    return d.strftime(fmt)


def _d(fmt: str) -> Render:
    return lambda r, _id, _at: format_date(r.date_of_birth, fmt) if r.date_of_birth else ""


def _age(r: RecordDraft, _id: str, at: date) -> str:
    if not r.date_of_birth:
        return ""
    dob = r.date_of_birth
    return str(at.year - dob.year - ((at.month, at.day) < (dob.month, dob.day)))


def _get(attr: str, transform: Callable[[str], str] = lambda v: v) -> Render:
    return lambda r, _id, _at: transform(getattr(r, attr)) if getattr(r, attr) else ""


def _rid(r: RecordDraft, rid: str, _at: date) -> str:
    return rid


def _surname_first(r: RecordDraft, _id: str, _at: date) -> str:
    given = " ".join(p for p in (r.first_name, r.middle_names) if p)
    return f"{r.last_name.upper()}, {given}"


def _sex_word(r: RecordDraft, _id: str, _at: date) -> str:
    return {"M": "Male", "F": "Female"}.get(r.sex, "Unknown")


def _sex_digit(r: RecordDraft, _id: str, _at: date) -> str:
    return {"M": "1", "F": "2"}.get(r.sex, "0")


def _event_date(fmt: str) -> Render:
    return lambda r, _id, _at: format_date(r.event_date, fmt) if r.event_date else ""


@dataclass(frozen=True)
class System:
    name: str
    format: str  # csv | jsonl | fixed_width
    share: float  # share of all records
    quality: float  # error-rate multiplier
    columns: dict[str, Render]
    extension: str = "csv"
    delimiter: str = ","
    encoding: str = "utf-8"
    widths: dict[str, int] = field(default_factory=dict)  # fixed_width column lengths
    id_prefix: str = ""
    events: str | None = None  # each record is a participation in a crime, incident or search
    ocr: bool = False  # keyed from scanned paper: typos are OCR misreads


SYSTEMS: tuple[System, ...] = (
    System(
        "custody", "csv", 0.15, 0.7, id_prefix="CUS",
        columns={
            "CUSTODY_REF": _rid, "SURNAME": _get("last_name"), "FORENAME": _get("first_name"),
            "MIDDLE_NAMES": _get("middle_names"), "DOB": _d("%d/%m/%Y"), "SEX": _get("sex"),
            "ADDR1": _get("address_line"), "TOWN": _get("town"), "POSTCODE": _get("postcode"),
            "PNC_ID": _get("pnc_id"), "CRO_NO": _get("cro_number"), "PHONE": _get("phone"),
        },
    ),
    System(
        "crime", "csv", 0.20, 1.0, delimiter="|", id_prefix="CRM", events="crime",
        columns={
            "CRIME_PERSON_ID": _rid, "FAMILY_NAME": _get("last_name"),
            "GIVEN_NAME": _get("first_name"), "BIRTH_DATE": _d("%Y-%m-%d"), "GENDER": _sex_word,
            "HOUSE_STREET": _get("address_line"), "POST_TOWN": _get("town"),
            "POST_CODE": _get("postcode"), "PNC": _get("pnc_id"),
            "CRIME_REF": _get("event_ref"), "OFFENCE_DATE": _event_date("%Y-%m-%d"),
            "HO_OFFENCE_GROUP": _get("event_group"), "NEIGHBOURHOOD": _get("neighbourhood"),
            "PERSON_ROLE": _get("role"),
        },
    ),
    System(
        "intelligence", "jsonl", 0.12, 1.3, extension="jsonl", id_prefix="INT",
        columns={
            "subject_id": _rid,
            "name": lambda r, i, a: {"given": r.first_name, "family": r.last_name},
            "dob": _d("%Y%m%d"),
            "aliases": lambda r, i, a: "; ".join(r.aliases),
            "address": lambda r, i, a: {"line1": r.address_line, "town": r.town, "postcode": r.postcode},
            "pnc": _get("pnc_id"), "phone": _get("phone"),
        },
    ),
    System(
        "command_and_control", "csv", 0.12, 1.5, delimiter=";", encoding="latin-1", id_prefix="CC",
        events="incident",
        columns={
            "INCIDENT_PERSON_ID": _rid, "NAME": _surname_first, "AGE": _age,
            "LOCATION_POSTCODE": _get("postcode"), "CONTACT_NO": _get("phone"),
            "INCIDENT_REF": _get("event_ref"), "INCIDENT_DATE": _event_date("%d/%m/%Y"),
            "INCIDENT_TYPE": _get("event_group"), "BEAT": _get("neighbourhood"), "INVOLVEMENT": _get("role"),
        },
    ),
    System(
        "case_files", "fixed_width", 0.08, 0.8, extension="txt", id_prefix="CF", ocr=True,
        widths={"CASE_PERSON_ID": 20, "SURNAME": 25, "FORENAMES": 30, "DOB": 8, "SEX": 1,
                "POSTCODE": 8, "NI_NUMBER": 9, "PNC": 12},
        columns={
            "CASE_PERSON_ID": _rid, "SURNAME": _get("last_name", str.upper),
            "FORENAMES": lambda r, i, a: " ".join(p for p in (r.first_name, r.middle_names) if p).upper(),
            "DOB": _d("%d%m%Y"), "SEX": _get("sex"), "POSTCODE": _get("postcode"),
            "NI_NUMBER": _get("ni_number"), "PNC": _get("pnc_id"),
        },
    ),
    System(
        "stop_search", "csv", 0.10, 1.4, id_prefix="SS", events="search",
        columns={
            "SEARCH_SUBJECT_ID": _rid, "FIRST_NAME": _get("first_name"), "LAST_NAME": _get("last_name"),
            "DATE_OF_BIRTH": _d("%d-%b-%Y"), "GENDER": _get("sex"), "HOME_POSTCODE": _get("postcode"),
            "SEARCH_DATE": _event_date("%d-%b-%Y"), "SEARCH_AREA": _get("neighbourhood"),
        },
    ),
    System(
        "firearms_licensing", "csv", 0.02, 0.5, delimiter="\t", extension="tsv", id_prefix="FL",
        columns={
            "APPLICANT_ID": _rid, "FORENAMES": lambda r, i, a: " ".join(p for p in (r.first_name, r.middle_names) if p),
            "SURNAME": _get("last_name"), "DOB": _d("%Y/%m/%d"), "SEX": _sex_word,
            "ADDRESS": _get("address_line"), "TOWN": _get("town"), "POSTCODE": _get("postcode"),
            "NI_NO": _get("ni_number"), "DRIVING_LICENCE": _get("driving_licence"),
            "EMAIL": _get("email"), "TELEPHONE": _get("phone"),
        },
    ),
    System(
        "missing_persons", "jsonl", 0.03, 1.0, extension="jsonl", id_prefix="MP",
        columns={
            "report_person_id": _rid,
            "person": lambda r, i, a: {"forenames": r.first_name, "surname": r.last_name,
                                       "date_of_birth": r.date_of_birth.isoformat() if r.date_of_birth else None,
                                       "sex": r.sex or None},
            "last_known_address": lambda r, i, a: {"street": r.address_line, "town": r.town, "postcode": r.postcode},
            "phone": _get("phone"),
        },
    ),
    System(
        "public_protection", "csv", 0.05, 0.6, encoding="latin-1", id_prefix="PP",
        columns={
            "PPU_NOMINAL": _rid, "SURNAME": _get("last_name"), "FORENAME": _get("first_name"),
            "DOB": _d("%d.%m.%Y"), "SEX": _sex_digit, "ADDRESS": _get("address_line"),
            "POSTCODE": _get("postcode"), "PNC_ID": _get("pnc_id"), "CRO": _get("cro_number"),
            "NINO": _get("ni_number"), "AKA": lambda r, i, a: ";".join(r.aliases),
        },
    ),
    System(
        "road_collisions", "csv", 0.07, 1.2, id_prefix="RTC",
        columns={
            "COLLISION_PARTY_ID": _rid, "DRIVER_FORENAME": _get("first_name"),
            "DRIVER_SURNAME": _get("last_name"), "DRIVER_DOB": _d("%d%m%Y"),
            "LICENCE_NO": _get("driving_licence"), "DRIVER_POSTCODE": _get("postcode"),
        },
    ),
    System(
        "fixed_penalties", "fixed_width", 0.06, 1.1, extension="dat", encoding="latin-1", id_prefix="FPN", ocr=True,
        widths={"TICKET_PERSON_ID": 20, "OFFENDER_NAME": 40, "OFFENDER_DOB": 8,
                "DRIVER_NUMBER": 16, "POSTCODE": 8},
        columns={
            "TICKET_PERSON_ID": _rid, "OFFENDER_NAME": _surname_first, "OFFENDER_DOB": _d("%Y%m%d"),
            "DRIVER_NUMBER": _get("driving_licence"), "POSTCODE": _get("postcode"),
        },
    ),
)

SYSTEMS_BY_NAME = {s.name: s for s in SYSTEMS}
