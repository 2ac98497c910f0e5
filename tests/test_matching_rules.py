"""The rules that stop two records being linked however high the model scores them."""

import duckdb
import pyarrow as pa
import pytest

from veracity.matching.model import CANNOT_LINK_SQL
from veracity.schema import CLEAN_PERSON

BASE = {"first_name": "JOHN", "last_name": "SMITH", "forename_canonical": "JOHN", "birth_year": 1990,
        "postcode_sector": "B12 9"}


def _cannot_link(left: dict, right: dict) -> bool:
    blank = dict.fromkeys(CLEAN_PERSON.column_names)
    rows = [{**blank, **BASE, **left, "unique_id": "a"}, {**blank, **BASE, **right, "unique_id": "b"}]
    con = duckdb.connect()
    con.register("recs", pa.Table.from_pylist(rows, schema=CLEAN_PERSON.arrow_schema))
    sql = f"SELECT {CANNOT_LINK_SQL} FROM recs l, recs r WHERE l.unique_id = 'a' AND r.unique_id = 'b'"
    return con.execute(sql).fetchone()[0]


@pytest.mark.parametrize(
    ("left", "right", "blocked"),
    [
        ({}, {}, False),  # the same details
        ({"first_name": "JOHN"}, {"first_name": "MARY", "forename_canonical": "MARY"}, True),  # twins
        ({"first_name": "JOHN"}, {"first_name": "JOHM"}, False),  # a typo
        ({"first_name": "ROBERT", "forename_canonical": "ROBERT"},
         {"first_name": "BOB", "forename_canonical": "BERT|BOB|BOBBY|ROBERT"}, False),  # a nickname
        ({}, {"first_name": "SMITH", "last_name": "JOHN", "forename_canonical": "SMITH"}, False),  # swapped
        ({}, {"first_name": "MARY", "forename_canonical": "MARY", "pnc_id": "01/0012345H"} , True),
        ({"pnc_id": "01/0012345H"}, {"first_name": "MARY", "forename_canonical": "MARY", "pnc_id": "01/0012345H"}, False),
        ({"aliases": "MARY SMITH"}, {"first_name": "MARY", "forename_canonical": "MARY"}, False),  # a known alias
        ({"birth_year": None, "postcode_sector": None}, {}, True),  # names alone
        ({"birth_year": None}, {}, False),  # names and a postcode sector
        ({"postcode_sector": None}, {"birth_year": 1991}, False),  # names and a birth year within one
        ({"birth_year": 1970, "postcode_sector": "CV1 2"}, {}, True),  # names, nothing else agrees
        ({"birth_year": 1965}, {}, True),  # a generation apart at one address: father and son
        ({"birth_year": 1965, "pnc_id": "01/0012345H"}, {"pnc_id": "01/0012345H"}, False),  # a DOB error
        ({"birth_year": None, "postcode_sector": None, "ni_number": "AB123456C"},
         {"ni_number": "AB123456C"}, False),  # names and an identifier
    ],
)
def test_cannot_link_rules(left, right, blocked):
    assert _cannot_link(left, right) is blocked
    assert _cannot_link(right, left) is blocked  # symmetric
