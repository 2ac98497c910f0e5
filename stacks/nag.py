"""Acknowledging a cdk-nag finding, with the reason written down where it is made."""

from __future__ import annotations

from aws_cdk import Acknowledgment, Validations
from constructs import IConstruct

PACK = "AwsSolutions"


def acknowledge(scope: IConstruct, rule: str, reason: str) -> None:
    """Accept ``rule`` (e.g. ``AwsSolutions-IAM5[Action::s3:GetObject*]`` for one
    finding, or ``AwsSolutions-IAM5`` for all of a rule's) on ``scope`` and below."""
    if len(reason.strip()) < 20:
        raise ValueError(f"acknowledging {rule}: give a real reason, not {reason!r}")
    Validations.of(scope).acknowledge(Acknowledgment(id=f"{PACK}::{rule}", reason=reason))


# Action families CDK's L2 grants use (bucket.grant_read_write, key.grant_encrypt_decrypt, ...).
GRANT_ACTION_FAMILIES = ("s3:GetObject*", "s3:GetBucket*", "s3:List*", "s3:DeleteObject*", "s3:Abort*",
                         "kms:ReEncrypt*", "kms:GenerateDataKey*")


def acknowledge_grant_actions(scope: IConstruct, grants: str) -> None:
    """Accept the wildcard action families of CDK's L2 grants on ``scope``: they stand for
    a fixed list of read or write actions, on resources the grants name."""
    for action in GRANT_ACTION_FAMILIES:
        acknowledge(scope, f"AwsSolutions-IAM5[Action::{action}]",
                    f"{grants}: {action} is the action family CDK's grant uses, on the resources it names.")
