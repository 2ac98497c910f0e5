"""Person search: the query's checks, the index, ranking, what each group may see, the
tokens, the audit log, and the API as the Lambda and ``veracity serve`` answer it."""

from __future__ import annotations

import json
import time

import duckdb
import jwt
import numpy as np
import pyarrow as pa
import pytest

from veracity.cli import main
from veracity.search.api import create_app
from veracity.search.audit import AuditLog
from veracity.search.auth import LocalSigner, Unauthorised, User
from veracity.search.index import SnapshotIndex, keys_sql, query_keys, restricted_sources
from veracity.search.query import BadRequest, parse_search
from veracity.search.server import api_event, response_headers
from veracity.search.service import SearchService
from veracity.synthetic.queries import known_searches

OFFICER = User("pc-1234", ("officer",))
ADMIN = User("dc-99", ("admin",))
INJECTIONS = [
    "'; DROP TABLE person; --",
    "Robert'); DELETE FROM person_xref; --",
    "<script>alert(1)</script>",
    "SMITH\" OR \"1\"=\"1",
    "${jndi:ldap://x}",
    "../../etc/passwd",
]


@pytest.fixture(scope="module")
def service(resolved_lake) -> SearchService:
    lake, _ = resolved_lake
    return SearchService(SnapshotIndex(lake))


@pytest.fixture()
def api(resolved_lake, service, tmp_path):
    """The API over the resolved lake, auditing to a lake of its own; (app, signer, audit)."""
    lake, _ = resolved_lake
    from veracity.lake import Lake

    audit = AuditLog(Lake.open(str(tmp_path / "audit-lake"), create=True))
    signer = LocalSigner(lake)
    return create_app(lambda: service, signer.verifier(), audit), signer, audit


def call(app, path: str, token: str | None = None) -> tuple[int, dict, dict]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    result = app.resolve(api_event("GET", path, headers), None)
    return result["statusCode"], json.loads(result["body"] or "{}"), response_headers(result)


# -- the query ------------------------------------------------------------------

def test_a_search_needs_a_purpose_and_a_name_or_pnc_id():
    with pytest.raises(BadRequest, match="purpose: required"):
        parse_search({"first_name": "Ann", "last_name": "Lee"})
    with pytest.raises(BadRequest, match="give a name"):
        parse_search({"date_of_birth": "1980-01-01", "purpose": "OP/1"})
    query = parse_search({"first_name": " Ann ", "last_name": "O'Neill-Smith", "purpose": "INC 2026/000123"})
    assert query.values == {"first_name": "Ann", "last_name": "O'Neill-Smith"}


@pytest.mark.parametrize("params,problem", [
    ({"first_name": "A" * 65}, "first_name: longer than 64"),
    ({"last_name": "Smith1"}, "last_name: expected letters"),
    ({"last_name": "Lee", "date_of_birth": "01/02/1980"}, "date_of_birth: expected YYYY-MM-DD"),
    ({"last_name": "Lee", "date_of_birth": "1980-02-30"}, "dob_unparseable"),
    ({"last_name": "Lee", "pnc_id": "not a pnc"}, "pnc_id: expected a PNC id"),
    ({"last_name": "Lee", "pnc_id": "80/123456A"}, "pnc_id_invalid"),
    ({"last_name": "Lee", "postcode": "B1 1AA; --"}, "postcode: expected"),
    ({"last_name": "Lee", "nickname": "x"}, "nickname: not a search parameter"),
])
def test_values_are_checked_for_length_characters_and_validity(params, problem):
    with pytest.raises(BadRequest, match=problem):
        parse_search({**params, "purpose": "OP/1"}).as_records()


@pytest.mark.parametrize("value", INJECTIONS)
def test_injection_strings_are_refused_in_every_field(value):
    for name in ("first_name", "last_name", "postcode", "pnc_id", "purpose"):
        params = {"last_name": "Lee", "purpose": "OP/1", name: value}
        with pytest.raises(BadRequest):
            parse_search(params)


# -- the index --------------------------------------------------------------------

def test_the_index_keys_a_query_as_it_keys_the_records(service):
    """Keys made by DuckDB over the snapshot and by Python for a query agree."""
    records = service.index.records.slice(0, 200)
    con = duckdb.connect()
    con.register("sample", records.append_column("row", pa.array(np.arange(records.num_rows, dtype=np.int32))))
    by_sql = sorted(int(k) for k, in con.execute(f"SELECT key FROM ({keys_sql('sample')})").fetchall())
    assert sorted(set(by_sql)) == query_keys(records.to_pylist())
    assert len(by_sql) > 200


def test_each_record_is_reachable_by_its_own_keys(service):
    index = service.index
    for record in index.records.slice(0, 50).to_pylist():
        found = index.candidates(query_keys([record]), frozenset())
        assert record["unique_id"] in found.column("unique_id").to_pylist()


