"""The CDK app: synthesized in-process from cdk.json's context, no AWS access."""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest
from aws_cdk import Stack
from aws_cdk.assertions import Template

from app import build_app
from stacks.config import ENVIRONMENTS, ConfigError, EnvironmentConfig
from stacks.stage import VeracityStage
from tests.cdk_app import app_context, nag_errors

ROOT = Path(__file__).resolve().parent.parent



@pytest.fixture(scope="module")
def stages(tmp_path_factory) -> dict[str, VeracityStage]:
    app = build_app(context=app_context(tmp_path_factory.mktemp("cdk")))
    return {name: app.node.find_child(f"Veracity-{name}") for name in ENVIRONMENTS}


@pytest.fixture(scope="module")
def templates(stages) -> dict[str, dict]:
    return {name: Template.from_stack(stage.storage).to_json() for name, stage in stages.items()}


def resources(template: dict, kind: str) -> dict[str, dict]:
    return {k: r for k, r in template["Resources"].items() if r["Type"] == kind}


def logical_id(construct) -> str:
    return Stack.of(construct).get_logical_id(construct.node.default_child)


def test_one_stage_per_environment(stages):
    assert set(stages) == {"dev", "test", "prod"}
    for name, stage in stages.items():
        assert isinstance(stage, VeracityStage)
        assert stage.region == "eu-west-2"
        assert stage.storage.stack_name == f"veracity-{name}-storage"


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_buckets_encrypted_private_versioned_and_retained(templates, env):
    buckets = resources(templates[env], "AWS::S3::Bucket")
    assert len(buckets) == 7  # six data buckets (the search audit log among them) and the access-log bucket
    for lid, bucket in buckets.items():
        props = bucket["Properties"]
        [rule] = props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
        assert rule["ServerSideEncryptionByDefault"]["SSEAlgorithm"] in ("aws:kms", "AES256"), lid
        assert props["PublicAccessBlockConfiguration"] == {
            "BlockPublicAcls": True,
            "BlockPublicPolicy": True,
            "IgnorePublicAcls": True,
            "RestrictPublicBuckets": True,
        }, lid
        assert props["VersioningConfiguration"] == {"Status": "Enabled"}, lid
        # dev is disposable; test and prod keep their data when a stack goes.
        assert bucket["DeletionPolicy"] == ("Delete" if env == "dev" else "Retain"), lid


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_data_buckets_use_the_key_log_access_and_expire_old_versions(stages, templates, env):
    storage = stages[env].storage
    buckets = resources(templates[env], "AWS::S3::Bucket")
    key_id, logs_id = logical_id(storage.key), logical_id(storage.access_logs)
    for bucket_id, bucket in storage.buckets.items():
        props = buckets[logical_id(bucket)]["Properties"]
        [rule] = props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
        assert rule["ServerSideEncryptionByDefault"] == {
            "SSEAlgorithm": "aws:kms",
            "KMSMasterKeyID": {"Fn::GetAtt": [key_id, "Arn"]},
        }
        assert props["LoggingConfiguration"]["DestinationBucketName"] == {"Ref": logs_id}
        assert props["LifecycleConfiguration"]["Rules"] == [
            {
                "NoncurrentVersionExpiration": {
                    "NoncurrentDays": stages[env].config.retention_days
                },
                "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 7},
                "Status": "Enabled",
            }
            # Athena's query results (copies of lake data) expire too; the lake's data does not.
            | ({"ExpirationInDays": stages[env].config.retention_days} if bucket_id == "AthenaResults" else {})
        ]


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_every_bucket_policy_denies_insecure_transport(templates, env):
    template = templates[env]
    denied = set()
    for policy in resources(template, "AWS::S3::BucketPolicy").values():
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            if statement["Effect"] == "Deny" and statement.get("Condition") == {
                "Bool": {"aws:SecureTransport": "false"}
            }:
                denied.add(policy["Properties"]["Bucket"]["Ref"])
    assert denied == set(resources(template, "AWS::S3::Bucket"))


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_kms_key_rotates(templates, env):
    [key] = resources(templates[env], "AWS::KMS::Key").values()
    assert key["Properties"]["EnableKeyRotation"] is True
    assert key["DeletionPolicy"] == ("Delete" if env == "dev" else "Retain")


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_object_lock_on_landing_in_prod_and_the_audit_log_everywhere_eventbridge_only_on_landing(stages, templates, env):
    buckets = resources(templates[env], "AWS::S3::Bucket")
    landing = logical_id(stages[env].storage.buckets["Landing"])
    audit = logical_id(stages[env].storage.buckets["SearchAudit"])
    for lid, bucket in buckets.items():
        props = bucket["Properties"]
        assert props.get("ObjectLockEnabled", False) is ((lid == landing and env == "prod") or lid == audit), lid
        eventbridge = props.get("NotificationConfiguration", {}).get("EventBridgeConfiguration")
        assert eventbridge == ({"EventBridgeEnabled": True} if lid == landing else None), lid


