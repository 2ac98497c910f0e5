"""Event-driven ingestion on moto: uploads to S3 raise EventBridge events that reach an
SQS queue; the poller hands them to the ingest Lambda's handler, which checks each
batch, records it in the DynamoDB ledger, starts its run in Step Functions or
quarantines it with a reason."""

from __future__ import annotations

import hashlib
import json
import re

import boto3
import pytest

from veracity.batches import MAX_EXTRACT_BYTES, Batch
from veracity.ingest.delivery import Delivery, IngestService
from veracity.ingest.events import MAX_RECEIVES, landing_event_pattern
from veracity.ingest.ledger import IngestLedger
from veracity.ingest.local import (
    LocalOrchestrator,
    SqsPoller,
    create_state_machine,
    load_handler,
    provision,
)
from veracity.ingest.runs import StepFunctionsRuns, execution_name
from veracity.lake import Lake
from veracity.sources import load_sources
from veracity.synthetic import generate

BATCH = "20261101T060000Z"


@pytest.fixture(scope="module")
def extracts(tmp_path_factory) -> dict[str, dict[str, bytes]]:
    """Each source's delivered files (extract and manifest), from a small synthetic lake."""
    lake = Lake.open(str(tmp_path_factory.mktemp("extracts")), create=True)
    generate(lake, 30, seed=5)
    return {source: {name: lake.read_bytes("landing", source, BATCH, name)
                     for name in lake.list_files("landing", source, BATCH)}
            for source in lake.list_dirs("landing")}


class Flow:
    """One isolated set of ingest resources on the moto server, and the handler on them."""

    def __init__(self, prefix: str, monkeypatch, state_machine: bool = True):
        self.resources = provision(prefix, state_machine=state_machine)
        for key, value in self.resources.handler_environment().items():
            monkeypatch.setenv(key, value)
        self.handler = load_handler({})
        self.poller = SqsPoller(self.resources.queue_url, self.resources.queue_arn, self.handler.lambda_handler)
        self.s3, self.sqs, self.sfn = boto3.client("s3"), boto3.client("sqs"), boto3.client("stepfunctions")
        self.ledger = IngestLedger(self.resources.ledger_table)
        self.bucket = self.resources.bucket

    def upload(self, source: str, name: str, body: bytes, batch: str = BATCH) -> None:
        self.s3.put_object(Bucket=self.bucket, Key=f"landing/{source}/{batch}/{name}", Body=body)

    def deliver(self, files: dict[str, bytes], source: str = "custody", batch: str = BATCH, manifest_last: bool = True):
        names = sorted(files, key=lambda n: (n == "manifest.json") == manifest_last)
        for name in names:
            self.upload(source, name, files[name], batch)

    def entry(self, source: str = "custody", batch: str = BATCH) -> dict:
        return self.ledger.get(Batch(source, batch)) or {}

    def executions(self) -> list[dict]:
        try:
            return self.sfn.list_executions(stateMachineArn=self.resources.state_machine_arn)["executions"]
        except self.sfn.exceptions.StateMachineDoesNotExist:
            return []

    def rejected(self, source: str = "custody", batch: str = BATCH) -> dict[str, bytes]:
        listed = self.s3.list_objects_v2(Bucket=self.bucket, Prefix=f"rejected/{source}/{batch}/").get("Contents", [])
        return {o["Key"].rsplit("/", 1)[1]: self.s3.get_object(Bucket=self.bucket, Key=o["Key"])["Body"].read()
                for o in listed if not o["Key"].endswith("/")}

    def dead_letters(self) -> list[dict]:
        return self.sqs.receive_message(QueueUrl=self.resources.dead_letter_url, MaxNumberOfMessages=10,
                                        AttributeNames=["All"]).get("Messages", [])


@pytest.fixture()
def flow(moto_endpoint, request, monkeypatch) -> Flow:
    return Flow(_prefix(request), monkeypatch)


def _prefix(request) -> str:
    """Resource names of one test's own: its name, shortened, and a digest of it."""
    slug = re.sub(r"[^a-z0-9]+", "-", request.node.name.lower())[:32].strip("-")
    return f"ing-{slug}-{hashlib.sha256(request.node.name.encode()).hexdigest()[:8]}"


def _manifest(files: dict[str, bytes], **changes) -> bytes:
    manifest = json.loads(files["manifest.json"])
    manifest["files"][0].update(changes)
    return json.dumps(manifest).encode()


def _metrics(capsys) -> list[dict]:
    """The CloudWatch embedded-metric documents the handler printed."""
    return [doc for line in capsys.readouterr().out.splitlines() if line.startswith("{")
            for doc in [json.loads(line)] if "_aws" in doc]


