"""Ingest for one environment: landing uploads → EventBridge → SQS (with a DLQ) → the
ingest Lambda, which checks each batch, records it in the ledger and starts the
pipeline; and a schedule that starts the pipeline every few hours for systems that
do not push.

The Lambda's code is the thin handler in ``lambdas/ingest`` with the core package
beside it, copied in-process (no Docker). Powertools and pyarrow come from AWS's
published layers, located at deploy time through their public SSM parameters, so
synthesis makes no AWS call and the versions are pinned here.
"""

from __future__ import annotations

import shutil
import zipfile
from pathlib import Path

import jsii
import yaml
from aws_cdk import (
    Aws,
    BundlingOptions,
    DockerImage,
    Duration,
    ILocalBundling,
    RemovalPolicy,
    Stack,
)
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as sources
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_ssm as ssm
from constructs import Construct

from stacks.config import EnvironmentConfig
from stacks.nag import acknowledge, acknowledge_grant_actions
from stacks.processing import ArtifactError, ProcessingStack
from stacks.storage import StorageStack, objects_finding, zone_bucket
from veracity.ingest.events import MAX_RECEIVES, landing_event_pattern

ROOT = Path(__file__).resolve().parent.parent
RUNTIME = lambda_.Runtime.PYTHON_3_13
POWERTOOLS_VERSION = "3.37.0"
SDK_FOR_PANDAS_VERSION = "3.16.1"  # pyarrow, pandas and numpy for the core package
# A batch check reads its extract twice (sha256, then rows): about 11 MB/s on one core,
# so Lambda's longest timeout, and the memory that buys a whole vCPU.
HANDLER_TIMEOUT = Duration.minutes(15)
HANDLER_MEMORY_MB = 2048
IDEMPOTENCY_TTL = "expiration"  # the attribute Powertools' idempotency records expire by
LAMBDA_UNZIPPED_LIMIT = 262_144_000  # bytes: Lambda's 250 MB for a function's code and layers together


