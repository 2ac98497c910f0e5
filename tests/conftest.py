"""Shared fixtures: small real lakes, built once per session."""

from __future__ import annotations

import re

import boto3
import pytest

from veracity.ingest.local import LocalAws
from veracity.lake import Lake
from veracity.pipeline import run
from veracity.synthetic import generate

SMALL_PEOPLE = 400  # about 3,500 records: big enough for EM, quick to run


@pytest.fixture(scope="session")
def small_lake(tmp_path_factory) -> Lake:
    """A local lake with a synthetic delivery, not yet processed."""
    lake = Lake.open(str(tmp_path_factory.mktemp("lake")), create=True)
    generate(lake, SMALL_PEOPLE, seed=7)
    return lake


@pytest.fixture(scope="session")
def resolved_lake(small_lake) -> tuple[Lake, object]:
    """The small lake after one pipeline run: (lake, run summary)."""
    summary = run(small_lake)
    return small_lake, summary


@pytest.fixture(scope="session")
def moto_endpoint():
    """An in-process moto server; the AWS environment points at it for the session."""
    with LocalAws() as aws:
        yield aws.endpoint


@pytest.fixture()
def s3_bucket(moto_endpoint, request) -> str:
    name = "veracity-" + re.sub(r"[^a-z0-9]+", "-", request.node.name.lower())[:40].strip("-")
    boto3.client("s3", region_name="eu-west-2").create_bucket(
        Bucket=name, CreateBucketConfiguration={"LocationConstraint": "eu-west-2"}
    )
    return name