def test_a_complete_batch_is_recorded_and_starts_one_run(flow, extracts):
    flow.deliver(extracts["custody"])
    result = flow.poller.drain()
    assert result.failed == 0
    entry = flow.entry()
    assert entry["state"] == "run_started" and entry["files"] == set(extracts["custody"])
    assert entry["extracted_at"].startswith("2026-11-01")
    [execution] = flow.executions()
    assert entry["run"] == execution["executionArn"] and execution["name"] == execution_name(Batch("custody", BATCH))
    run_input = json.loads(flow.sfn.describe_execution(executionArn=execution["executionArn"])["input"])
    assert run_input == {"source": "custody", "batch_id": BATCH, "trigger": "delivery"}
    assert flow.rejected() == {}


def test_duplicate_delivery_starts_no_second_run(flow, extracts):
    flow.deliver(extracts["custody"])
    flow.poller.drain()
    # The same events again (SQS delivers at least once), then the same objects uploaded again.
    for message in _sent_events(flow, extracts["custody"]):
        flow.sqs.send_message(QueueUrl=flow.resources.queue_url, MessageBody=message)
    flow.deliver(extracts["custody"])
    # And a changed extract under the batch's key after its run started.
    flow.upload("custody", next(n for n in extracts["custody"] if n != "manifest.json"), b"changed")
    assert flow.poller.drain().failed == 0
    assert len(flow.executions()) == 1
    entry = flow.entry()
    assert entry["state"] == "run_started" and entry["run"] == flow.executions()[0]["executionArn"]
    assert flow.rejected() == {}


def _sent_events(flow: Flow, files: dict[str, bytes]) -> list[str]:
    """S3 events to EventBridge, as AWS shapes them, for the batch's files."""
    return [json.dumps(_s3_event(flow.bucket, f"landing/custody/{BATCH}/{name}", body)) for name, body in files.items()]


def _s3_event(bucket: str, key: str, body: bytes = b"x") -> dict:
    """An "Object Created" event as S3 sends it to EventBridge (the AWS documentation's example)."""
    return {
        "version": "0", "id": "17793124-05d4-b198-2fde-7ededc63b103", "detail-type": "Object Created",
        "source": "aws.s3", "account": "123456789012", "time": "2021-11-12T00:00:00Z", "region": "eu-west-2",
        "resources": [f"arn:aws:s3:::{bucket}"],
        "detail": {"version": "0", "bucket": {"name": bucket},
                   "object": {"key": key, "size": len(body), "etag": hashlib.md5(body).hexdigest(),
                              "version-id": "IYV3p45BT0ac8hjHg1houSdS1a.Mro8e", "sequencer": "617f08299329d189"},
                   "request-id": "N4N7GDK58NMKJ12R", "requester": "123456789012",
                   "source-ip-address": "1.2.3.4", "reason": "PutObject"},
    }


def test_an_extract_without_its_manifest_waits_and_starts_nothing(flow, extracts):
    extract = {n: b for n, b in extracts["custody"].items() if n != "manifest.json"}
    flow.deliver(extract)
    flow.poller.drain()
    entry = flow.entry()
    assert entry["state"] == "waiting" and entry["reason"] == "missing_manifest" and entry["files"] == set(extract)
    assert flow.executions() == [] and flow.rejected() == {}


@pytest.mark.parametrize("manifest_last", [True, False], ids=["manifest-after-extract", "extract-after-manifest"])
def test_whichever_file_lands_last_completes_the_batch_and_starts_one_run(flow, extracts, manifest_last):
    files = extracts["custody"]
    first, last = sorted(files, key=lambda n: (n == "manifest.json") == manifest_last)
    flow.upload("custody", first, files[first])
    flow.poller.drain()
    waiting = flow.entry()
    assert waiting["state"] == "waiting" and waiting["reason"].startswith("missing_")
    assert flow.executions() == []
    flow.upload("custody", last, files[last])
    flow.poller.drain()
    assert flow.entry()["state"] == "run_started" and len(flow.executions()) == 1


def test_manifest_and_extract_handled_in_one_batch_of_messages_start_one_run(flow, extracts):
    flow.deliver(extracts["custody"])
    assert flow.poller.poll_once().received == 2  # both complete the batch; one run between them
    assert len(flow.executions()) == 1 and flow.entry()["state"] == "run_started"


