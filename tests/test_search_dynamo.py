"""The serving index in DynamoDB (moto): written from the published snapshot, it
answers every search and person page as the snapshot itself does."""

from __future__ import annotations

import boto3
import pytest

from veracity.search.auth import User
from veracity.search.dynamo import DynamoIndex, all_keys, write_index
from veracity.search.index import SnapshotIndex
from veracity.search.query import parse_search
from veracity.search.service import SearchService
from veracity.synthetic.queries import known_searches

REGION = "eu-west-2"
OFFICER, ADMIN = User("pc-1", ("officer",)), User("dc-1", ("admin",))


@pytest.fixture(scope="module")
def indexes(resolved_lake, moto_endpoint):
    lake, _ = resolved_lake
    dynamodb = boto3.resource("dynamodb", region_name=REGION)
    table = dynamodb.create_table(
        TableName="veracity-test-search-index", BillingMode="PAY_PER_REQUEST",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
    )
    table.put_item(Item={"pk": "R#gone:1", "r": "{}"})  # written by an earlier snapshot
    counts = write_index(lake, table.name, resource=dynamodb)
    return SnapshotIndex(lake), DynamoIndex(table.name, lake, resource=dynamodb), counts, table


def test_the_index_holds_the_snapshot_and_nothing_earlier(indexes, resolved_lake):
    snapshot, dynamo, counts, table = indexes
    assert counts["deleted"] == 1 and table.get_item(Key={"pk": "R#gone:1"}).get("Item") is None
    assert dynamo.run_id == snapshot.run_id
    keys = list(all_keys(table))
    assert sum(k.startswith("R#") for k in keys) == snapshot.records.num_rows
    assert sum(k.startswith("P#") for k in keys) == snapshot.persons.num_rows


def test_dynamodb_answers_searches_and_person_pages_as_the_snapshot_does(indexes, resolved_lake):
    snapshot, dynamo, _, _ = indexes
    lake, _ = resolved_lake
    local, remote = SearchService(snapshot), SearchService(dynamo)
    for search in known_searches(lake, 25, seed=5):
        query = parse_search(search.params)
        for user in (OFFICER, ADMIN):
            assert remote.search(query, user) == local.search(query, user)
    person = snapshot.records.column("person_id")[0].as_py()
    for user in (OFFICER, ADMIN):
        assert remote.person(person, user) == local.person(person, user)


def test_the_lambda_answers_from_the_table_and_reloads_after_a_publish(indexes, resolved_lake, tmp_path, monkeypatch):
    """The search Lambda's handler on moto: a request without a token is refused (401)
    and audited; a warm handler picks up a newly published snapshot."""
    import importlib.util
    import json

    from veracity.search.server import _Context, api_event

    snapshot, _, _, table = indexes
    lake, _ = resolved_lake
    monkeypatch.setenv("SEARCH_TABLE", table.name)
    monkeypatch.setenv("VERACITY_LAKE", lake.root)
    (tmp_path / "audit").mkdir()
    monkeypatch.setenv("AUDIT_LAKE", str(tmp_path / "audit"))
    monkeypatch.setenv("USER_POOL_ID", f"{REGION}_pool")
    boto3.client("ssm", region_name=REGION).put_parameter(Name="/test/search/page-client-id", Value="client", Type="String")
    monkeypatch.setenv("USER_POOL_CLIENT_PARAMETER", "/test/search/page-client-id")
    monkeypatch.setenv("AWS_REGION", REGION)
    monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "true")
    from pathlib import Path

    spec = importlib.util.spec_from_file_location("search_handler", Path(__file__).parent.parent / "lambdas" / "search" / "handler.py")
    handler = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(handler)

    response = handler.lambda_handler(api_event("GET", "/api/persons/search?last_name=Lee&purpose=OP1", {}), _Context("req-1"))
    assert response["statusCode"] == 401
    [entry] = [json.loads(p.read_text()) for p in (tmp_path / "audit" / "audit").rglob("*.json")]
    assert entry["outcome"] == "unauthorised" and entry["route"] == "/api/persons/search"

    first = handler.service()
    assert first.index.run_id == snapshot.run_id and handler.service() is first
    table.update_item(Key={"pk": "META"}, UpdateExpression="SET run_id = :r", ExpressionAttributeValues={":r": "newer"})
    monkeypatch.setattr(handler, "REFRESH_SECONDS", 0)
    assert handler.service() is not first and handler.service().index.run_id == "newer"
    table.update_item(Key={"pk": "META"}, UpdateExpression="SET run_id = :r", ExpressionAttributeValues={":r": snapshot.run_id})


