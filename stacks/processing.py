"""Processing for one environment: the Glue jobs, the pipeline state machine and the
ingest ledger.

The Glue 5.0 jobs run the thin scripts in ``glue_jobs/`` over the core package, which
is shipped with its pinned dependencies as one zip of wheels (``make glue-wheels``)
and installed with ``--no-index``: a job in a locked-down VPC never reaches PyPI.
Splink's similarity jar and the source configs ship as assets too.

One pipeline run is scrub (the batch that started it, when there is one) → match →
publish, each step retried on Glue's transient errors; a failed run ends failed with
the step's error (monitoring notifies on it), leaving the last good snapshot serving.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from aws_cdk import Aws, Duration, RemovalPolicy, Stack
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_glue as glue
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3_assets as s3_assets
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from constructs import Construct

from stacks.analytics import spice_dataset_ids
from stacks.config import EnvironmentConfig
from stacks.nag import acknowledge, acknowledge_grant_actions
from stacks.storage import StorageStack, bucket_name, objects_finding, zone_bucket
from veracity.ingest.ledger import LEDGER_KEY

ROOT = Path(__file__).resolve().parent.parent
GLUE_VERSION = "5.0"  # Spark 3.5.4, Python 3.11, Java 17
GLUE_REQUIREMENTS = ROOT / "requirements-glue.txt"


class ArtifactError(ValueError):
    """A Glue job artifact is missing: synthesis stops rather than deploy a job that cannot start."""


@dataclass(frozen=True)
class GlueArtifacts:
    """What the Glue jobs need besides their scripts: a wheelhouse holding the core
    package and every pin of requirements-glue.txt, and Splink's similarity jar."""

    wheels_dir: Path
    similarity_jar: Path

    @classmethod
    def checked(cls, wheels_dir: Path, similarity_jar: Path | None = None) -> GlueArtifacts:
        if similarity_jar is None:
            from splink.backends.spark import similarity_jar_location

            similarity_jar = Path(similarity_jar_location())
        if not wheels_dir.is_dir():
            raise ArtifactError(f"no Glue wheelhouse at {wheels_dir}: build it with `make glue-wheels`")
        missing = missing_pins(wheels_dir, GLUE_REQUIREMENTS)
        if "veracity" not in {name for name, _version in _wheels(wheels_dir)}:
            missing.insert(0, "veracity (the core package)")
        if missing:
            raise ArtifactError(f"the Glue wheelhouse {wheels_dir} lacks {', '.join(missing)}: "
                                "rebuild it with `make glue-wheels`")
        if not similarity_jar.is_file():
            raise ArtifactError(f"Splink's similarity jar is not at {similarity_jar}")
        return cls(wheels_dir, similarity_jar)


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "_", name).lower()


def _wheel_key(filename: str) -> tuple[str, str]:
    name, version = filename.split("-")[:2]
    return _normalise(name), version


def _wheels(wheels_dir: Path) -> set[tuple[str, str]]:
    return {_wheel_key(p.name) for p in wheels_dir.glob("*.whl")}


def missing_pins(wheels_dir: Path, requirements: Path) -> list[str]:
    """The ``name==version`` pins of ``requirements`` with no wheel in ``wheels_dir``."""
    wheels = _wheels(wheels_dir)
    return [f"{name}=={version}" for name, version in pins(requirements) if (_normalise(name), version) not in wheels]


def pins(requirements: Path) -> list[tuple[str, str]]:
    """(name, version) of each ``name==version`` line of a requirements file."""
    found = []
    for line in requirements.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, _, version = line.partition("==")
            found.append((name.strip(), version.strip()))
    return found


def lake_uri(config: EnvironmentConfig) -> str:
    """The lake as the jobs open it: curated is its root, the other zones in their own buckets."""
    zones = "&".join(f"{zone}=s3://{bucket_name(config, bucket)}"
                     for zone, bucket in (("landing", "Landing"), ("clean", "Clean"), ("quarantine", "Quarantine"),
                                         ("rejected", "Quarantine")))
    return f"s3://{bucket_name(config, 'Curated')}?{zones}"