# -- ranking ----------------------------------------------------------------------

def test_the_person_sought_is_ranked_first_for_noisy_searches(resolved_lake, service):
    lake, _ = resolved_lake
    searches = known_searches(lake, 150, seed=11)
    assert len(searches) == 150 and all(s.slips for s in searches)
    first = sum(1 for s in searches
                if (r := service.search(parse_search(s.params), OFFICER)) and r[0]["person_id"] == s.expected_person_id)
    assert first / len(searches) >= 0.95


def test_a_result_says_why_it_matched_and_ranks_by_score(service):
    record = next(r for r in service.index.records.to_pylist() if r["date_of_birth"] and r["postcode"])
    params = {"first_name": record["first_name"], "last_name": record["last_name"],
              "date_of_birth": record["date_of_birth"].isoformat(), "purpose": "OP/1"}
    results = service.search(parse_search(params), ADMIN)
    assert results[0]["person_id"] == record["person_id"]
    assert [r["score"] for r in results] == sorted((r["score"] for r in results), reverse=True)
    top = results[0]
    assert set(top) == {"person_id", "score", "match_weight", "name", "date_of_birth", "postcode", "sources", "why"}
    assert any(line.startswith("date of birth: ") for line in top["why"])
    assert record["source_system"] in top["sources"]


def test_a_swapped_name_and_a_nickname_still_find_the_person(service):
    records = [r for r in service.index.records.to_pylist()
               if r["date_of_birth"] and r["forename_canonical"] and "|" in r["forename_canonical"]
               and r["source_system"] not in restricted_sources()]
    record = records[0]
    dob = record["date_of_birth"].isoformat()
    swapped = parse_search({"first_name": record["last_name"], "last_name": record["first_name"], "date_of_birth": dob, "purpose": "OP/1"})
    assert service.search(swapped, OFFICER)[0]["person_id"] == record["person_id"]
    other = next(n for n in record["forename_canonical"].split("|") if n != record["first_name"])
    nickname = parse_search({"first_name": other, "last_name": record["last_name"], "date_of_birth": dob, "purpose": "OP/1"})
    assert record["person_id"] in [r["person_id"] for r in service.search(nickname, OFFICER)[:3]]


# -- what a group may see -----------------------------------------------------------

def _restricted_person(service) -> dict:
    restricted = restricted_sources()
    return next(r for r in service.index.records.to_pylist() if r["source_system"] in restricted and r["date_of_birth"])


def test_officers_never_find_a_person_through_restricted_records_alone(service):
    assert restricted_sources() == {"intelligence"}
    record = _restricted_person(service)
    params = {"first_name": record["first_name"], "last_name": record["last_name"],
              "date_of_birth": record["date_of_birth"].isoformat(), "purpose": "OP/1"}
    for result in service.search(parse_search(params), OFFICER):
        assert "intelligence" not in result["sources"]
    assert "intelligence" in service.search(parse_search(params), ADMIN)[0]["sources"]


def test_officers_get_the_person_page_without_identifiers_or_restricted_records(service):
    record = _restricted_person(service)
    as_officer, as_admin = service.person(record["person_id"], OFFICER), service.person(record["person_id"], ADMIN)
    assert {r["source_system"] for r in as_officer["records"]} <= set(service.index.records.column("source_system").to_pylist()) - {"intelligence"}
    assert "intelligence" in {r["source_system"] for r in as_admin["records"]}
    assert all(r["pnc_id"] is None for r in as_officer["records"])
    assert as_officer["person"]["pnc_id"] is None and "intelligence" not in as_officer["person"]["source_systems"]
    assert "records of restricted sources" in as_officer["withheld"] and as_admin["withheld"] == []


# -- tokens --------------------------------------------------------------------------

def test_tokens_verify_only_when_signed_by_the_key_for_this_client_and_unexpired(resolved_lake, tmp_path):
    lake, _ = resolved_lake
    signer = LocalSigner(lake)
    verifier = signer.verifier()
    assert verifier.user("Bearer " + signer.mint("pc-1", ["officer"])) == User("pc-1", ("officer",))
    from veracity.lake import Lake

    stranger = LocalSigner(Lake.open(str(tmp_path / "other"), create=True))
    claims = jwt.decode(signer.mint("pc-1", ["officer"]), options={"verify_signature": False})
    forged = {
        "missing": None,
        "not bearer": signer.mint("pc-1", ["officer"]),
        "other key": "Bearer " + stranger.mint("pc-1", ["officer"]),
        "expired": "Bearer " + jwt.encode({**claims, "exp": int(time.time()) - 10}, signer._key, "RS256", headers={"kid": signer.kid}),
        "other client": "Bearer " + jwt.encode({**claims, "client_id": "x"}, signer._key, "RS256", headers={"kid": signer.kid}),
        "no group": "Bearer " + jwt.encode({**claims, "cognito:groups": []}, signer._key, "RS256", headers={"kid": signer.kid}),
        "unsigned": "Bearer " + jwt.encode(claims, None, "none"),
        "tampered": "Bearer " + signer.mint("pc-1", ["officer"])[:-4] + "AAAA",
    }
    for name, header in forged.items():
        with pytest.raises(Unauthorised):
            verifier.user(header)
        assert name


