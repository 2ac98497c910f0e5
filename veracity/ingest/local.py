"""The event-driven flow on one machine, with moto standing in for AWS.

``LocalAws`` starts an in-process moto server and points the AWS environment at it.
``provision`` creates what the CDK stacks create for ingestion: the lake's bucket
sending its events to EventBridge, the landing rule (the same pattern as the stack)
feeding an SQS queue with a dead-letter queue, the ledger and idempotency tables and
a state machine. ``SqsPoller`` does what Lambda's SQS event source does: receives
messages, hands them to the ingest handler as an SQS event, deletes those it
processed and leaves the failures to be retried. ``LocalOrchestrator`` does what the
state machine does: for the runs the handler started, scrub their batches, then
match and publish (one pipeline run for all the runs waiting).
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import socket
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import boto3

from veracity.batches import Batch
from veracity.errors import VeracityError
from veracity.ingest.events import MAX_RECEIVES, landing_event_pattern
from veracity.ingest.ledger import LEDGER_KEY, IngestLedger
from veracity.lake import Lake

REGION = "eu-west-2"
HANDLER = Path(__file__).resolve().parents[2] / "lambdas" / "ingest" / "handler.py"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LocalAws:
    """An in-process moto server; inside the ``with`` block the AWS environment
    (boto3, and pyarrow's S3 filesystem) talks to it."""

    def __init__(self) -> None:
        self.endpoint = ""
        self._server = None
        self._saved: dict[str, str | None] = {}

    def __enter__(self) -> LocalAws:
        from moto.server import ThreadedMotoServer

        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no access log per request
        port = _free_port()
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
        self._server.start()
        self.endpoint = f"http://127.0.0.1:{port}"
        env = {"AWS_ENDPOINT_URL": self.endpoint, "AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local",
               "AWS_DEFAULT_REGION": REGION, "AWS_REGION": REGION}
        self._saved = {k: os.environ.get(k) for k in env}
        os.environ.update(env)
        return self

    def __exit__(self, *_exc) -> None:
        self._server.stop()
        for k, v in self._saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@dataclass
class IngestResources:
    """The names of what ``provision`` made, and the handler's environment."""

    bucket: str
    queue_url: str
    queue_arn: str
    dead_letter_url: str
    ledger_table: str
    idempotency_table: str
    state_machine_arn: str

    @property
    def lake_uri(self) -> str:
        return f"s3://{self.bucket}"

    def handler_environment(self, sources_dir: str | None = None, quiet: bool = False) -> dict[str, str]:
        """The Lambda's environment as the stack sets it (no X-Ray here); ``quiet`` keeps
        the per-delivery logs and metrics off the terminal."""
        env = {"VERACITY_LAKE": self.lake_uri, "LEDGER_TABLE": self.ledger_table,
               "IDEMPOTENCY_TABLE": self.idempotency_table, "STATE_MACHINE_ARN": self.state_machine_arn,
               "POWERTOOLS_SERVICE_NAME": "veracity-ingest", "POWERTOOLS_METRICS_NAMESPACE": "Veracity",
               "POWERTOOLS_TRACE_DISABLED": "true", "POWERTOOLS_LOG_LEVEL": "WARNING" if quiet else "INFO",
               "POWERTOOLS_METRICS_DISABLED": "true" if quiet else "false"}
        return env | ({"VERACITY_SOURCES": sources_dir} if sources_dir else {})


def provision(prefix: str = "veracity-local", *, state_machine: bool = True) -> IngestResources:
    """Create the ingest resources on the current (moto) endpoint. With ``state_machine``
    False the ARN names a state machine that does not exist yet (a run cannot start)."""
    s3, sqs, events = boto3.client("s3"), boto3.client("sqs"), boto3.client("events")
    dynamodb = boto3.client("dynamodb")
    bucket = prefix
    s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION})
    s3.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration={"EventBridgeConfiguration": {}})

    dead_letter_url = sqs.create_queue(QueueName=f"{prefix}-ingest-dlq")["QueueUrl"]
    dead_letter_arn = _queue_arn(sqs, dead_letter_url)
    queue_url = sqs.create_queue(QueueName=f"{prefix}-ingest", Attributes={
        "RedrivePolicy": json.dumps({"deadLetterTargetArn": dead_letter_arn, "maxReceiveCount": MAX_RECEIVES}),
    })["QueueUrl"]
    queue_arn = _queue_arn(sqs, queue_url)
    rule = f"{prefix}-landing-uploads"
    events.put_rule(Name=rule, EventPattern=json.dumps(landing_event_pattern(bucket)))
    events.put_targets(Rule=rule, Targets=[{"Id": "ingest-queue", "Arn": queue_arn}])

    ledger_table, idempotency_table = f"{prefix}-ingest-ledger", f"{prefix}-ingest-idempotency"
    for table, key in ((ledger_table, LEDGER_KEY), (idempotency_table, "id")):
        dynamodb.create_table(TableName=table, BillingMode="PAY_PER_REQUEST",
                              KeySchema=[{"AttributeName": key, "KeyType": "HASH"}],
                              AttributeDefinitions=[{"AttributeName": key, "AttributeType": "S"}])
    name = f"{prefix}-pipeline"
    arn = f"arn:aws:states:{REGION}:123456789012:stateMachine:{name}"
    if state_machine:
        arn = create_state_machine(name)
    return IngestResources(bucket, queue_url, queue_arn, dead_letter_url, ledger_table, idempotency_table, arn)


