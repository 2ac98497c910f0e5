"""Secure storage for one environment: a KMS key and the lake's S3 buckets."""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy, Stack
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct

from stacks.config import EnvironmentConfig

# Construct id -> server access log prefix, for the KMS-encrypted data buckets.
DATA_BUCKETS = {
    "Landing": "landing/",
    "Clean": "clean/",
    "Curated": "curated/",
    "Quarantine": "quarantine/",
    "AthenaResults": "athena-results/",
}


class StorageStack(Stack):
    def __init__(self, scope: Construct, id: str, *, config: EnvironmentConfig, **kwargs) -> None:
        super().__init__(scope, id, **kwargs)

        self.key = kms.Key(
            self,
            "DataKey",
            description=f"{config.name_prefix}: encrypts the Veracity data buckets",
            enable_key_rotation=True,
            removal_policy=RemovalPolicy.RETAIN,
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
            removal_policy=RemovalPolicy.RETAIN,
        )

        self.buckets: dict[str, s3.Bucket] = {}
        for bucket_id, log_prefix in DATA_BUCKETS.items():
            self.buckets[bucket_id] = s3.Bucket(
                self,
                bucket_id,
                encryption=s3.BucketEncryption.KMS,
                encryption_key=self.key,
                bucket_key_enabled=True,
                enforce_ssl=True,
                block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
                versioned=True,
                server_access_logs_bucket=self.access_logs,
                server_access_logs_prefix=log_prefix,
                object_lock_enabled=bucket_id == "Landing" and config.object_lock,
                lifecycle_rules=[
                    s3.LifecycleRule(
                        noncurrent_version_expiration=Duration.days(config.retention_days)
                    )
                ],
                removal_policy=RemovalPolicy.RETAIN,
            )

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