def _assert_quarantined(flow: Flow, capsys, files: dict[str, bytes], code: str, source: str = "custody",
                        batch: str = BATCH) -> dict:
    entry = flow.entry(source, batch)
    assert entry["state"] == "rejected" and entry["reason"].split(":")[0] == code
    kept = flow.rejected(source, batch)
    reason = json.loads(kept.pop("reason.json"))
    assert kept == files  # every landed object copied as it came
    assert reason["reason_code"] == code and reason["batch"] == f"{source}/{batch}"
    assert reason["files"] == sorted(files)
    assert flow.executions() == []
    rejections = [doc for doc in _metrics(capsys) if "BatchesRejected" in doc]
    assert rejections and all(doc["reason"] == code and doc["BatchesRejected"] == [1.0] for doc in rejections)
    assert rejections[0]["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "Veracity"
    return reason


def test_a_checksum_mismatch_is_quarantined_with_its_reason(flow, extracts, capsys):
    files = dict(extracts["custody"])
    name = next(n for n in files if n != "manifest.json")
    files[name] = files[name] + b"CUS999,X,Y,,,,,,,,,\n"
    flow.deliver(files)
    assert flow.poller.drain().failed == 0
    _assert_quarantined(flow, capsys, files, "checksum_mismatch")
    # Landing keeps its objects: nothing is lost.
    assert flow.s3.get_object(Bucket=flow.bucket, Key=f"landing/custody/{BATCH}/{name}")["Body"].read() == files[name]


def test_a_row_count_that_differs_from_the_manifest_is_quarantined(flow, extracts, capsys):
    files = dict(extracts["custody"])
    rows = json.loads(files["manifest.json"])["files"][0]["rows"]
    files["manifest.json"] = _manifest(files, rows=rows + 1)
    flow.deliver(files)
    flow.poller.drain()
    reason = _assert_quarantined(flow, capsys, files, "row_count_mismatch")
    assert f"lists {rows + 1} rows, the extract has {rows}" in reason["reason"]


def test_an_unknown_source_is_quarantined(flow, extracts, capsys):
    files = {"manifest.json": _manifest(extracts["custody"]).replace(b'"custody"', b'"mystery"'),
             "export.csv": b"ID,NAME\n1,X\n"}
    flow.deliver(files, source="mystery")
    flow.poller.drain()
    _assert_quarantined(flow, capsys, files, "unknown_source", source="mystery")


def test_a_zero_byte_extract_is_quarantined(flow, extracts, capsys):
    files = dict(extracts["custody"])
    name = next(n for n in files if n != "manifest.json")
    files[name] = b""
    files["manifest.json"] = _manifest(files, sha256=hashlib.sha256(b"").hexdigest())
    flow.deliver(files)
    flow.poller.drain()
    _assert_quarantined(flow, capsys, files, "empty_extract")


def test_a_zero_byte_manifest_is_quarantined(flow, extracts, capsys):
    files = {**extracts["custody"], "manifest.json": b""}
    flow.deliver(files)
    flow.poller.drain()
    _assert_quarantined(flow, capsys, files, "bad_manifest")


def test_an_unsupported_schema_version_is_quarantined(flow, extracts, capsys):
    manifest = json.loads(extracts["custody"]["manifest.json"]) | {"schema_version": 99}
    files = {**extracts["custody"], "manifest.json": json.dumps(manifest).encode()}
    flow.deliver(files)
    flow.poller.drain()
    _assert_quarantined(flow, capsys, files, "unsupported_schema_version")


def test_one_bad_message_in_a_batch_fails_alone_is_retried_then_dead_lettered(flow, extracts):
    flow.deliver(extracts["custody"])
    flow.deliver(extracts["crime"], source="crime")
    flow.sqs.send_message(QueueUrl=flow.resources.queue_url, MessageBody="not an S3 event")
    first = flow.poller.poll_once()
    assert (first.received, first.failed) == (5, 1)  # four uploads and the bad message, in one batch
    assert flow.entry()["state"] == flow.entry("crime")["state"] == "run_started"
    flow.poller.drain()
    [dead] = flow.dead_letters()
    assert dead["Body"] == "not an S3 event" and int(dead["Attributes"]["ApproximateReceiveCount"]) >= MAX_RECEIVES
    assert len(flow.executions()) == 2
    assert {e["batch"] for e in flow.ledger.entries()} == {f"custody/{BATCH}", f"crime/{BATCH}"}
    assert flow.rejected() == {} and flow.rejected("crime") == {}


def test_a_run_that_fails_to_start_is_retried_not_lost(moto_endpoint, request, monkeypatch, extracts):
    flow = Flow(_prefix(request), monkeypatch, state_machine=False)  # Step Functions refuses the start
    flow.deliver(extracts["custody"])
    first = flow.poller.poll_once()
    assert first.failed == 2  # both events found the batch complete; neither could start it
    entry = flow.entry()
    assert entry["state"] == "ready" and "StateMachineDoesNotExist" in entry["last_error"]
    assert entry["start_failures"] == 2
    create_state_machine(flow.resources.state_machine_arn.rsplit(":", 1)[1])  # the service recovers
    assert flow.poller.drain().failed == 0
    entry = flow.entry()
    assert entry["state"] == "run_started" and "last_error" not in entry
    assert len(flow.executions()) == 1 and flow.dead_letters() == [] and flow.rejected() == {}


def test_a_run_that_never_starts_ends_in_the_dead_letter_queue_and_the_ledger(moto_endpoint, request, monkeypatch,
                                                                             extracts):
    flow = Flow(_prefix(request), monkeypatch, state_machine=False)
    flow.deliver(extracts["custody"])
    flow.poller.drain()
    assert len(flow.dead_letters()) == 2  # both events kept, to be redriven
    entry = flow.entry()
    assert entry["state"] == "ready" and entry["start_failures"] == 2 * MAX_RECEIVES
    assert flow.rejected() == {}


def test_keys_outside_a_batch_are_ignored(flow):
    flow.s3.put_object(Bucket=flow.bucket, Key="landing/readme.txt", Body=b"x")
    flow.s3.put_object(Bucket=flow.bucket, Key="landing/custody/", Body=b"")
    flow.s3.put_object(Bucket=flow.bucket, Key="curated/CURRENT.json", Body=b"{}")  # no event: not landing/
    assert flow.poller.drain().failed == 0
    assert flow.ledger.entries() == [] and flow.executions() == []


def test_unsafe_names_in_a_landing_key_are_rejected(flow, capsys):
    flow.s3.put_object(Bucket=flow.bucket, Key="landing/custody/b 1/x.csv", Body=b"x")
    flow.poller.drain()
    _assert_quarantined(flow, capsys, {"x.csv": b"x"}, "bad_name", batch="b 1")


def test_the_landing_rule_matches_s3_events_for_landing_only(flow):
    """The pattern the stack deploys, on moto's EventBridge: a real-shaped S3 event for a
    landing key reaches the queue, one for any other key or bucket does not."""
    events = boto3.client("events")
    for key in (f"landing/custody/{BATCH}/x.csv", "curated/x.parquet"):
        events.put_events(Entries=[{"Source": "aws.s3", "DetailType": "Object Created",
                                    "Detail": json.dumps(_s3_event(flow.bucket, key)["detail"])}])
    other = _s3_event("another-bucket", f"landing/custody/{BATCH}/x.csv")
    events.put_events(Entries=[{"Source": "aws.s3", "DetailType": "Object Created", "Detail": json.dumps(other["detail"])}])
    received = flow.sqs.receive_message(QueueUrl=flow.resources.queue_url, MaxNumberOfMessages=10)["Messages"]
    assert [json.loads(m["Body"])["detail"]["object"]["key"] for m in received] == [f"landing/custody/{BATCH}/x.csv"]
    rule = events.describe_rule(Name=f"{flow.bucket}-landing-uploads")
    assert json.loads(rule["EventPattern"]) == landing_event_pattern(flow.bucket)


def test_the_local_orchestrator_runs_the_started_batches_once(flow, extracts, tmp_path):
    lake = Lake.open(flow.resources.lake_uri)
    for source in ("custody", "crime", "intelligence"):
        flow.deliver(extracts[source], source=source)
    flow.poller.drain()
    orchestrator = LocalOrchestrator(flow.resources, lake)
    assert [b.source for b in orchestrator.waiting_batches()] == ["crime", "custody", "intelligence"]
    summary = orchestrator.run_waiting()
    assert summary is not None and summary.persons > 0
    assert set(summary.per_source) == {"crime", "custody", "intelligence"}
    assert lake.read_json("curated", "CURRENT.json")["run_id"] == summary.run_id
    assert {e["state"] for e in flow.ledger.entries()} == {"published"}
    assert {e["run_id"] for e in flow.ledger.entries()} == {summary.run_id}
    assert orchestrator.run_waiting() is None  # nothing started since


def test_the_service_ignores_objects_outside_its_lake(moto_endpoint, s3_bucket):
    service = IngestService(Lake.open(f"s3://{s3_bucket}/force"), ledger=None, runs=None, sources=load_sources())
    for key in ("other/landing/custody/b/x.csv", "force/curated/x", "force/landing/custody/b/deeper/x.csv"):
        assert service.deliver(Delivery(s3_bucket, key)).status == "ignored"
    assert service.deliver(Delivery("other-bucket", "force/landing/custody/b/x.csv")).status == "ignored"


def test_an_extract_over_the_size_limit_is_named_not_copied(flow, extracts, monkeypatch, capsys):
    monkeypatch.setattr("veracity.batches.MAX_EXTRACT_BYTES", 2000)
    flow.deliver(extracts["custody"])
    flow.poller.drain()
    entry = flow.entry()
    assert entry["state"] == "rejected" and entry["reason"].startswith("extract_too_large")
    reason = json.loads(flow.rejected()["reason.json"])
    assert reason["files"] == ["manifest.json"] and len(reason["left_in_landing"]) == 1
    assert MAX_EXTRACT_BYTES == 5 << 30


def test_execution_names_are_valid_and_distinct_per_batch():
    names = {execution_name(Batch(s, b)) for s in ("custody", "crime") for b in ("b1", "b.1", "b/1", "x" * 200)}
    assert len(names) == 8
    assert all(len(n) <= 80 and re.fullmatch(r"[A-Za-z0-9_-]+", n) for n in names)


def test_starting_a_batch_twice_returns_the_first_run(moto_endpoint):
    arn = create_state_machine("twice-pipeline")
    runs = StepFunctionsRuns(arn)
    assert runs.start(Batch("custody", "b1")) == runs.start(Batch("custody", "b1"))
    assert len(boto3.client("stepfunctions").list_executions(stateMachineArn=arn)["executions"]) == 1


def _with_manifest(delivered: dict[str, bytes], **manifest_changes) -> dict[str, bytes]:
    manifest = json.loads(delivered["manifest.json"]) | manifest_changes
    return {**delivered, "manifest.json": json.dumps(manifest).encode()}


def _extract_name(files: dict[str, bytes]) -> str:
    return next(n for n in files if n != "manifest.json")


BAD_DELIVERIES = {
    "manifest_source_mismatch": lambda files: _with_manifest(files, source="crime"),
    "manifest_must_list_one_extract": lambda files: _with_manifest(
        files, files=json.loads(files["manifest.json"])["files"] * 2),
    "bad_manifest": lambda files: _with_manifest(files, files="everything"),
    "unreadable_extract": lambda files: _with_manifest(
        {**files, _extract_name(files): b"A,B\n1,2\n"},
        files=[{"name": _extract_name(files), "kind": "extract", "rows": 1,
                "sha256": hashlib.sha256(b"A,B\n1,2\n").hexdigest()}]),
    "deletions_checksum_mismatch": lambda files: _with_manifest(
        {**files, "deletions.csv": b"record_id\nX1\n"},
        files=[*json.loads(files["manifest.json"])["files"], {"name": "deletions.csv", "kind": "deletions", "sha256": "0" * 64}]),
}


@pytest.mark.parametrize("code", sorted(BAD_DELIVERIES))
def test_a_batch_its_manifest_does_not_describe_is_quarantined(flow, extracts, capsys, code):
    files = BAD_DELIVERIES[code](dict(extracts["custody"]))
    flow.deliver(files)
    assert flow.poller.drain().failed == 0
    _assert_quarantined(flow, capsys, files, code)


def test_a_manifest_over_the_size_limit_is_quarantined(flow, extracts, capsys, monkeypatch):
    monkeypatch.setattr("veracity.batches.MAX_MANIFEST_BYTES", 10)
    flow.deliver(extracts["custody"])
    flow.poller.drain()
    _assert_quarantined(flow, capsys, extracts["custody"], "manifest_too_large")


def test_a_batch_waits_for_the_deletions_file_its_manifest_lists(flow, extracts):
    deletions = b"record_id\nX1\n"
    files = _with_manifest(dict(extracts["custody"]), files=[
        *json.loads(extracts["custody"]["manifest.json"])["files"],
        {"name": "deletions.csv", "kind": "deletions", "sha256": hashlib.sha256(deletions).hexdigest()}])
    flow.deliver(files)
    flow.poller.drain()
    entry = flow.entry()
    assert entry["state"] == "waiting" and entry["reason"] == "missing_deletions: deletions.csv"
    assert flow.executions() == [] and flow.rejected() == {}
    flow.upload("custody", "deletions.csv", deletions)
    flow.poller.drain()
    assert flow.entry()["state"] == "run_started" and len(flow.executions()) == 1