def create_state_machine(name: str) -> str:
    """A stand-in state machine: moto records executions, the local orchestrator runs them."""
    definition = {"Comment": "scrub -> match -> publish, run locally by LocalOrchestrator",
                  "StartAt": "Run", "States": {"Run": {"Type": "Pass", "End": True}}}
    return boto3.client("stepfunctions").create_state_machine(
        name=name, definition=json.dumps(definition), roleArn="arn:aws:iam::123456789012:role/veracity-local-pipeline",
    )["stateMachineArn"]


def _queue_arn(sqs, url: str) -> str:
    return sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]


def load_handler(environment: dict[str, str]) -> ModuleType:
    """The ingest Lambda's handler module, loaded afresh with its environment set."""
    if not HANDLER.is_file():
        raise VeracityError(f"the ingest handler is not at {HANDLER}: the local event flow runs from a source checkout")
    os.environ.update(environment)
    spec = importlib.util.spec_from_file_location(f"ingest_handler_{uuid.uuid4().hex}", HANDLER)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@dataclass
class LambdaContext:
    """What Powertools reads from the Lambda context."""

    function_name: str = "veracity-local-ingest"
    memory_limit_in_mb: int = 1024
    invoked_function_arn: str = f"arn:aws:lambda:{REGION}:123456789012:function:veracity-local-ingest"
    aws_request_id: str = ""
    timeout_ms: int = 120_000

    def get_remaining_time_in_millis(self) -> int:
        return self.timeout_ms


@dataclass
class PollResult:
    received: int = 0
    processed: int = 0
    failed: int = 0


def _as_aws_sends(body: str) -> str:
    """moto names the object's etag ``eTag``; S3's events to EventBridge say ``etag``."""
    try:
        event = json.loads(body)
        obj = event["detail"]["object"]
        if "eTag" in obj:
            obj["etag"] = obj.pop("eTag")
            return json.dumps(event)
    except (ValueError, KeyError, TypeError):
        pass  # not an S3 event: the handler reports it as a failure
    return body


