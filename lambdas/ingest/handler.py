"""Ingest Lambda: S3 "Object Created" events for the landing zone, by way of
EventBridge and SQS, each handed to the ingest service (``veracity.ingest.delivery``).

Powertools does the Lambda work: a structured Logger with each event's id as the
correlation id, Tracer, Metrics (``Deliveries`` by outcome, ``BatchesRejected`` by
reason), the SQS batch processor (a message that fails is reported alone and
retried, then dead-lettered), and idempotency in DynamoDB keyed on bucket, key and
etag, so a redelivered event does nothing twice.

Configured by the environment: VERACITY_LAKE, LEDGER_TABLE, IDEMPOTENCY_TABLE,
STATE_MACHINE_ARN and optionally VERACITY_SOURCES (the source configs' directory).
"""

from __future__ import annotations

import os
from functools import cache

from aws_lambda_powertools import Logger, Metrics, Tracer, single_metric
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)
from aws_lambda_powertools.utilities.data_classes import S3EventBridgeNotificationEvent
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)

from veracity.ingest.delivery import Delivery, IngestService, reason_code
from veracity.ingest.ledger import IngestLedger
from veracity.ingest.runs import StepFunctionsRuns
from veracity.lake import Lake
from veracity.sources import load_sources

IDEMPOTENCY_DAYS = 30  # longer than any redelivery; after it the ledger still refuses a second run

logger = Logger()
tracer = Tracer()
metrics = Metrics()
processor = BatchProcessor(event_type=EventType.SQS)
idempotency = IdempotencyConfig(event_key_jmespath="[bucket, key, etag]",
                                expires_after_seconds=IDEMPOTENCY_DAYS * 24 * 3600)
persistence = DynamoDBPersistenceLayer(table_name=os.environ["IDEMPOTENCY_TABLE"])


@cache
def service() -> IngestService:
    return IngestService(
        Lake.open(os.environ["VERACITY_LAKE"]), IngestLedger(os.environ["LEDGER_TABLE"]),
        StepFunctionsRuns(os.environ["STATE_MACHINE_ARN"]), load_sources(os.environ.get("VERACITY_SOURCES")),
    )


@tracer.capture_method
@idempotent_function(data_keyword_argument="delivery", persistence_store=persistence, config=idempotency)
def deliver(delivery: dict) -> dict:
    return service().deliver(Delivery(**delivery)).as_dict()


def record_handler(record: SQSRecord) -> dict:
    event = S3EventBridgeNotificationEvent(record.json_body)
    logger.set_correlation_id(event.get_id)
    obj = event.detail.object
    delivery = {"bucket": event.detail.bucket.name, "key": obj.key, "etag": obj.etag, "size": obj.size}
    outcome = deliver(delivery=delivery)
    logger.info("delivery", extra={"delivery": delivery, "outcome": outcome})
    metrics.add_metric(name=f"Deliveries{outcome['status'].title()}", unit=MetricUnit.Count, value=1)
    if outcome["status"] == "rejected":
        with single_metric(name="BatchesRejected", unit=MetricUnit.Count, value=1,
                           namespace=metrics.namespace) as metric:
            metric.add_dimension(name="reason", value=reason_code(outcome["reason"]))
    return outcome


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict, context) -> dict:
    idempotency.register_lambda_context(context)
    return process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)
