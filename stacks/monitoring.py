"""Monitoring for one environment: alarms, a KMS-encrypted alarm topic and a dashboard.

Alarms cover failed, timed-out and aborted pipeline runs, failed Glue jobs, messages
in the ingest dead-letter queue, ingest Lambda errors and throttles, and stale data
(no successful run for ``stale_after_hours``). Every alarm, and the Glue failure
rule, publishes to one SNS topic; the topic mails ``alarm_emails``.
"""

from __future__ import annotations

import jsii
from aws_cdk import ArnFormat, Duration, RemovalPolicy, Stack
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cloudwatch_actions
from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as stepfunctions
from constructs import Construct

from stacks.config import EnvironmentConfig

# Glue's job states that mean a run did not finish its work.
GLUE_FAILED_STATES = ["FAILED", "TIMEOUT", "ERROR"]

# The stale-data alarm looks at hourly sums. CloudWatch caps an alarm's evaluation
# range (period x evaluation periods) at 7 days when the period is 1 hour or longer
# (at 1 day for shorter periods), so at most 168 hourly periods.
STALE_PERIOD = Duration.hours(1)
MAX_STALE_AFTER_HOURS = 7 * 24

# How often the failure alarms look: short enough to tell someone within minutes.
FAILURE_PERIOD = Duration.minutes(5)