class ProcessingStack(Stack):
    def __init__(self, scope: Construct, id: str, *, config: EnvironmentConfig, storage: StorageStack,
                 artifacts: GlueArtifacts, database_name: str, **kwargs) -> None:
        super().__init__(scope, id, **kwargs)
        removal = RemovalPolicy.DESTROY if config.destroy_on_delete else RemovalPolicy.RETAIN
        prefix = config.name_prefix
        self.lake_uri = lake_uri(config)
        buckets = {b: zone_bucket(self, config, b) for b in ("Landing", "Clean", "Quarantine", "Curated")}

        self.pipeline_log_group = f"/aws/vendedlogs/states/{prefix}-pipeline"
        # Glue's and the state machine's logs and the job bookmarks get a key CloudWatch Logs may use.
        self.job_key = kms.Key(self, "JobKey", description=f"{prefix}: encrypts Glue job logs and bookmarks",
                               enable_key_rotation=True, removal_policy=removal)
        self.job_key.add_to_resource_policy(iam.PolicyStatement(
            principals=[iam.ServicePrincipal(f"logs.{Aws.REGION}.amazonaws.com")],
            actions=["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"],
            resources=["*"],  # in a key policy "*" is the key itself
            # By name, not reference: the pipeline's log group refers to this key.
            conditions={"ArnLike": {"kms:EncryptionContext:aws:logs:arn": [
                f"arn:{Aws.PARTITION}:logs:{Aws.REGION}:{Aws.ACCOUNT_ID}:log-group:{group}"
                for group in ("/aws-glue/*", self.pipeline_log_group)]}},
        ))
        security = glue.CfnSecurityConfiguration(
            self, "JobSecurity", name=f"{prefix}-jobs",
            encryption_configuration=glue.CfnSecurityConfiguration.EncryptionConfigurationProperty(
                s3_encryptions=[glue.CfnSecurityConfiguration.S3EncryptionProperty(
                    s3_encryption_mode="SSE-KMS", kms_key_arn=storage.key.key_arn)],
                cloud_watch_encryption=glue.CfnSecurityConfiguration.CloudWatchEncryptionProperty(
                    cloud_watch_encryption_mode="SSE-KMS", kms_key_arn=self.job_key.key_arn),
                job_bookmarks_encryption=glue.CfnSecurityConfiguration.JobBookmarksEncryptionProperty(
                    job_bookmarks_encryption_mode="CSE-KMS", kms_key_arn=self.job_key.key_arn),
            ),
        )

        self.job_role = iam.Role(self, "JobRole", assumed_by=iam.ServicePrincipal("glue.amazonaws.com"),
                                 description=f"{prefix}: the Glue jobs of the pipeline")
        buckets["Landing"].grant_read(self.job_role)
        for zone in ("Clean", "Quarantine", "Curated"):
            buckets[zone].grant_read_write(self.job_role)
            buckets[zone].grant_delete(self.job_role)  # staging and pruned snapshots
        storage.key.grant_encrypt_decrypt(self.job_role)
        self.job_key.grant_encrypt_decrypt(self.job_role)
        glue_arn = f"arn:{Aws.PARTITION}:glue:{Aws.REGION}:{Aws.ACCOUNT_ID}"
        self.job_role.add_to_policy(iam.PolicyStatement(
            actions=["glue:GetDatabase", "glue:GetTable", "glue:GetTables", "glue:UpdateTable", "glue:GetPartitions",
                     "glue:BatchCreatePartition", "glue:BatchDeletePartition"],
            resources=[f"{glue_arn}:catalog", f"{glue_arn}:database/{database_name}",
                       f"{glue_arn}:table/{database_name}/*"],
        ))
        self.job_role.add_to_policy(iam.PolicyStatement(
            actions=["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents", "logs:AssociateKmsKey"],
            resources=[f"arn:{Aws.PARTITION}:logs:{Aws.REGION}:{Aws.ACCOUNT_ID}:log-group:/aws-glue/*"],
        ))
        self.job_role.add_to_policy(iam.PolicyStatement(
            actions=["cloudwatch:PutMetricData"],
            resources=["*"],  # PutMetricData has no resource type; the condition limits it to Glue's namespace
            conditions={"StringEquals": {"cloudwatch:namespace": "Glue"}},
        ))

        wheels = s3_assets.Asset(self, "Wheels", path=str(artifacts.wheels_dir))  # a directory: one zip of wheels
        jar = s3_assets.Asset(self, "SimilarityJar", path=str(artifacts.similarity_jar))
        source_configs = [s3_assets.Asset(self, f"Source{p.stem.title().replace('_', '')}", path=str(p))
                          for p in sorted((ROOT / "sources").glob("*.yaml"))]
        for asset in (wheels, jar, *source_configs):
            asset.grant_read(self.job_role)
        common = {
            "--lake": self.lake_uri,
            "--additional-python-modules": wheels.s3_object_url,
            "--python-modules-installer-option": "--no-index",
            "--extra-jars": jar.s3_object_url,
            # Glue copies extra files into the script's working directory: the source configs are read from there.
            "--extra-files": ",".join(a.s3_object_url for a in source_configs),
            "--sources": ".",
            "--enable-metrics": "true",
            "--enable-observability-metrics": "true",
            "--enable-continuous-cloudwatch-log": "true",
            "--enable-glue-datacatalog": "true",
            "--job-language": "python",
            "--TempDir": f"s3://{bucket_name(config, 'Curated')}/glue-temp/",
        }

        def job(name: str, script: str, description: str, concurrent: int = 1, timeout_minutes: int = 120,
                extra: dict[str, str] | None = None) -> glue.CfnJob:
            code = s3_assets.Asset(self, f"{name.title()}Script", path=str(ROOT / "glue_jobs" / script))
            code.grant_read(self.job_role)
            return glue.CfnJob(
                self, f"{name.title()}Job", name=f"{prefix}-{name}", description=description,
                role=self.job_role.role_arn, glue_version=GLUE_VERSION,
                command=glue.CfnJob.JobCommandProperty(name="glueetl", python_version="3",
                                                       script_location=code.s3_object_url),
                default_arguments={**common, **(extra or {})},
                worker_type=config.glue_worker_type, number_of_workers=config.glue_workers,
                security_configuration=security.ref, timeout=timeout_minutes, max_retries=0,  # the state machine retries
                execution_property=glue.CfnJob.ExecutionPropertyProperty(max_concurrent_runs=concurrent),
            )

        # Person search's serving index, written by the publish job from each snapshot
        # (veracity.search.dynamo), read by the search Lambda.
        self.search_index = dynamodb.TableV2(
            self, "SearchIndex", table_name=f"{prefix}-search-index",
            partition_key=dynamodb.Attribute(name="pk", type=dynamodb.AttributeType.STRING),
            billing=dynamodb.Billing.on_demand(),
            encryption=dynamodb.TableEncryptionV2.customer_managed_key(storage.key),
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True),
            deletion_protection=config.deletion_protection, removal_policy=removal,
        )
        self.search_index.grant_read_write_data(self.job_role)
        self.jobs = {
            "scrub": job("scrub", "scrub.py", "Scrub one landed batch into the clean zone", concurrent=11),
            "match": job("match", "match.py", "Score and cluster the current clean records with Splink on Spark"),
            "publish": job("publish", "publish.py", "Build golden records from a staged match and publish a snapshot",
                           extra={"--search-table": self.search_index.table_name}),
        }
        if config.feature("synthetic_generator"):
            self.jobs["generate"] = job("generate", "generate.py", "Land synthetic extracts (never in prod)")
        self.job_names = {name: f"{prefix}-{name}" for name in self.jobs}

        # The ingest ledger: one item per delivered batch and its state.
        self.ledger = dynamodb.TableV2(
            self, "IngestLedger", table_name=f"{prefix}-ingest-ledger",
            partition_key=dynamodb.Attribute(name=LEDGER_KEY, type=dynamodb.AttributeType.STRING),
            billing=dynamodb.Billing.on_demand(),
            encryption=dynamodb.TableEncryptionV2.customer_managed_key(storage.key),
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True),
            deletion_protection=config.deletion_protection,
            removal_policy=removal,
        )

        self.state_machine = self._state_machine(config, removal)
        # Its ledger updates use the data key the ledger is encrypted with (no wildcard actions).
        storage.key.grant(self.state_machine, "kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey")
        for bucket in ("Landing", "Clean", "Quarantine", "Curated"):
            acknowledge(self.job_role, objects_finding(config, bucket),
                        "The jobs read and write objects anywhere in the lake's zone buckets; keys are data.")
        acknowledge_grant_actions(self.job_role, "CDK's S3 and KMS grants to the Glue jobs on the lake's "
                                  "buckets and keys")
        for finding, reason in (
            ("Resource::arn:<AWS::Partition>:s3:::cdk-hnb659fds-assets-<AWS::AccountId>-" + config.region + "/*",
             "CDK grants read of the job assets (scripts, wheels, jar, source configs) in the bootstrap asset bucket."),
            (f"Resource::arn:<AWS::Partition>:glue:<AWS::Region>:<AWS::AccountId>:table/{database_name}/*",
             "The jobs update the tables of the lake's one Glue database, whichever they are."),
            ("Resource::arn:<AWS::Partition>:logs:<AWS::Region>:<AWS::AccountId>:log-group:/aws-glue/*",
             "Glue writes its job logs to log groups it names under /aws-glue/."),
            ("Resource::*", "cloudwatch:PutMetricData has no resource type; a condition keeps it to the Glue namespace."),
        ):
            acknowledge(self.job_role, f"AwsSolutions-IAM5[{finding}]", reason)
        acknowledge(self.state_machine, "AwsSolutions-IAM5[Resource::*]", "X-Ray tracing and CloudWatch Logs "
                    "delivery take no resource (xray:PutTraceSegments, logs:CreateLogDelivery and kin need '*').")

    def _refresh_spice(self, config: EnvironmentConfig, then: sfn.IChainable) -> sfn.IChainable:
        """Start a SPICE refresh of each QuickSight dataset (where QuickSight is on), then
        ``then``. A refresh that cannot start is logged in the execution and leaves the
        published run succeeded: the daily schedule catches up."""
        datasets = spice_dataset_ids(config)
        if not datasets:
            return then
        refresh = tasks.CallAwsService(
            self, "RefreshDataset", service="quicksight", action="createIngestion",
            parameters={"AwsAccountId": Aws.ACCOUNT_ID, "DataSetId.$": "$",
                        "IngestionId.$": "States.UUID()", "IngestionType": "FULL_REFRESH"},
            iam_action="quicksight:CreateIngestion",
            iam_resources=[f"arn:{Aws.PARTITION}:quicksight:{Aws.REGION}:{Aws.ACCOUNT_ID}:dataset/{d}" for d in datasets],
            result_path=sfn.JsonPath.DISCARD,
        )
        each = sfn.Map(self, "RefreshSpice", items_path="$.datasets", max_concurrency=2,
                       result_path=sfn.JsonPath.DISCARD)
        each.item_processor(refresh)
        each.add_catch(then, result_path="$.refresh_error")
        listed = sfn.Pass(self, "DatasetsToRefresh", result=sfn.Result.from_array(datasets), result_path="$.datasets")
        return listed.next(each).next(then)

    def _record_in_ledger(self, id: str, state: str, error: bool = False) -> tasks.DynamoUpdateItem:
        """Set the delivered batch's ledger state (and the error, for a failed run)."""
        text = tasks.DynamoAttributeValue.from_string
        values = {":state": text(state), ":run": text(sfn.JsonPath.execution_id),
                  ":now": text(sfn.JsonPath.string_at("$$.State.EnteredTime"))}
        if error:
            values[":error"] = text(sfn.JsonPath.string_at("$.error.Cause"))
        return tasks.DynamoUpdateItem(
            self, id, table=self.ledger,
            key={LEDGER_KEY: text(sfn.JsonPath.format("{}/{}", sfn.JsonPath.string_at("$.source"),
                                                      sfn.JsonPath.string_at("$.batch_id")))},
            update_expression="SET #state = :state, finished_run = :run, updated_at = :now"
                              + (", last_error = :error" if error else ""),
            expression_attribute_names={"#state": "state"}, expression_attribute_values=values,
            result_path=sfn.JsonPath.DISCARD,
        )

    def _state_machine(self, config: EnvironmentConfig, removal: RemovalPolicy) -> sfn.StateMachine:
        def run(step: str, arguments: dict | None = None) -> tasks.GlueStartJobRun:
            task = tasks.GlueStartJobRun(
                self, step.title(), glue_job_name=self.job_names[step],
                integration_pattern=sfn.IntegrationPattern.RUN_JOB,  # wait for the job to finish
                arguments=sfn.TaskInput.from_object(arguments) if arguments else None,
                result_path=f"$.{step}",
            )
            task.add_retry(errors=["Glue.ConcurrentRunsExceededException", "Glue.AWSGlueException",
                                   "Glue.ThrottlingException", "States.Timeout"],
                           interval=Duration.minutes(1), max_attempts=3, backoff_rate=2)
            return task

        # A failed step ends the run failed with the step's error; the monitoring stack's rule
        # on failed executions notifies the alerts topic (no reference from here to it).
        failed = sfn.Fail(self, "RunFailed", error_path="$.error.Error", cause_path="$.error.Cause")
        published = sfn.Succeed(self, "Published")
        has_batch = sfn.Condition.and_(sfn.Condition.is_present("$.source"), sfn.Condition.is_present("$.batch_id"))
        # A run started by a delivery ends by recording its batch's outcome in the ingest ledger.
        record_failure = sfn.Choice(self, "FailedForABatch").when(
            has_batch, self._record_in_ledger("RecordFailed", "run_failed", error=True).next(failed)).otherwise(failed)
        scrub = run("scrub", {"--source.$": "$.source", "--batch-id.$": "$.batch_id"})
        match, publish = run("match"), run("publish")
        for step in (scrub, match, publish):
            step.add_catch(record_failure, result_path="$.error")
        # A run started by a delivery scrubs its batch first; a scheduled run matches what is there.
        scrub.next(match)
        record_published = sfn.Choice(self, "PublishedForABatch").when(
            has_batch, self._record_in_ledger("RecordPublished", "published").next(published)).otherwise(published)
        match.next(publish).next(self._refresh_spice(config, record_published))
        start = sfn.Choice(self, "DeliveredBatch").when(has_batch, scrub).otherwise(match)
        log_group = logs.LogGroup(self, "PipelineLogs", log_group_name=self.pipeline_log_group,
                                  encryption_key=self.job_key, removal_policy=removal,
                                  retention=logs.RetentionDays.ONE_YEAR if not config.destroy_on_delete
                                  else logs.RetentionDays.ONE_MONTH)
        return sfn.StateMachine(
            self, "Pipeline", state_machine_name=f"{config.name_prefix}-pipeline",
            definition_body=sfn.DefinitionBody.from_chainable(start),
            timeout=Duration.hours(6), tracing_enabled=True, removal_policy=removal,
            logs=sfn.LogOptions(destination=log_group, level=sfn.LogLevel.ALL, include_execution_data=False),
        )
