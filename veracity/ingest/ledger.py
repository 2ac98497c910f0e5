"""The ingest ledger: one DynamoDB item per delivered batch, with its state.

    waiting      a file it names (or its manifest) has not landed yet
    rejected     checked and turned away: ``reason`` says why, the objects are in
                 the quarantine bucket under rejected/
    ready        checked and sound, its run not started yet (``last_error`` says why)
    run_started  its pipeline run started (``run``): the state never goes back
    published    the run that took it in has published (locally ``run_id`` names the
                 snapshot; on AWS the state machine's last step records ``finished_run``)
    run_failed   on AWS, its run failed (``last_error``); an operator redrives the execution

Every landed file is added to ``files``. The ledger is written with conditions, so
concurrent handlers cannot move a started batch back or start it twice.
"""

from __future__ import annotations

from datetime import UTC, datetime

import boto3
from botocore.exceptions import ClientError

from veracity.batches import Batch

LEDGER_KEY = "batch"  # the table's partition key: "<source>/<batch_id>"
STARTED = ("run_started", "published", "run_failed")  # a batch in these states is never started again


def _now() -> str:
    return datetime.now(UTC).isoformat()


def _conditional_failure(exc: ClientError) -> bool:
    return exc.response["Error"]["Code"] == "ConditionalCheckFailedException"


class IngestLedger:
    def __init__(self, table_name: str, resource=None):
        self.table = (resource or boto3.resource("dynamodb")).Table(table_name)

    def get(self, batch: Batch) -> dict | None:
        return self.table.get_item(Key={LEDGER_KEY: batch.key}, ConsistentRead=True).get("Item")

    def entries(self) -> list[dict]:
        items, kwargs = [], {"ConsistentRead": True}
        while True:
            page = self.table.scan(**kwargs)
            items += page["Items"]
            if "LastEvaluatedKey" not in page:
                return sorted(items, key=lambda item: item[LEDGER_KEY])
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def record(self, batch: Batch, state: str, file: str, reason: str | None = None,
               extracted_at: datetime | None = None) -> bool:
        """Set a batch's state as a file lands; False (the file still noted) when its
        run had started already, which no later file may undo."""
        values = {":state": state, ":now": _now(), ":source": batch.source, ":batch_id": batch.batch_id,
                  ":files": {file}, **{f":started{i}": state for i, state in enumerate(STARTED)}}
        sets = ["#state = :state", "updated_at = :now", "#source = :source", "batch_id = :batch_id"]
        removes = []
        for name, value in (("reason", reason), ("extracted_at", extracted_at.isoformat() if extracted_at else None)):
            if value is None:
                removes.append(name)
            else:
                sets.append(f"{name} = :{name}")
                values[f":{name}"] = value
        expression = "SET " + ", ".join(sets) + " ADD files :files" + (" REMOVE " + ", ".join(removes) if removes else "")
        try:
            self.table.update_item(
                Key={LEDGER_KEY: batch.key}, UpdateExpression=expression,
                ConditionExpression="attribute_not_exists(#state) OR NOT #state IN ("
                                    + ", ".join(f":started{i}" for i in range(len(STARTED))) + ")",
                ExpressionAttributeNames={"#state": "state", "#source": "source"}, ExpressionAttributeValues=values,
            )
            return True
        except ClientError as exc:
            if not _conditional_failure(exc):
                raise
            self.note_file(batch, file)
            return False

    def note_file(self, batch: Batch, file: str) -> None:
        self.table.update_item(Key={LEDGER_KEY: batch.key}, UpdateExpression="SET updated_at = :now ADD files :files",
                               ExpressionAttributeValues={":now": _now(), ":files": {file}})

    def note_error(self, batch: Batch, error: str) -> None:
        """A failed attempt to start the batch's run: kept, and counted."""
        self.table.update_item(Key={LEDGER_KEY: batch.key},
                               UpdateExpression="SET last_error = :error, updated_at = :now ADD start_failures :one",
                               ExpressionAttributeValues={":error": error[:1000], ":now": _now(), ":one": 1})

    def mark_started(self, batch: Batch, run: str) -> bool:
        """Record the batch's run; False when a run was recorded already."""
        try:
            self.table.update_item(
                Key={LEDGER_KEY: batch.key},
                UpdateExpression="SET #state = :state, #run = :run, started_at = :now, updated_at = :now REMOVE last_error",
                ConditionExpression="attribute_not_exists(#run)",
                ExpressionAttributeNames={"#state": "state", "#run": "run"},
                ExpressionAttributeValues={":state": "run_started", ":run": run, ":now": _now()},
            )
            return True
        except ClientError as exc:
            if not _conditional_failure(exc):
                raise
            return False

    def mark_published(self, batch: Batch, run_id: str) -> None:
        self.table.update_item(
            Key={LEDGER_KEY: batch.key}, UpdateExpression="SET #state = :state, run_id = :run_id, updated_at = :now",
            ExpressionAttributeNames={"#state": "state"},
            ExpressionAttributeValues={":state": "published", ":run_id": run_id, ":now": _now()},
        )
