"""The one way Veracity makes an Athena workgroup: engine v3, settings enforced,
results KMS-encrypted in the Athena results bucket under a prefix, a scan cutoff."""

from __future__ import annotations

from aws_cdk import Aws
from aws_cdk import aws_athena as athena
from constructs import Construct

from stacks.config import EnvironmentConfig
from stacks.storage import StorageStack

ENGINE_VERSION = "Athena engine version 3"


def enforced_workgroup(scope: Construct, id: str, *, name: str, description: str, config: EnvironmentConfig,
                       storage: StorageStack, results_prefix: str) -> athena.CfnWorkGroup:
    results = storage.buckets["AthenaResults"]
    return athena.CfnWorkGroup(
        scope, id, name=name, description=description,
        # Dev may be torn down with everything saved in it; elsewhere deleting a
        # workgroup that still holds people's saved queries fails instead.
        recursive_delete_option=config.destroy_on_delete,
        work_group_configuration=athena.CfnWorkGroup.WorkGroupConfigurationProperty(
            engine_version=athena.CfnWorkGroup.EngineVersionProperty(selected_engine_version=ENGINE_VERSION),
            # Clients cannot override the location, encryption or cutoff below.
            enforce_work_group_configuration=True,
            publish_cloud_watch_metrics_enabled=True,
            bytes_scanned_cutoff_per_query=config.athena_bytes_scanned_cutoff,
            result_configuration=athena.CfnWorkGroup.ResultConfigurationProperty(
                output_location=f"s3://{results.bucket_name}/{results_prefix}",
                expected_bucket_owner=Aws.ACCOUNT_ID,
                encryption_configuration=athena.CfnWorkGroup.EncryptionConfigurationProperty(
                    encryption_option="SSE_KMS", kms_key=storage.key.key_arn),
            ),
        ),
    )

# IAM actions for Athena users: list a bucket, read the catalog, keep one's own results.
RESULT_OBJECT_ACTIONS = [  # a consumer's own Athena results
    "s3:AbortMultipartUpload",
    "s3:GetObject",
    "s3:ListMultipartUploadParts",
    "s3:PutObject",
]
BUCKET_ACTIONS = ["s3:GetBucketLocation", "s3:ListBucket", "s3:ListBucketMultipartUploads"]
GLUE_READ_ACTIONS = [
    "glue:BatchGetPartition",
    "glue:GetDatabase",
    "glue:GetDatabases",
    "glue:GetPartition",
    "glue:GetPartitions",
    "glue:GetTable",
    "glue:GetTables",
]
