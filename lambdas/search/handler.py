"""Search Lambda: API Gateway (REST) requests for person search, answered by the
resolver ``veracity serve`` also uses (``veracity.search.api``).

API Gateway's Cognito authorizer admits only signed-in users; the resolver verifies
the same token again against the user pool's JWKS (defence in depth: it trusts no
header it has not checked) and audits every request to the Object Lock bucket.

Configured by the environment: VERACITY_LAKE (for the trained model), SEARCH_TABLE,
AUDIT_LAKE (s3://audit-bucket), USER_POOL_ID and USER_POOL_CLIENT_PARAMETER (the SSM
parameter naming the page's client, whose tokens it accepts).
"""

from __future__ import annotations

import os
import threading
import time

import boto3
from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.logging import correlation_paths

from veracity.lake import Lake
from veracity.search.api import create_app
from veracity.search.audit import AuditLog
from veracity.search.auth import Verifier
from veracity.search.dynamo import DynamoIndex
from veracity.search.service import SearchService

logger = Logger()
tracer = Tracer()
REFRESH_SECONDS = 60  # how often a warm Lambda asks whether a new snapshot was published
_lock = threading.Lock()
_service: SearchService | None = None
_checked = 0.0


def service() -> SearchService:
    """The search service over the serving index: made once per execution environment,
    and again when a newer snapshot (perhaps with a new model) has been published."""
    global _service, _checked
    with _lock:
        now = time.monotonic()
        if _service is not None and now - _checked > REFRESH_SECONDS:
            _checked = now
            if _service.index.published_run_id() != _service.index.run_id:
                _service = None
        if _service is None:
            _service = SearchService(DynamoIndex(os.environ["SEARCH_TABLE"], Lake.open(os.environ["VERACITY_LAKE"])))
            _checked = now
        return _service


_client_id = boto3.client("ssm").get_parameter(Name=os.environ["USER_POOL_CLIENT_PARAMETER"])["Parameter"]["Value"]
app = create_app(
    service,
    Verifier.for_cognito(os.environ["AWS_REGION"], os.environ["USER_POOL_ID"], _client_id),
    AuditLog(Lake.open(os.environ["AUDIT_LAKE"])),
)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
@tracer.capture_lambda_handler
def lambda_handler(event: dict, context) -> dict:
    return app.resolve(event, context)