# -- the API and its audit ------------------------------------------------------------

def test_no_route_answers_without_a_valid_token(api, service):
    app, signer, audit = api
    person = service.index.records.column("person_id")[0].as_py()
    for path in ("/api/persons/search?last_name=Lee&purpose=OP1", f"/api/persons/{person}?purpose=OP1", "/api/nowhere"):
        for token in (None, "not-a-jwt"):
            status, body, headers = call(app, path, token)
            assert status == 401 and body["error"] == "unauthorised" and headers["WWW-Authenticate"] == "Bearer"
    entries = audit.entries().to_pylist()
    assert len(entries) == 6 and {e["outcome"] for e in entries} == {"unauthorised"}


def test_every_request_is_audited_once_with_user_purpose_query_and_persons(api, service):
    app, signer, audit = api
    token = signer.mint("pc-1234", ["officer"])
    record = service.index.records.filter(service.index.records.column("date_of_birth").is_valid()).to_pylist()[0]
    search = f"/api/persons/search?first_name={record['first_name']}&last_name={record['last_name']}&date_of_birth={record['date_of_birth']}&purpose=OP%2F42"
    requests = [
        (search, 200, "answered"),
        ("/api/persons/search?first_name=Ann&last_name=Lee", 400, "bad_request"),
        ("/api/persons/search?first_name=Sean&last_name=O%27Brien-Smith&purpose=OP1", 200, "answered"),  # an apostrophe is data
        ("/api/persons/search?last_name=Lee%27%3B%20DROP%20TABLE%20person%3B--&purpose=OP1", 400, "bad_request"),
        (f"/api/persons/{record['person_id']}?purpose=OP%2F42", 200, "answered"),
        ("/api/persons/P000000000000000?purpose=OP1", 404, "not_found"),
        ("/api/persons/not-an-id?purpose=OP1", 400, "bad_request"),
    ]
    answers = []
    for path, status, _ in requests:
        got, body, headers = call(app, path, token)
        assert got == status, body
        assert headers["Cache-Control"] == "no-store"
        answers.append(body)
    assert answers[0]["results"][0]["person_id"] == record["person_id"]
    assert answers[4]["person"]["person_id"] == record["person_id"]
    entries = audit.entries().to_pylist()
    assert [(e["status"], e["outcome"]) for e in entries] == [(s, o) for _, s, o in requests]
    assert len({e["request_id"] for e in entries}) == len(requests)
    first = entries[0]
    assert (first["user"], first["groups"], first["purpose"]) == ("pc-1234", ["officer"], "OP/42")
    assert json.loads(first["query"])["last_name"] == record["last_name"]
    assert first["person_ids"] == [r["person_id"] for r in answers[0]["results"]]
    assert entries[4]["person_ids"] == [record["person_id"]]
    assert audit.entries(person_id=record["person_id"]).num_rows == 2
    assert audit.entries(outcome="bad_request").num_rows == 3


