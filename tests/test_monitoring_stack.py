"""The monitoring stack, built in each environment's stage against stand-ins for
the resources it watches (real constructs in a stack of their own)."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

import pytest
from aws_cdk import Acknowledgment, App, Environment, Stack, Stage, Validations
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as stepfunctions
from aws_cdk.assertions import Template
from cdk_nag import AwsSolutionsChecks

from stacks.config import ENVIRONMENTS, EnvironmentConfig
from stacks.monitoring import MonitoringStack
from tests.cdk_app import CONTEXT, nag_errors
from tests.cfn_lint_check import lint_findings

ROOT = Path(__file__).resolve().parent.parent


CONFIGS = {
    name: EnvironmentConfig.from_dict(name, CONTEXT["environments"][name]) for name in ENVIRONMENTS
}

DUTY_EMAIL = "duty-officer@example.org"

# cdk-nag's findings on the stand-ins, which are built to be watched, never deployed.
STAND_IN_FINDINGS = (
    "AwsSolutions-SQS3",
    "AwsSolutions-SF1",
    "AwsSolutions-SF2",
    "AwsSolutions-L1",
    "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]",
)

# Alarm key -> (namespace, metric, statistic, dimension); each fires on 1 or more.
FAILURE_ALARMS = {
    "ExecutionsFailed": ("AWS/States", "ExecutionsFailed", "Sum", "StateMachineArn"),
    "ExecutionsTimedOut": ("AWS/States", "ExecutionsTimedOut", "Sum", "StateMachineArn"),
    "ExecutionsAborted": ("AWS/States", "ExecutionsAborted", "Sum", "StateMachineArn"),
    "DeadLetterQueueDepth": (
        "AWS/SQS",
        "ApproximateNumberOfMessagesVisible",
        "Maximum",
        "QueueName",
    ),
    "IngestErrors": ("AWS/Lambda", "Errors", "Sum", "FunctionName"),
    "IngestThrottles": ("AWS/Lambda", "Throttles", "Sum", "FunctionName"),
}


class PipelineStandIn(Stack):
    """A key, a dead-letter queue, a one-state state machine and an inline Lambda."""

    def __init__(self, scope: Stage, id: str) -> None:
        super().__init__(scope, id)
        self.key = kms.Key(self, "DataKey", enable_key_rotation=True)
        self.dead_letter_queue = sqs.Queue(
            self,
            "IngestDeadLetters",
            encryption=sqs.QueueEncryption.KMS,
            encryption_master_key=self.key,
            enforce_ssl=True,
        )
        self.state_machine = stepfunctions.StateMachine(
            self,
            "Pipeline",
            definition_body=stepfunctions.DefinitionBody.from_chainable(
                stepfunctions.Pass(self, "Run")
            ),
        )
        self.ingest_function = lambda_.Function(
            self,
            "Ingest",
            runtime=lambda_.Runtime.PYTHON_3_13,
            handler="index.handler",
            code=lambda_.Code.from_inline("def handler(event, context):\n    return event\n"),
        )
        Validations.of(self).acknowledge(
            *(
                Acknowledgment(
                    id=f"AwsSolutions::{finding}",
                    reason="test stand-in for the pipeline stack; only watched, never deployed",
                )
                for finding in STAND_IN_FINDINGS
            )
        )


def glue_job_names(config: EnvironmentConfig) -> list[str]:
    return [f"{config.name_prefix}-scrub", f"{config.name_prefix}-match"]


def build(
    configs: list[EnvironmentConfig], outdir: Path | None = None, with_glue_jobs: bool = True
) -> tuple[App, dict[str, MonitoringStack]]:
    app = App(outdir=str(outdir) if outdir else None)
    monitoring = {}
    for config in configs:
        stage = Stage(
            app,
            f"Veracity-{config.name}",
            env=Environment(account=config.account, region=config.region),
        )
        pipeline = PipelineStandIn(stage, "Pipeline")
        monitoring[config.name] = MonitoringStack(
            stage,
            "Monitoring",
            config=config,
            glue_job_names=glue_job_names(config) if with_glue_jobs else [],
            state_machine=pipeline.state_machine,
            dead_letter_queue=pipeline.dead_letter_queue,
            ingest_function=pipeline.ingest_function,
        )
    Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    return app, monitoring


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> tuple[App, dict[str, MonitoringStack], Path]:
    outdir = tmp_path_factory.mktemp("cdk.out")
    app, monitoring = build(list(CONFIGS.values()), outdir)
    return app, monitoring, outdir


@pytest.fixture(scope="module")
def stacks(built) -> dict[str, MonitoringStack]:
    return built[1]


@pytest.fixture(scope="module")
def templates(stacks) -> dict[str, dict]:
    return {name: Template.from_stack(stack).to_json() for name, stack in stacks.items()}


@pytest.fixture(scope="module")
def cloud_assembly(built) -> Path:
    app, _, outdir = built
    with contextlib.suppress(RuntimeError):  # test_cdk_nag reads the report
        app.synth()
    return outdir


def resources(template: dict, kind: str) -> dict[str, dict]:
    return {k: r for k, r in template["Resources"].items() if r["Type"] == kind}


def logical_id(construct) -> str:
    return Stack.of(construct).get_logical_id(construct.node.default_child)


def props(template: dict, construct) -> dict:
    return template["Resources"][logical_id(construct)]["Properties"]


def test_the_alarms_are_those_expected(stacks):
    for stack in stacks.values():
        assert set(stack.alarms) == {*FAILURE_ALARMS, "StaleData"}


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_topic_is_kms_encrypted_with_a_rotating_key_and_tls_only(stacks, templates, env):
    stack, template = stacks[env], templates[env]
    topic = props(template, stack.topic)
    assert topic["KmsMasterKeyId"] == {"Fn::GetAtt": [logical_id(stack.topic_key), "Arn"]}
    assert topic["TopicName"] == f"{CONFIGS[env].name_prefix}-alarms"
    assert props(template, stack.topic_key)["EnableKeyRotation"] is True
    [policy] = resources(template, "AWS::SNS::TopicPolicy").values()
    assert {
        "Action": "sns:Publish",
        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
        "Effect": "Deny",
        "Principal": "*",
        "Resource": {"Ref": logical_id(stack.topic)},
        "Sid": "AllowPublishThroughSSLOnly",
    } in policy["Properties"]["PolicyDocument"]["Statement"]


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_key_lets_cloudwatch_and_eventbridge_encrypt_for_this_topic_only(stacks, templates, env):
    statements = props(templates[env], stacks[env].topic_key)["KeyPolicy"]["Statement"]
    by_service = {
        s["Principal"]["Service"]: s for s in statements if "Service" in s.get("Principal", {})
    }
    assert set(by_service) == {"cloudwatch.amazonaws.com", "events.amazonaws.com"}
    for statement in by_service.values():
        assert statement["Action"] == ["kms:Decrypt", "kms:GenerateDataKey"]
        topic_arn = statement["Condition"]["StringEquals"]["kms:EncryptionContext:aws:sns:topicArn"]
        rendered = json.dumps(topic_arn)
        assert f":sns:{CONFIGS[env].region}:" in rendered
        assert f":{CONFIGS[env].name_prefix}-alarms" in rendered
    alarms = by_service["cloudwatch.amazonaws.com"]["Condition"]["ArnLike"]["aws:SourceArn"]
    assert f":alarm:{CONFIGS[env].name_prefix}-*" in json.dumps(alarms)
    # Apart from these, only the account's own administrative statement.
    assert len(statements) == 3


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_topic_admits_only_this_stacks_alarms_and_rule(stacks, templates, env):
    stack, template = stacks[env], templates[env]
    [policy] = resources(template, "AWS::SNS::TopicPolicy").values()
    allows = {
        s["Principal"]["Service"]: s
        for s in policy["Properties"]["PolicyDocument"]["Statement"]
        if s["Effect"] == "Allow"
    }
    assert set(allows) == {"cloudwatch.amazonaws.com", "events.amazonaws.com"}
    alarms = allows["cloudwatch.amazonaws.com"]["Condition"]["ArnLike"]["aws:SourceArn"]
    assert f":alarm:{CONFIGS[env].name_prefix}-*" in json.dumps(alarms)
    assert allows["events.amazonaws.com"]["Condition"] == {
        "ArnEquals": {"aws:SourceArn": {"Fn::GetAtt": [logical_id(stack.glue_failure_rule), "Arn"]}}
    }


@pytest.mark.parametrize("env", ENVIRONMENTS)
@pytest.mark.parametrize("alarm", FAILURE_ALARMS)
def test_failure_alarm_fires_on_one_and_tells_the_topic(stacks, templates, env, alarm):
    stack = stacks[env]
    namespace, metric, statistic, dimension = FAILURE_ALARMS[alarm]
    found = props(templates[env], stack.alarms[alarm])
    assert found["AlarmName"].startswith(f"{CONFIGS[env].name_prefix}-")
    assert (found["Namespace"], found["MetricName"], found["Statistic"]) == (
        namespace,
        metric,
        statistic,
    )
    assert [d["Name"] for d in found["Dimensions"]] == [dimension]
    assert found["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
    assert found["Threshold"] == 1
    assert found["TreatMissingData"] == "notBreaching"
    assert found["AlarmActions"] == [{"Ref": logical_id(stack.topic)}]


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_stale_data_alarm_covers_stale_after_hours_and_missing_data_breaches(
    stacks, templates, env
):
    stack = stacks[env]
    found = props(templates[env], stack.alarms["StaleData"])
    assert (found["Namespace"], found["MetricName"], found["Statistic"]) == (
        "AWS/States",
        "ExecutionsSucceeded",
        "Sum",
    )
    assert found["ComparisonOperator"] == "LessThanThreshold"
    assert found["Threshold"] == 1
    assert found["TreatMissingData"] == "breaching"
    # Every period in the window must breach, and the window is stale_after_hours.
    assert found["DatapointsToAlarm"] == found["EvaluationPeriods"]
    assert found["Period"] * found["EvaluationPeriods"] == CONFIGS[env].stale_after_hours * 3600
    # CloudWatch's limit on an alarm's evaluation range for periods of an hour or more.
    assert found["Period"] >= 3600 and found["Period"] * found["EvaluationPeriods"] <= 7 * 86400
    assert found["AlarmActions"] == [{"Ref": logical_id(stack.topic)}]


def test_a_stale_window_cloudwatch_cannot_evaluate_is_refused():
    too_long = EnvironmentConfig.from_dict(
        "dev", {**CONTEXT["environments"]["dev"], "stale_after_hours": 7 * 24 + 1}
    )
    with pytest.raises(ValueError, match="stale_after_hours=169"):
        build([too_long])


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_glue_failure_rule_names_the_jobs_and_tells_the_topic(stacks, templates, env):
    stack = stacks[env]
    rule = props(templates[env], stack.glue_failure_rule)
    assert rule["EventPattern"] == {
        "source": ["aws.glue"],
        "detail-type": ["Glue Job State Change"],
        "detail": {
            "state": ["FAILED", "TIMEOUT", "ERROR"],
            "jobName": glue_job_names(CONFIGS[env]),
        },
    }
    [target] = rule["Targets"]
    assert target["Arn"] == {"Ref": logical_id(stack.topic)}
    transformer = target["InputTransformer"]
    assert transformer["InputPathsMap"]["detail-jobName"] == "$.detail.jobName"
    assert "Glue job <detail-jobName>" in transformer["InputTemplate"]


def test_without_glue_jobs_there_is_no_rule():
    [stack] = build([CONFIGS["dev"]], with_glue_jobs=False)[1].values()
    assert stack.glue_failure_rule is None
    assert resources(Template.from_stack(stack).to_json(), "AWS::Events::Rule") == {}


def test_email_subscriptions_follow_alarm_emails(templates):
    for env in ENVIRONMENTS:  # cdk.json lists no addresses yet
        assert CONFIGS[env].alarm_emails == ()
        assert resources(templates[env], "AWS::SNS::Subscription") == {}
    with_email = EnvironmentConfig.from_dict(
        "test", {**CONTEXT["environments"]["test"], "alarm_emails": [DUTY_EMAIL]}
    )
    [stack] = build([with_email])[1].values()
    template = Template.from_stack(stack).to_json()
    [subscription] = resources(template, "AWS::SNS::Subscription").values()
    assert subscription["Properties"] == {
        "Endpoint": DUTY_EMAIL,
        "Protocol": "email",
        "TopicArn": {"Ref": logical_id(stack.topic)},
    }


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_dashboard_graphs_runs_queue_lambda_glue_and_alarm_states(stacks, templates, env):
    dashboard = props(templates[env], stacks[env].dashboard)
    assert dashboard["DashboardName"] == f"{CONFIGS[env].name_prefix}-pipeline"
    body = "".join(
        part for part in dashboard["DashboardBody"]["Fn::Join"][1] if isinstance(part, str)
    )
    for shown in (
        '"ExecutionsSucceeded"',
        '"ExecutionsFailed"',
        '"ApproximateNumberOfMessagesVisible"',
        '"Invocations"',
        '"Errors"',
        '"Duration"',
        '"TriggeredRules"',
        '"type":"alarm"',
    ):
        assert shown in body, shown


def test_cdk_nag_reports_no_unacknowledged_errors(cloud_assembly):
    report = json.loads((cloud_assembly / "validation-report.json").read_text())
    errors = nag_errors(cloud_assembly)
    assert errors == []
    # Only the stand-ins needed acknowledging; the monitoring stack needs none.
    acknowledged = {
        v["acknowledgedAt"]
        for plugin in report["pluginReports"]
        for v in plugin["suppressedViolations"]
    }
    assert acknowledged == {f"Veracity-{env}/Pipeline" for env in ENVIRONMENTS}


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_monitoring_template_passes_cfn_lint(stacks, cloud_assembly, env):
    stack = stacks[env]
    template = cloud_assembly / f"assembly-Veracity-{env}" / stack.template_file
    assert lint_findings(template, [CONFIGS[env].region]) == []