def test_a_publish_writes_only_the_items_that_changed(resolved_lake, moto_endpoint, tmp_path):
    """Written again for the same snapshot nothing is written; after a reviewer's
    must-link merges two persons, only their items change and the merged one goes."""
    import csv
    import shutil

    from veracity.cli import main
    from veracity.lake import Lake
    from veracity.pipeline import run
    from veracity.sql import query

    shutil.copytree(resolved_lake[0].root, tmp_path / "lake")
    lake = Lake.open(str(tmp_path / "lake"))
    dynamodb = boto3.resource("dynamodb", region_name=REGION)
    table = dynamodb.create_table(
        TableName="veracity-test-search-delta", BillingMode="PAY_PER_REQUEST",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
    )
    first = write_index(lake, table.name, resource=dynamodb)
    assert first["unchanged"] == 0 and first["deleted"] == 0
    assert write_index(lake, table.name, resource=dynamodb) == {"written": 0, "unchanged": first["written"], "deleted": 0}

    pair = query(lake, """WITH single AS (SELECT person_id FROM person_xref GROUP BY person_id HAVING count(*) = 1)
                          SELECT q.unique_id_l, q.unique_id_r FROM review_queue q
                          WHERE q.person_id_l IN (SELECT * FROM single) AND q.person_id_r IN (SELECT * FROM single)
                          ORDER BY q.match_probability DESC, q.unique_id_l LIMIT 1""").to_pylist()[0]
    with open(tmp_path / "decisions.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["unique_id_l", "unique_id_r", "decision"])
        writer.writeheader()
        writer.writerow({**pair, "decision": "must_link"})
    assert main(["review", "import", "--lake", lake.root, str(tmp_path / "decisions.csv")]) == 0
    summary = run(lake)
    [merge] = query(lake, f"SELECT person_id, other_person_id FROM person_id_history "
                          f"WHERE run_id = '{summary.run_id}' AND event = 'merged'").to_pylist()
    again = write_index(lake, table.name, resource=dynamodb)
    assert 0 < again["written"] < first["written"] / 20 and again["deleted"] >= 1
    assert table.get_item(Key={"pk": f"P#{merge['other_person_id']}"}).get("Item") is None
    assert table.get_item(Key={"pk": f"M#{merge['other_person_id']}"})["Item"]["to"] == merge["person_id"]
    index = DynamoIndex(table.name, lake, resource=dynamodb)
    assert index.run_id == summary.run_id and index.survivor(merge["other_person_id"]) == merge["person_id"]


SEARCH_WITHOUT_NUMPY = """
import importlib.abc, json, os, sys
class Absent(importlib.abc.MetaPathFinder):  # neither is in the search Lambda's bundle
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("numpy", "pandas"):
            raise ModuleNotFoundError(f"No module named {name!r}")
sys.meta_path.insert(0, Absent())
sys.path.insert(0, os.environ["TRIMMED"])
import pyarrow
assert pyarrow.__file__.startswith(os.environ["TRIMMED"]), pyarrow.__file__
from veracity.lake import Lake
from veracity.search.auth import User
from veracity.search.dynamo import DynamoIndex
from veracity.search.query import parse_search
from veracity.search.service import SearchService
service = SearchService(DynamoIndex(os.environ["SEARCH_TABLE"], Lake.open(os.environ["VERACITY_LAKE"])))
request = json.loads(sys.stdin.read())
user = User("dc-1", ("admin",))
print(json.dumps({"searches": [service.search(parse_search(q), user) for q in request["queries"]],
                  "person": service.person(request["person"], user)}, default=str))
"""


def test_the_search_runs_without_numpy_or_pandas_on_pyarrow_trimmed_as_the_lambda_bundle_is(indexes, resolved_lake,
                                                                                          tmp_path):
    """The search Lambda's bundle has no numpy or pandas and a trimmed pyarrow (its
    size limit): searches and a person page over DynamoDB come out as they do here."""
    import json
    import os
    import shutil
    import subprocess
    import sys
    from pathlib import Path

    import pyarrow

    from stacks.ingest import remove_matching
    from stacks.search import BUNDLE_EXCLUDES

    _, dynamo, _, table = indexes
    lake, _ = resolved_lake
    trimmed = tmp_path / "bundle"
    shutil.copytree(Path(pyarrow.__file__).parent, trimmed / "pyarrow")
    remove_matching(trimmed, BUNDLE_EXCLUDES)
    assert not list((trimmed / "pyarrow").glob("libarrow_python.so.*.*.*"))
    queries = [search.params for search in known_searches(lake, 10, seed=11)]
    person = dynamo.records.column("person_id")[0].as_py()
    result = subprocess.run(
        [sys.executable, "-c", SEARCH_WITHOUT_NUMPY], input=json.dumps({"queries": queries, "person": person}),
        capture_output=True, text=True, timeout=600,
        env={**os.environ, "TRIMMED": str(trimmed), "SEARCH_TABLE": table.name, "VERACITY_LAKE": lake.root},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    service = SearchService(dynamo)
    expected = {"searches": [service.search(parse_search(q), ADMIN) for q in queries], "person": service.person(person, ADMIN)}
    assert json.loads(result.stdout) == json.loads(json.dumps(expected, default=str))
    assert any(found for found in expected["searches"])