def test_an_id_merged_by_a_later_run_redirects_to_its_survivor(resolved_lake, tmp_path):
    """A reviewer's must-link merges two persons; the next snapshot's index sends the
    merged-away id to the survivor, as person_id_history records it."""
    import csv
    import shutil

    from veracity.lake import Lake
    from veracity.pipeline import run
    from veracity.sql import query

    shutil.copytree(resolved_lake[0].root, tmp_path / "lake")
    lake = Lake.open(str(tmp_path / "lake"))
    # Two persons of one record each: joining them merges one away.
    pair = query(lake, """WITH single AS (SELECT person_id FROM person_xref GROUP BY person_id HAVING count(*) = 1)
                          SELECT q.unique_id_l, q.unique_id_r FROM review_queue q
                          WHERE q.person_id_l IN (SELECT * FROM single) AND q.person_id_r IN (SELECT * FROM single)
                          ORDER BY q.match_probability DESC, q.unique_id_l LIMIT 1""").to_pylist()[0]
    with open(tmp_path / "decisions.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["unique_id_l", "unique_id_r", "decision", "reviewer"])
        writer.writeheader()
        writer.writerow({**pair, "decision": "must_link", "reviewer": "PC 1"})
    assert main(["review", "import", "--lake", lake.root, str(tmp_path / "decisions.csv")]) == 0
    summary = run(lake)
    events = query(lake, f"SELECT * FROM person_id_history WHERE run_id = '{summary.run_id}'").to_pylist()
    [merge] = [e for e in events if e["event"] == "merged"]
    index = SnapshotIndex(lake)
    assert index.survivor(merge["other_person_id"]) == merge["person_id"] == index.survivor(merge["person_id"])
    assert index.survivor("P0000000000000AA") is None
    signer = LocalSigner(lake)
    app = create_app(lambda: SearchService(index), signer.verifier(), AuditLog(Lake.open(str(tmp_path / "audit"), create=True)))
    status, body, headers = call(app, f"/api/persons/{merge['other_person_id']}?purpose=OP1", signer.mint("pc-1", ["officer"]))
    assert status == 301 and body == {"redirect_to": merge["person_id"], "merged": merge["other_person_id"]}
    assert headers["Location"] == f"/api/persons/{merge['person_id']}?purpose=OP1"


def test_the_audit_command_lists_and_filters_entries(api, service, tmp_path, capsys):
    app, signer, audit = api
    call(app, "/api/persons/search?last_name=Lee&first_name=Ann&purpose=OP1", signer.mint("pc-7", ["analyst"]))
    call(app, "/api/persons/search?last_name=Lee&first_name=Ann", signer.mint("pc-8", ["officer"]))
    lake = audit.lake.display()
    assert main(["audit", "--lake", lake, "--user", "pc-7"]) == 0
    shown = capsys.readouterr()
    assert "pc-7" in shown.out and "pc-8" not in shown.out and "1 entries" in shown.err
    out = tmp_path / "audit.csv"
    assert main(["audit", "--lake", lake, "--out", str(out)]) == 0
    assert len(out.read_text().strip().splitlines()) == 3


def test_the_token_command_mints_what_the_server_verifies(resolved_lake, capsys):
    lake, _ = resolved_lake
    assert main(["token", "--lake", lake.display(), "--user", "pc-5", "--group", "officer", "--group", "analyst"]) == 0
    token = capsys.readouterr().out.strip()
    assert LocalSigner(lake).verifier().user("Bearer " + token) == User("pc-5", ("officer", "analyst"))
    assert main(["token", "--lake", lake.display(), "--user", "pc-5", "--group", "superuser"]) == 1


def test_scores_are_those_of_splinks_own_prediction_sql(service):
    """The weights summed per search equal Splink's prediction over the same pairs."""
    from veracity.matching import model
    from veracity.schema import CLEAN_PERSON

    index, scorer = service.index, service.scorer
    record = next(r for r in index.records.to_pylist() if r["date_of_birth"] and r["postcode"])
    query = parse_search({"first_name": record["first_name"], "last_name": record["last_name"], "postcode": record["postcode"],
                          "date_of_birth": record["date_of_birth"].isoformat(), "purpose": "OP/1"})
    prepared = index.with_tf(model.prepare(query.as_records().slice(0, 1).select(CLEAN_PERSON.column_names)))
    candidates = index.with_tf(model.prepare(index.records.slice(0, 2000).drop_columns(["person_id", "source_system"])))
    ours, splinks = scorer.score(prepared, candidates), scorer.score_with_splink(prepared, candidates)
    assert ours.column("unique_id_r").to_pylist() == splinks.column("unique_id_r").to_pylist()
    for name in ours.column_names[1:]:
        assert np.allclose(ours.column(name).to_numpy(zero_copy_only=False).astype(float),
                           splinks.column(name).to_numpy(zero_copy_only=False).astype(float), rtol=0, atol=1e-9), name
    assert (ours.column("match_probability").to_numpy() > 0.99).any() and (ours.column("match_probability").to_numpy() < 0.01).any()


def test_audit_files_read_as_the_athena_table_declares_them(api, service):
    """The JSON files, read with the declared columns and types (as Athena's JSON SerDe
    reads the audit bucket), give back every entry."""
    from veracity.schema import SEARCH_AUDIT

    app, signer, audit = api
    call(app, "/api/persons/search?first_name=Ann&last_name=Lee&purpose=OP%2F9", signer.mint("pc-9", ["officer"]))
    call(app, "/api/persons/search?first_name=Ann&last_name=Lee", None)
    types = {"string": "VARCHAR", "int32": "INTEGER", "list<item: string>": "VARCHAR[]"}
    columns = {c.name: types[str(c.type)] for c in SEARCH_AUDIT.columns}
    rows = duckdb.sql(f"SELECT * FROM read_json('{audit.lake.path('audit')}/*/*.json', columns={columns}, format='auto') "
                      "ORDER BY time").fetchall()
    assert [r[2] for r in rows] == ["pc-9", None] and rows[0][4] == "OP/9" and json.loads(rows[0][6])["first_name"] == "Ann"