def test_cdk_nag_reports_no_unacknowledged_errors(tmp_path):
    # cdk-nag 3 runs as a policy-validation plugin during synthesis, not as an
    # aspect, so its findings are not annotations: synthesis fails on any
    # unacknowledged one and the report lands in the cloud assembly.
    app = build_app(context=app_context(tmp_path), outdir=str(tmp_path / "out"))
    with contextlib.suppress(RuntimeError):  # the report below says why
        app.synth()
    errors = nag_errors(tmp_path / "out")
    assert errors == []
    assert (tmp_path / "out" / "manifest.json").exists()


GOOD = {
    "region": "eu-west-2",
    "name_prefix": "veracity-x",
    "retention_days": 7,
    "object_lock": False,
}


def test_config_reads_the_optional_keys_and_flags():
    config = EnvironmentConfig.from_dict("x", {**GOOD, "glue_worker_type": "G.2X", "glue_workers": 10,
                                               "alarm_emails": ["ops@force.police.uk"],
                                               "features": {"quicksight": True, "synthetic_generator": False}})
    assert (config.glue_worker_type, config.glue_workers, config.alarm_emails) == ("G.2X", 10, ("ops@force.police.uk",))
    assert config.feature("quicksight") and not config.feature("synthetic_generator")
    assert config.database_name == "veracity_x_lake"
    with pytest.raises(KeyError, match="unknown feature flag"):
        config.feature("quicksite")


def test_config_loads_and_account_is_optional():
    config = EnvironmentConfig.from_dict("x", GOOD)
    assert config == EnvironmentConfig("x", "eu-west-2", "veracity-x", 7, False, None)
    assert (
        EnvironmentConfig.from_dict("x", {**GOOD, "account": "111111111111"}).account
        == "111111111111"
    )


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({k: v for k, v in GOOD.items() if k != "region"}, "missing required key 'region'"),
        ({**GOOD, "retention_days": "30"}, "retention_days: expected int"),
        ({**GOOD, "retention_days": True}, "retention_days: expected int"),
        ({**GOOD, "retention_days": 0}, "must be at least 1"),
        ({**GOOD, "account": "1234"}, "12-digit string"),
        ({**GOOD, "retension_days": 7}, "unknown keys"),
        ({**GOOD, "glue_worker_type": "G.3X"}, "glue_worker_type: expected one of"),
        ({**GOOD, "glue_workers": 1}, "needs at least 2 workers"),
        ({**GOOD, "ingest_concurrency": 0}, "ingest_concurrency: must be at least 1"),
        ({**GOOD, "features": {"quicksite": True}}, "features.quicksite: expected a flag of"),
        ({**GOOD, "features": {"quicksight": "yes"}}, "features.quicksight: expected a flag of"),
        ({**GOOD, "alarm_emails": ["ops"]}, "alarm_emails: expected an email address"),
        ({**GOOD, "alarm_emails": "ops@force.police.uk"}, "alarm_emails: expected list"),
        ({**GOOD, "quicksight_principals": ["arn:aws:quicksight:eu-west-2:12:user/x"]},
         "quicksight_principals: expected a QuickSight principal ARN"),
        ({**GOOD, "destroy_on_delete": True, "deletion_protection": True}, "contradict each other"),
    ],
)
def test_config_errors_name_the_problem(raw, message):
    with pytest.raises(ConfigError, match=message):
        EnvironmentConfig.from_dict("x", raw)
