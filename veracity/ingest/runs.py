"""Starting the pipeline run for a batch: one Step Functions execution per batch.

The execution is named after the batch, and Step Functions refuses a second
execution of one name, so two handlers that both find a batch complete (its
manifest and its extract landing together) start one run between them.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Protocol

import boto3

from veracity.batches import Batch

MAX_NAME = 80  # Step Functions' limit on an execution name


class RunStarter(Protocol):
    def start(self, batch: Batch) -> str:
        """Start the run for a batch (once, however often called); its id."""


def execution_name(batch: Batch) -> str:
    """A valid execution name unique to the batch: readable part plus a digest of the key."""
    digest = hashlib.sha256(batch.key.encode()).hexdigest()[:12]
    readable = re.sub(r"[^A-Za-z0-9_-]", "-", f"{batch.source}--{batch.batch_id}")
    return f"{readable[: MAX_NAME - len(digest) - 1]}-{digest}"


def run_input(batch: Batch) -> dict:
    """The state machine's input for a delivered batch (see stacks/processing.py)."""
    return {"source": batch.source, "batch_id": batch.batch_id, "trigger": "delivery"}


class StepFunctionsRuns:
    def __init__(self, state_machine_arn: str, client=None):
        self.state_machine_arn = state_machine_arn
        self.client = client or boto3.client("stepfunctions")

    def start(self, batch: Batch) -> str:
        name = execution_name(batch)
        try:
            return self.client.start_execution(
                stateMachineArn=self.state_machine_arn, name=name, input=json.dumps(run_input(batch), sort_keys=True)
            )["executionArn"]
        except self.client.exceptions.ExecutionAlreadyExists:
            # Started already (by another handler, or before a retry): that run is this batch's run.
            return self.state_machine_arn.replace(":stateMachine:", ":execution:") + f":{name}"