@jsii.implements(ILocalBundling)
class _CopyHandlerAndPackage:
    """A Lambda bundle without Docker: a handler, the core package, the source configs,
    and the unpacked wheels of ``wheels_dir`` when one is given, less the ``exclude``
    globs (parts of wheels the function never loads). With ``size_limit``, a bundle
    that unpacks to more bytes stops the synthesis: Lambda would refuse it at deploy."""

    def __init__(self, function: str, wheels_dir: Path | None = None, exclude: tuple[str, ...] = (),
                 size_limit: int | None = None):
        self.function, self.wheels_dir, self.exclude, self.size_limit = function, wheels_dir, exclude, size_limit

    def try_bundle(self, output_dir: str, *, image, **_options) -> bool:
        out = Path(output_dir)
        shutil.copy2(ROOT / "lambdas" / self.function / "handler.py", out / "handler.py")
        ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
        shutil.copytree(ROOT / "veracity", out / "veracity", ignore=ignore, dirs_exist_ok=True)
        shutil.copytree(ROOT / "sources", out / "sources", ignore=ignore, dirs_exist_ok=True)
        # PyYAML (for the source configs) is in neither layer; its pure-Python half runs
        # anywhere, so it is copied without the compiled speed-up.
        shutil.copytree(Path(yaml.__file__).parent, out / "yaml", dirs_exist_ok=True,
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*.so", "*.pyd"))
        for wheel in sorted(self.wheels_dir.glob("*.whl")) if self.wheels_dir else []:
            with zipfile.ZipFile(wheel) as archive:
                archive.extractall(out)
        remove_matching(out, self.exclude)
        if self.size_limit is not None and (size := unpacked_size(out)) > self.size_limit:
            raise ArtifactError(f"the {self.function} Lambda's bundle unpacks to {size:,} bytes, "
                                f"over Lambda's limit of {self.size_limit:,}")
        return True


def remove_matching(directory: Path, patterns: tuple[str, ...]) -> None:
    """Delete the files and folders under ``directory`` matching any glob of ``patterns``."""
    for pattern in patterns:
        for path in sorted(directory.glob(pattern), reverse=True):
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            elif path.exists() or path.is_symlink():
                path.unlink()


def unpacked_size(directory: Path) -> int:
    """The bytes Lambda counts for a bundle: every file's size, unzipped."""
    return sum(path.stat().st_size for path in directory.rglob("*") if path.is_file() and not path.is_symlink())


def handler_code(function: str = "ingest", wheels_dir: Path | None = None, exclude: tuple[str, ...] = (),
                 size_limit: int | None = None) -> lambda_.Code:
    """The code of ``lambdas/<function>``, bundled in-process (see ``_CopyHandlerAndPackage``)."""
    return lambda_.Code.from_asset(
        str(ROOT / "lambdas" / function),
        bundling=BundlingOptions(image=DockerImage.from_registry("unused-local-bundling"),
                                 local=_CopyHandlerAndPackage(function, wheels_dir, exclude, size_limit)),
    )


class IngestStack(Stack):
    def __init__(self, scope: Construct, id: str, *, config: EnvironmentConfig, storage: StorageStack,
                 processing: ProcessingStack, **kwargs) -> None:
        super().__init__(scope, id, **kwargs)
        prefix = config.name_prefix
        removal = RemovalPolicy.DESTROY if config.destroy_on_delete else RemovalPolicy.RETAIN

        # The queues' own key: EventBridge must be allowed to use it, scoped to this rule.
        self.queue_key = kms.Key(self, "QueueKey", description=f"{prefix}: encrypts the ingest queues",
                                 enable_key_rotation=True, removal_policy=removal)
        self.dead_letter_queue = sqs.Queue(
            self, "DeadLetters", queue_name=f"{prefix}-ingest-dlq", encryption=sqs.QueueEncryption.KMS,
            encryption_master_key=self.queue_key, enforce_ssl=True, retention_period=Duration.days(14),
            removal_policy=removal,
        )
        self.queue = sqs.Queue(
            self, "Deliveries", queue_name=f"{prefix}-ingest", encryption=sqs.QueueEncryption.KMS,
            encryption_master_key=self.queue_key, enforce_ssl=True,
            visibility_timeout=Duration.seconds(HANDLER_TIMEOUT.to_seconds() * 6),  # AWS's advice for Lambda sources
            dead_letter_queue=sqs.DeadLetterQueue(queue=self.dead_letter_queue, max_receive_count=MAX_RECEIVES),
            removal_policy=removal,
        )
        landing = zone_bucket(self, config, "Landing")
        pattern = landing_event_pattern(landing.bucket_name)
        self.rule = events.Rule(
            self, "LandingUploads", rule_name=f"{prefix}-landing-uploads", description="New objects in the landing zone",
            event_pattern=events.EventPattern(source=pattern["source"], detail_type=pattern["detail-type"],
                                              detail=pattern["detail"]),
        )
        self.rule.add_target(targets.SqsQueue(self.queue))

        powertools = ssm.StringParameter.value_for_string_parameter(
            self, f"/aws/service/powertools/python/x86_64/python3.13/{POWERTOOLS_VERSION}")
        sdk_for_pandas = ssm.StringParameter.value_for_string_parameter(
            self, f"/aws/service/aws-sdk-pandas/{SDK_FOR_PANDAS_VERSION}/{config.region}/py3.13/x86_64/layer-arn")
        # Powertools' idempotency records: one per delivered object (bucket, key, etag).
        self.idempotency = dynamodb.TableV2(
            self, "Idempotency", table_name=f"{prefix}-ingest-idempotency",
            partition_key=dynamodb.Attribute(name="id", type=dynamodb.AttributeType.STRING),
            time_to_live_attribute=IDEMPOTENCY_TTL, point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True),
            encryption=dynamodb.TableEncryptionV2.customer_managed_key(storage.key), removal_policy=removal,
        )
        log_group = logs.LogGroup(self, "HandlerLogs", removal_policy=removal,
                                  retention=logs.RetentionDays.ONE_MONTH if config.destroy_on_delete
                                  else logs.RetentionDays.ONE_YEAR)
        # Its own role: write to its own log group only (no managed policy).
        role = iam.Role(self, "HandlerRole", assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
                        description=f"{prefix}: the ingest Lambda")
        log_group.grant_write(role)
        self.function = lambda_.Function(
            self, "Handler", function_name=f"{prefix}-ingest", runtime=RUNTIME, code=handler_code(),
            handler="handler.lambda_handler", role=role, timeout=HANDLER_TIMEOUT, memory_size=HANDLER_MEMORY_MB,
            reserved_concurrent_executions=config.ingest_concurrency,
            layers=[lambda_.LayerVersion.from_layer_version_arn(self, "Powertools", powertools),
                    lambda_.LayerVersion.from_layer_version_arn(self, "SdkForPandas", sdk_for_pandas)],
            environment={
                "VERACITY_LAKE": processing.lake_uri,
                "LEDGER_TABLE": processing.ledger.table_name,
                "IDEMPOTENCY_TABLE": self.idempotency.table_name,
                "STATE_MACHINE_ARN": processing.state_machine.state_machine_arn,
                "POWERTOOLS_SERVICE_NAME": "veracity-ingest",
                "POWERTOOLS_METRICS_NAMESPACE": "Veracity",
            },
            environment_encryption=self.queue_key, tracing=lambda_.Tracing.ACTIVE, log_group=log_group,
        )
        self.function.add_event_source(sources.SqsEventSource(self.queue, batch_size=10, report_batch_item_failures=True))
        landing.grant_read(self.function)
        zone_bucket(self, config, "Quarantine").grant_write(self.function)
        storage.key.grant_encrypt_decrypt(self.function)
        processing.ledger.grant_read_write_data(self.function)
        self.idempotency.grant_read_write_data(self.function)
        processing.state_machine.grant_start_execution(self.function)

        # Systems that do not push: run the pipeline on a schedule all the same.
        self.schedule = events.Rule(self, "Schedule", rule_name=f"{prefix}-schedule", description=f"Run the pipeline every {config.schedule_hours} hours",
                                    schedule=events.Schedule.rate(Duration.hours(config.schedule_hours)))
        self.schedule.add_target(targets.SfnStateMachine(
            processing.state_machine, input=events.RuleTargetInput.from_object({"trigger": "schedule"}),
            dead_letter_queue=self.dead_letter_queue, retry_attempts=3))
        for bucket in ("Landing", "Quarantine"):
            acknowledge(role, objects_finding(config, bucket), "The handler reads any delivered object and "
                        "quarantines rejected ones under keys it derives from the batch.")
        acknowledge_grant_actions(role, "CDK's grants to the ingest Lambda on landing, quarantine and the data key")
        acknowledge(role, "AwsSolutions-IAM5[Resource::*]", "X-Ray's PutTraceSegments and PutTelemetryRecords "
                    "take no resource.")
        acknowledge(self.function, "AwsSolutions-L1", "Python 3.13 is the newest runtime both published layers "
                    "(Powertools, AWS SDK for pandas) are pinned for; move with them.")
        # EventBridge sends to the encrypted queues for these two rules only.
        self.queue_key.add_to_resource_policy(iam.PolicyStatement(
            principals=[iam.ServicePrincipal("events.amazonaws.com")],
            actions=["kms:Decrypt", "kms:GenerateDataKey"],
            resources=["*"],  # in a key policy "*" is the key itself
            # ARNs from the rules' names: a reference would make the queue, key and rule a cycle.
            conditions={"ArnEquals": {"aws:SourceArn": [
                f"arn:{Aws.PARTITION}:events:{Aws.REGION}:{Aws.ACCOUNT_ID}:rule/{prefix}-{rule}"
                for rule in ("landing-uploads", "schedule")]}},
        ))
