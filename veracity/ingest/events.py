"""The landing zone's "Object Created" events, declared once for the CDK rule and the
local flow."""

from __future__ import annotations

LANDING_PREFIX = "landing/"
MAX_RECEIVES = 3  # deliveries of one message before it goes to the dead-letter queue


def landing_event_pattern(bucket_name: str) -> dict:
    """EventBridge pattern matching objects created under ``landing/`` in a bucket."""
    return {
        "source": ["aws.s3"],
        "detail-type": ["Object Created"],
        "detail": {"bucket": {"name": [bucket_name]}, "object": {"key": [{"prefix": LANDING_PREFIX}]}},
    }