class SqsPoller:
    """Lambda's SQS event source, locally: batches of up to ``batch_size`` messages go to
    the handler; processed messages are deleted, failed ones become visible again (and
    after ``MAX_RECEIVES`` receives the queue moves them to its dead-letter queue)."""

    def __init__(self, queue_url: str, queue_arn: str, handler: Callable[[dict, object], dict], batch_size: int = 10):
        self.sqs = boto3.client("sqs")
        self.queue_url, self.queue_arn, self.handler, self.batch_size = queue_url, queue_arn, handler, batch_size

    def poll_once(self) -> PollResult:
        messages = self.sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=self.batch_size,
                                            AttributeNames=["All"], WaitTimeSeconds=0).get("Messages", [])
        if not messages:
            return PollResult()
        event = {"Records": [{
            "messageId": m["MessageId"], "receiptHandle": m["ReceiptHandle"], "body": _as_aws_sends(m["Body"]),
            "attributes": m.get("Attributes", {}), "messageAttributes": {}, "md5OfBody": m["MD5OfBody"],
            "eventSource": "aws:sqs", "eventSourceARN": self.queue_arn, "awsRegion": REGION,
        } for m in messages]}
        try:
            response = self.handler(event, LambdaContext(aws_request_id=str(uuid.uuid4())))
            failed = {f["itemIdentifier"] for f in response.get("batchItemFailures", [])}
        except Exception:  # the invocation failed (as when every message failed): all are retried
            logging.getLogger(__name__).warning("the ingest handler failed a whole batch", exc_info=True)
            failed = {m["MessageId"] for m in messages}
        for m in messages:
            if m["MessageId"] in failed:  # retried at once here; Lambda waits for the visibility timeout
                self.sqs.change_message_visibility(QueueUrl=self.queue_url, ReceiptHandle=m["ReceiptHandle"],
                                                   VisibilityTimeout=0)
            else:
                self.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=m["ReceiptHandle"])
        return PollResult(len(messages), len(messages) - len(failed), len(failed))

    def drain(self, max_polls: int = 10_000) -> PollResult:
        """Poll until the queue is empty (failed messages are retried until dead-lettered)."""
        total = PollResult()
        for _ in range(max_polls):
            result = self.poll_once()
            if not result.received:
                return total
            total.received += result.received
            total.processed += result.processed
            total.failed += result.failed
        raise VeracityError(f"the ingest queue did not drain in {max_polls} polls")


class LocalOrchestrator:
    """The state machine's twin: runs what the handler started, with the local jobs."""

    def __init__(self, resources: IngestResources, lake: Lake, sources_dir: str | None = None,
                 progress: Callable[[str], None] = lambda _m: None):
        self.sfn = boto3.client("stepfunctions")
        self.resources, self.lake, self.sources_dir, self.progress = resources, lake, sources_dir, progress
        self.ledger = IngestLedger(resources.ledger_table)

    def waiting_batches(self) -> list[Batch]:
        """Batches whose run was started and has not run here yet."""
        batches = []
        for page in self.sfn.get_paginator("list_executions").paginate(
                stateMachineArn=self.resources.state_machine_arn, statusFilter="RUNNING"):
            for execution in page["executions"]:
                run_input = json.loads(self.sfn.describe_execution(executionArn=execution["executionArn"])["input"])
                batch = Batch(run_input["source"], run_input["batch_id"])
                if (self.ledger.get(batch) or {}).get("state") == "run_started":
                    batches.append(batch)
        return sorted(batches, key=lambda b: b.key)

    def run_waiting(self, seed: int = 42):
        """One pipeline run (scrub the waiting batches → match → publish); its summary,
        or None when nothing was waiting or nothing changed."""
        from veracity.pipeline import run

        waiting = self.waiting_batches()
        if not waiting:
            return None
        self.progress(f"running the pipeline for {len(waiting)} started batches ...")
        summary = run(self.lake, self.sources_dir, progress=self.progress, seed=seed, batches=waiting)
        current = self.lake.read_json("curated", "CURRENT.json") if self.lake.exists("curated", "CURRENT.json") else {}
        run_id = summary.run_id if summary else current.get("run_id", "")
        for batch in waiting:
            self.ledger.mark_published(batch, run_id)
        return summary
