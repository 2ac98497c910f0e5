"""The rules that stop two records being linked however high the model scores them."""

import duckdb
import pyarrow as pa
import pytest

from veracity.matching.model import CANNOT_LINK_SQL, prepare
from veracity.schema import CLEAN_PERSON

BASE = {"first_name": "JOHN", "last_name": "SMITH", "forename_canonical": "JOHN", "birth_year": 1990,
        "postcode_sector": "B12 9"}


def _cannot_link(left: dict, right: dict) -> bool:
    blank = dict.fromkeys(CLEAN_PERSON.column_names)
    rows = [{**blank, **BASE, **left, "unique_id": "a"}, {**blank, **BASE, **right, "unique_id": "b"}]
    con = duckdb.connect()
    con.register("recs", prepare(pa.Table.from_pylist(rows, schema=CLEAN_PERSON.arrow_schema)))
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
        ({"birth_year": None, "postcode_sector": None, "postcode": "75011"},
         {"postcode_sector": None, "postcode": "75011"}, False),  # names and a (non-UK) postcode
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


def test_a_person_never_holds_two_pnc_ids():
    from veracity.matching.constraints import constrained_clusters

    clusters = pa.table({"unique_id": list("abcde"), "cluster_id": ["1", "1", "1", "1", "2"]})
    links = pa.table({"unique_id_l": ["a", "b", "c"], "unique_id_r": ["b", "c", "d"], "match_probability": [0.99, 0.96, 0.999]})
    ids = pa.table({"unique_id": list("abcde"), "pnc_id": ["01/0000001Z", None, None, "02/0000002Z", "03/0000003Z"]})
    out = dict(zip(*constrained_clusters(clusters, links, ids).to_pydict().values(), strict=True))
    assert out["a"] == out["b"]  # b's strongest link is to a
    assert out["c"] == out["d"] != out["a"]  # c is held by d (0.999); b-c (0.96) would join two PNCs
    assert out["e"] == "2"  # clusters without a conflict are untouched


@pytest.mark.parametrize("ruled", [("a", "d"), ("b", "d"), ("d", "b")])
def test_records_ruled_apart_stay_apart_however_deep_in_their_groups(ruled):
    """A chain a-b-c-d in one cluster and a reviewer's ruling that a (or b) and d are
    apart: the link that would join them is refused, the ruled record a group's
    root or joined to it before."""
    from veracity.matching.constraints import constrained_clusters

    clusters = pa.table({"unique_id": list("abcde"), "cluster_id": ["1"] * 4 + ["2"]})
    links = pa.table({"unique_id_l": ["c", "b", "a"], "unique_id_r": ["d", "c", "b"], "match_probability": [0.99, 0.97, 0.98]})
    ids = pa.table({"unique_id": list("abcde"), "pnc_id": pa.array([None] * 5, pa.string())})
    apart = pa.table({"unique_id_l": [ruled[0]], "unique_id_r": [ruled[1]]})
    out = dict(zip(*constrained_clusters(clusters, links, ids, apart).to_pydict().values(), strict=True))
    assert out["a"] == out["b"] != out["c"] == out["d"]  # b-c (0.97) is the link that would join the two
    assert out["e"] == "2"


def test_resolved_persons_hold_at_most_one_pnc(resolved_lake):
    from veracity.sql import query

    lake, _ = resolved_lake
    several = query(
        lake,
        "SELECT count(*) AS n FROM (SELECT x.person_id FROM person_xref x JOIN clean_person c "
        "ON c.source_system = x.source_system AND c.source_record_id = x.source_record_id "
        "WHERE c.pnc_id IS NOT NULL GROUP BY 1 HAVING count(DISTINCT c.pnc_id) > 1)",
    )
    assert several.column("n")[0].as_py() == 0
