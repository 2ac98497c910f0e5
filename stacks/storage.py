"""Secure storage for one environment: a KMS key and the lake's S3 buckets."""

from __future__ import annotations

import re

from aws_cdk import Aws, Duration, RemovalPolicy, Stack
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct

from stacks.config import EnvironmentConfig
from stacks.nag import acknowledge

# Construct id -> server access log prefix, for the KMS-encrypted data buckets.
DATA_BUCKETS = {
    "Landing": "landing/",
    "Clean": "clean/",
    "Curated": "curated/",
    "Quarantine": "quarantine/",
    "AthenaResults": "athena-results/",
    "SearchAudit": "search-audit/",
}
# The Data Protection Act asks for logs kept long enough to check that processing was
# lawful; six years, the force's default for audit records, held by Object Lock.
AUDIT_RETENTION_DAYS = 6 * 365


def bucket_name(config: EnvironmentConfig, bucket_id: str, account: str = Aws.ACCOUNT_ID) -> str:
    """A zone's bucket name, fixed by the environment so other stacks refer to it by name
    (no cross-stack export in their IAM policies); account and region keep it unique."""
    zone = re.sub(r"(?<!^)(?=[A-Z])", "-", bucket_id).lower()  # AthenaResults -> athena-results
    return f"{config.name_prefix}-{zone}-{account}-{config.region}"


def zone_bucket(scope: Construct, config: EnvironmentConfig, bucket_id: str) -> s3.IBucket:
    """A zone's bucket as another stack sees it: by name."""
    return s3.Bucket.from_bucket_name(scope, f"{bucket_id}Bucket", bucket_name(config, bucket_id))


def objects_finding(config: EnvironmentConfig, bucket_id: str) -> str:
    """cdk-nag's id for an IAM wildcard over a zone bucket's objects."""
    name = bucket_name(config, bucket_id, account="<AWS::AccountId>")  # as cdk-nag renders the account
    return f"AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:s3:::{name}/*]"


class StorageStack(Stack):
    def __init__(self, scope: Construct, id: str, *, config: EnvironmentConfig, **kwargs) -> None:
        super().__init__(scope, id, **kwargs)
        # dev is disposable: its stacks take their data with them; test and prod keep theirs.
        removal = RemovalPolicy.DESTROY if config.destroy_on_delete else RemovalPolicy.RETAIN

        self.key = kms.Key(
            self,
            "DataKey",
            description=f"{config.name_prefix}: encrypts the Veracity data buckets",
            enable_key_rotation=True,
            removal_policy=removal,
        )

        # Server access logging cannot deliver to a KMS-encrypted target, so this
        # bucket uses SSE-S3.
        self.access_logs = s3.Bucket(
            self,
            "AccessLogs",
            encryption=s3.BucketEncryption.S3_MANAGED,
            enforce_ssl=True,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            versioned=True,
            removal_policy=removal,
            auto_delete_objects=config.destroy_on_delete,
        )

        self.buckets: dict[str, s3.Bucket] = {}
        for bucket_id, log_prefix in DATA_BUCKETS.items():
            self.buckets[bucket_id] = s3.Bucket(
                self,
                bucket_id,
                bucket_name=bucket_name(config, bucket_id),
                encryption=s3.BucketEncryption.KMS,
                encryption_key=self.key,
                bucket_key_enabled=True,
                enforce_ssl=True,
                block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
                versioned=True,
                server_access_logs_bucket=self.access_logs,
                server_access_logs_prefix=log_prefix,
                object_lock_enabled=(bucket_id == "Landing" and config.object_lock) or bucket_id == "SearchAudit",
                # The search audit log is append-only: compliance mode, which not even the
                # account's root can shorten; dev uses governance so it can be torn down.
                object_lock_default_retention=(
                    None if bucket_id != "SearchAudit"
                    else s3.ObjectLockRetention.governance(Duration.days(AUDIT_RETENTION_DAYS)) if config.destroy_on_delete
                    else s3.ObjectLockRetention.compliance(Duration.days(AUDIT_RETENTION_DAYS))),
                lifecycle_rules=[
                    s3.LifecycleRule(
                        noncurrent_version_expiration=Duration.days(config.retention_days),
                        abort_incomplete_multipart_upload_after=Duration.days(7),
                        # Query results are copies of lake data: they go after the retention period.
                        expiration=Duration.days(config.retention_days) if bucket_id == "AthenaResults" else None,
                    )
                ],
                removal_policy=removal,
                auto_delete_objects=config.destroy_on_delete,
            )

        if config.destroy_on_delete:
            # The custom resource that empties the buckets before deletion is CDK's own provider.
            acknowledge(self, "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/"
                        "AWSLambdaBasicExecutionRole]", "CDK's auto-delete-objects provider (dev only) logs with "
                        "the basic execution policy; it is CDK's code, not ours to change.")
            acknowledge(self, "AwsSolutions-L1", "CDK's auto-delete-objects provider (dev only) picks its own "
                        "runtime with each CDK release.")

        # S3 -> EventBridge for landing, set on the L1 bucket: the L2's
        # event_bridge_enabled deploys a Lambda-backed custom resource (with an
        # IAM role on an AWS managed policy) just to flip this switch.
        # Don't call add_event_notification on landing: that custom resource
        # would then own the bucket's notification config and drop this setting.
        landing = self.buckets["Landing"].node.default_child
        landing.notification_configuration = s3.CfnBucket.NotificationConfigurationProperty(
            event_bridge_configuration=s3.CfnBucket.EventBridgeConfigurationProperty(
                event_bridge_enabled=True
            )
        )