class MonitoringStack(Stack):
    """Alarms and a dashboard over the pipeline, published to ``self.topic``.

    The alarm topic has a small key of its own rather than the environment's data key:
    CloudWatch and EventBridge need grants in the key's policy, and the data key's policy
    lives in the storage stack, which this stack must not rewrite.
    """

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        config: EnvironmentConfig,
        glue_job_names: list[str],
        state_machine: stepfunctions.IStateMachine,
        dead_letter_queue: sqs.IQueue,
        ingest_function: lambda_.IFunction,
        **kwargs,
    ) -> None:
        super().__init__(scope, id, **kwargs)
        if config.stale_after_hours > MAX_STALE_AFTER_HOURS:
            raise ValueError(
                f"stale_after_hours={config.stale_after_hours}: a CloudWatch alarm on hourly "
                f"periods can look back at most {MAX_STALE_AFTER_HOURS} hours"
            )
        self.config = config
        self.alarm_name_prefix = f"{config.name_prefix}-"

        self.topic_key, self.topic = self._alarm_topic()
        self.alarms: dict[str, cloudwatch.Alarm] = {}
        self._pipeline_alarms(state_machine)
        self._ingest_alarms(dead_letter_queue, ingest_function)
        self.glue_failure_rule = self._glue_failure_rule(glue_job_names)
        self.dashboard = self._dashboard(state_machine, dead_letter_queue, ingest_function)

    # -- the topic ---------------------------------------------------------------

    def _alarm_topic(self) -> tuple[kms.Key, sns.Topic]:
        config = self.config
        # A fixed topic name lets the key policy name the topic's ARN without
        # referring to the topic, which itself refers to the key (a cycle).
        topic_name = f"{config.name_prefix}-alarms"
        topic_arn = self.format_arn(
            service="sns", resource=topic_name, arn_format=ArnFormat.NO_RESOURCE_NAME
        )
        key = kms.Key(
            self,
            "AlarmTopicKey",
            description=f"{config.name_prefix}: encrypts alarm notifications",
            enable_key_rotation=True,
            # It protects only messages in flight, so dev may take it along.
            removal_policy=RemovalPolicy.DESTROY
            if config.destroy_on_delete
            else RemovalPolicy.RETAIN,
        )
        # Services that publish to an encrypted topic need the key themselves. In a
        # key policy, Resource "*" means this key and nothing else. Both grants are
        # held to this topic by SNS's encryption context.
        for_this_topic = {"kms:EncryptionContext:aws:sns:topicArn": topic_arn}
        key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="CloudWatchAlarmsPublishToAlarmTopic",
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                actions=["kms:Decrypt", "kms:GenerateDataKey"],
                resources=["*"],
                conditions={
                    "StringEquals": {**for_this_topic, "aws:SourceAccount": self.account},
                    "ArnLike": {"aws:SourceArn": self._alarm_arn_pattern()},
                },
            )
        )
        key.add_to_resource_policy(
            iam.PolicyStatement(
                # EventBridge's delivery to SNS carries no aws:SourceArn or
                # aws:SourceAccount to KMS, so the encryption context is the scope;
                # the topic policy below holds publishing to this stack's rule.
                sid="EventBridgePublishesToAlarmTopic",
                principals=[iam.ServicePrincipal("events.amazonaws.com")],
                actions=["kms:Decrypt", "kms:GenerateDataKey"],
                resources=["*"],
                conditions={"StringEquals": for_this_topic},
            )
        )

        topic = sns.Topic(
            self,
            "AlarmTopic",
            topic_name=topic_name,
            display_name=f"{config.name_prefix} alarms",
            master_key=key,
            enforce_ssl=True,
        )
        # The topic policy (made for enforce_ssl) replaces SNS's default one, so
        # CloudWatch is allowed explicitly, and only for this stack's alarms.
        topic.add_to_resource_policy(
            iam.PolicyStatement(
                sid="CloudWatchAlarmsPublish",
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                actions=["sns:Publish"],
                resources=[topic.topic_arn],
                conditions={
                    "StringEquals": {"aws:SourceAccount": self.account},
                    "ArnLike": {"aws:SourceArn": self._alarm_arn_pattern()},
                },
            )
        )
        for email in config.alarm_emails:
            topic.add_subscription(subscriptions.EmailSubscription(email))
        return key, topic

    def _alarm_arn_pattern(self) -> str:
        return self.format_arn(
            service="cloudwatch",
            resource="alarm",
            resource_name=f"{self.alarm_name_prefix}*",
            arn_format=ArnFormat.COLON_RESOURCE_NAME,
        )

    def _alarm(self, key: str, name: str, description: str, **props) -> cloudwatch.Alarm:
        alarm = cloudwatch.Alarm(
            self,
            f"{key}Alarm",
            # Named under the prefix the topic and key policies allow.
            alarm_name=f"{self.alarm_name_prefix}{name}",
            alarm_description=description,
            **props,
        )
        alarm.add_alarm_action(cloudwatch_actions.SnsAction(self.topic))
        self.alarms[key] = alarm
        return alarm

    def _any(self, key: str, name: str, description: str, metric: cloudwatch.IMetric) -> None:
        """Alarm when the metric reaches 1 in a period; no data means nothing happened."""
        self._alarm(
            key,
            name,
            description,
            metric=metric,
            threshold=1,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            evaluation_periods=1,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )

    # -- the alarms --------------------------------------------------------------

    def _pipeline_alarms(self, state_machine: stepfunctions.IStateMachine) -> None:
        self._any(
            "ExecutionsFailed",
            "pipeline-failed",
            "A pipeline run failed: see the execution in the Step Functions console.",
            state_machine.metric_failed(period=FAILURE_PERIOD, statistic="Sum"),
        )
        self._any(
            "ExecutionsTimedOut",
            "pipeline-timed-out",
            "A pipeline run timed out.",
            state_machine.metric_timed_out(period=FAILURE_PERIOD, statistic="Sum"),
        )
        self._any(
            "ExecutionsAborted",
            "pipeline-aborted",
            "A pipeline run was aborted (stopped before it finished).",
            state_machine.metric_aborted(period=FAILURE_PERIOD, statistic="Sum"),
        )
        # Stale data: no successful run in the last stale_after_hours (N). The
        # alarm reads N hourly sums and fires when all N are below 1; an hour with
        # no run has no datapoint at all, so missing data counts as breaching. One
        # success in the window clears it. Hourly periods keep the window rolling
        # and valid for any N up to CloudWatch's 7-day cap (MAX_STALE_AFTER_HOURS);
        # the price is that the alarm may fire up to an hour late.
        hours = self.config.stale_after_hours
        self._alarm(
            "StaleData",
            "stale-data",
            f"No pipeline run has succeeded in the last {hours} hours.",
            metric=state_machine.metric_succeeded(period=STALE_PERIOD, statistic="Sum"),
            threshold=1,
            comparison_operator=cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD,
            evaluation_periods=hours,
            datapoints_to_alarm=hours,
            treat_missing_data=cloudwatch.TreatMissingData.BREACHING,
        )

    def _ingest_alarms(self, queue: sqs.IQueue, function: lambda_.IFunction) -> None:
        self._any(
            "DeadLetterQueueDepth",
            "ingest-dead-letters",
            "Messages are waiting in the ingest dead-letter queue: inspect and redrive them.",
            queue.metric_approximate_number_of_messages_visible(
                period=FAILURE_PERIOD, statistic="Maximum"
            ),
        )
        self._any(
            "IngestErrors",
            "ingest-errors",
            "The ingest Lambda returned errors: see its log group.",
            function.metric_errors(period=FAILURE_PERIOD, statistic="Sum"),
        )
        # Reserved concurrency throttles bursts by design and asynchronous
        # invocations are retried, so only throttling that lasts 15 minutes (the
        # backlog is not draining) is worth a message.
        self._alarm(
            "IngestThrottles",
            "ingest-throttled",
            "The ingest Lambda has been throttled for 15 minutes: raise ingest_concurrency?",
            metric=function.metric_throttles(period=FAILURE_PERIOD, statistic="Sum"),
            threshold=1,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            evaluation_periods=3,
            datapoints_to_alarm=3,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )

    def _glue_failure_rule(self, job_names: list[str]) -> events.Rule | None:
        """Glue publishes job state changes as events, not metrics: match the failures."""
        if not job_names:  # EventBridge rejects an empty list in a pattern
            return None
        rule = events.Rule(
            self,
            "GlueJobFailed",
            description=f"{self.config.name_prefix}: a Veracity Glue job run failed",
            event_pattern=events.EventPattern(
                source=["aws.glue"],
                detail_type=["Glue Job State Change"],
                detail={"state": GLUE_FAILED_STATES, "jobName": list(job_names)},
            ),
        )
        detail = events.EventField.from_path
        message = events.RuleTargetInput.from_text(
            f"{self.config.name_prefix}: Glue job {detail('$.detail.jobName')} "
            f"run {detail('$.detail.jobRunId')} ended {detail('$.detail.state')} "
            f"at {events.EventField.time}: {detail('$.detail.message')}"
        )
        rule.add_target(_PublishToTopic(self.topic, message))
        # Only this rule may publish: the grant CDK's SnsTopic target would add
        # lets any EventBridge rule, in any account, publish to the topic.
        self.topic.add_to_resource_policy(
            iam.PolicyStatement(
                sid="GlueFailureRulePublishes",
                principals=[iam.ServicePrincipal("events.amazonaws.com")],
                actions=["sns:Publish"],
                resources=[self.topic.topic_arn],
                conditions={"ArnEquals": {"aws:SourceArn": rule.rule_arn}},
            )
        )
        return rule

    # -- the dashboard -----------------------------------------------------------

    def _dashboard(
        self,
        state_machine: stepfunctions.IStateMachine,
        queue: sqs.IQueue,
        function: lambda_.IFunction,
    ) -> cloudwatch.Dashboard:
        hourly = {"period": Duration.hours(1), "statistic": "Sum"}
        runs = cloudwatch.GraphWidget(
            title="Pipeline runs per hour",
            left=[
                state_machine.metric_succeeded(label="Succeeded", **hourly),
                state_machine.metric_failed(label="Failed", **hourly),
                state_machine.metric_timed_out(label="Timed out", **hourly),
                state_machine.metric_aborted(label="Aborted", **hourly),
            ],
            width=12,
        )
        dead_letters = cloudwatch.GraphWidget(
            title="Ingest dead-letter queue depth",
            left=[
                queue.metric_approximate_number_of_messages_visible(
                    label="Messages", statistic="Maximum"
                )
            ],
            width=12,
        )
        ingest = cloudwatch.GraphWidget(
            title="Ingest Lambda",
            left=[
                function.metric_invocations(label="Invocations", statistic="Sum"),
                function.metric_errors(label="Errors", statistic="Sum"),
                function.metric_throttles(label="Throttles", statistic="Sum"),
            ],
            right=[
                function.metric_duration(label="Duration p95", statistic="p95"),
                function.metric_duration(label="Duration max", statistic="Maximum"),
            ],
            width=12,
        )
        rows: list[list[cloudwatch.IWidget]] = [[runs, dead_letters], [ingest]]
        if self.glue_failure_rule is not None:
            # Glue's own job metrics need --enable-metrics on every job; the failure
            # rule's counts come free and say what matters here.
            rule_dims = {"RuleName": self.glue_failure_rule.rule_name}
            rows[1].append(
                cloudwatch.GraphWidget(
                    title="Glue job failures",
                    left=[
                        cloudwatch.Metric(
                            namespace="AWS/Events",
                            metric_name=metric_name,
                            dimensions_map=rule_dims,
                            label=label,
                            **hourly,
                        )
                        for metric_name, label in (
                            ("TriggeredRules", "Failed runs"),
                            ("FailedInvocations", "Notifications not delivered"),
                        )
                    ],
                    width=12,
                )
            )
        rows.append(
            [
                cloudwatch.AlarmStatusWidget(
                    title="Alarms", alarms=list(self.alarms.values()), width=24
                )
            ]
        )
        return cloudwatch.Dashboard(
            self,
            "Dashboard",
            dashboard_name=f"{self.config.name_prefix}-pipeline",
            default_interval=Duration.days(2),
            widgets=rows,
        )


@jsii.implements(events.IRuleTarget)
class _PublishToTopic:
    """An EventBridge target for the topic that, unlike CDK's SnsTopic, grants nothing:
    the caller adds a topic-policy statement scoped to its rule."""

    def __init__(self, topic: sns.ITopic, message: events.RuleTargetInput) -> None:
        self.topic = topic
        self.message = message

    def bind(self, rule: events.IRuleRef, id: str | None = None) -> events.RuleTargetConfig:
        return events.RuleTargetConfig(
            arn=self.topic.topic_arn, input=self.message, target_resource=self.topic
        )
