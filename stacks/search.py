"""Officer person search for one environment: a Cognito user pool with the officer,
analyst and admin groups; a REST API (API Gateway, Cognito authorizer, WAF) whose
Lambda answers from the serving index the publish job writes (processing stack);
the audit log in the storage stack's Object Lock bucket (an Athena table, catalog
stack); and the static page in S3 behind
CloudFront, which also routes ``/api/*`` to the API so page and API share an origin.

The Lambda's bundle is made without Docker: the handler, the core package, the source
configs and the manylinux wheels of ``requirements-search.txt`` (``make
search-wheels``) unpacked beside them, Powertools and pyarrow included, and no layer.
The search path needs no numpy or pandas, so AWS SDK for pandas' layer (204 MB) is not
used: with it no bundle holding DuckDB (66 MB) fits Lambda's 250 MB. Parts of pyarrow
the search never loads (Flight, C++ headers and tests, duplicate copies of its Python
bridge) are left out (``BUNDLE_EXCLUDES``), and a bundle over Lambda's limit stops
the synthesis.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from aws_cdk import (
    Aws,
    CfnOutput,
    Duration,
    RemovalPolicy,
    Stack,
)
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_cloudfront as cloudfront
from aws_cdk import aws_cloudfront_origins as origins
from aws_cdk import aws_cognito as cognito
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_deployment as s3_deployment
from aws_cdk import aws_ssm as ssm
from aws_cdk import aws_wafv2 as wafv2
from constructs import Construct

from stacks.config import EnvironmentConfig
from stacks.ingest import LAMBDA_UNZIPPED_LIMIT, RUNTIME, handler_code
from stacks.nag import acknowledge, acknowledge_grant_actions
from stacks.processing import ArtifactError, ProcessingStack, missing_pins
from stacks.storage import StorageStack, objects_finding, zone_bucket
from veracity.search.auth import GROUP_ACCESS
from veracity.search.server import PAGE_CONFIG, WEB_DIR

ROOT = Path(__file__).resolve().parent.parent
SEARCH_REQUIREMENTS = ROOT / "requirements-search.txt"
HANDLER_MEMORY_MB = 3008  # scoring is CPU-bound: memory buys the CPU
# Parts of the unpacked wheels the search never loads. pyarrow's extension modules need
# libarrow_python.so.<major> only; the wheel also carries it unversioned and fully
# versioned, as copies (wheels hold no symbolic links). Substrait stays: pyarrow.lib needs it.
BUNDLE_EXCLUDES = (
    "pyarrow/include", "pyarrow/src", "pyarrow/tests", "pyarrow/**/*.pxd", "pyarrow/*.pyx", "pyarrow/*.pxi",
    "pyarrow/_pyarrow_cpp_tests.*", "pyarrow/libarrow_flight.so*", "pyarrow/libarrow_python_flight.so*",
    "pyarrow/_flight.*", "pyarrow/libarrow_python.so", "pyarrow/libarrow_python.so.*.*.*",
    "pyarrow/libarrow_python_parquet_encryption.so", "pyarrow/libarrow_python_parquet_encryption.so.*.*.*",
    "splink/internals/files/spark_jars",
)
HANDLER_TIMEOUT = Duration.seconds(29)  # API Gateway's integration limit
SEARCH_RATE_PER_5_MINUTES = 600  # per client address, at the WAF


@dataclass(frozen=True)
class SearchArtifacts:
    """The wheelhouse of the search Lambda: every pin of requirements-search.txt."""

    wheels_dir: Path

    @classmethod
    def checked(cls, wheels_dir: Path) -> SearchArtifacts:
        if not wheels_dir.is_dir():
            raise ArtifactError(f"no search wheelhouse at {wheels_dir}: build it with `make search-wheels`")
        missing = missing_pins(wheels_dir, SEARCH_REQUIREMENTS)
        if missing:
            raise ArtifactError(f"the search wheelhouse {wheels_dir} lacks {', '.join(missing)}: "
                                "rebuild it with `make search-wheels`")
        return cls(wheels_dir)


class SearchStack(Stack):
    def __init__(self, scope: Construct, id: str, *, config: EnvironmentConfig, storage: StorageStack,
                 processing: ProcessingStack, artifacts: SearchArtifacts, **kwargs) -> None:
        super().__init__(scope, id, **kwargs)
        prefix = config.name_prefix
        removal = RemovalPolicy.DESTROY if config.destroy_on_delete else RemovalPolicy.RETAIN

        # -- who: users in groups, strong sign-in ---------------------------------------
        self.user_pool = cognito.UserPool(
            self, "Users", user_pool_name=f"{prefix}-search-users", self_sign_up_enabled=False,
            sign_in_aliases=cognito.SignInAliases(username=True, email=True),
            mfa=cognito.Mfa.REQUIRED, mfa_second_factor=cognito.MfaSecondFactor(otp=True, sms=False),
            password_policy=cognito.PasswordPolicy(min_length=14, require_lowercase=True, require_uppercase=True,
                                                   require_digits=True, require_symbols=True,
                                                   temp_password_validity=Duration.days(3)),
            account_recovery=cognito.AccountRecovery.EMAIL_ONLY,
            feature_plan=cognito.FeaturePlan.PLUS,
            standard_threat_protection_mode=cognito.StandardThreatProtectionMode.FULL_FUNCTION,
            deletion_protection=config.deletion_protection, removal_policy=removal,
        )
        for group in GROUP_ACCESS:
            cognito.CfnUserPoolGroup(self, f"Group{group.title()}", user_pool_id=self.user_pool.user_pool_id,
                                     group_name=group, description=f"Person search: {group}s ({', '.join(GROUP_ACCESS[group])} fields)")

        # -- the page: S3 behind CloudFront -----------------------------------------------
        web_bucket = s3.Bucket(
            self, "Web", encryption=s3.BucketEncryption.S3_MANAGED, enforce_ssl=True,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL, versioned=True,
            server_access_logs_bucket=storage.access_logs, server_access_logs_prefix="search-web/",
            removal_policy=removal, auto_delete_objects=config.destroy_on_delete,
        )

        # -- the audit log: append-only (the storage stack's Object Lock bucket) -------------
        audit_bucket = zone_bucket(self, config, "SearchAudit")

        # -- the API ------------------------------------------------------------------------
        log_group = logs.LogGroup(self, "HandlerLogs", removal_policy=removal,
                                  retention=logs.RetentionDays.ONE_MONTH if config.destroy_on_delete
                                  else logs.RetentionDays.ONE_YEAR)
        role = iam.Role(self, "HandlerRole", assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
                        description=f"{prefix}: the person search Lambda")
        log_group.grant_write(role)
        # The page's client is made after CloudFront (its callback is the page's address);
        # the Lambda reads its id from this parameter, so neither waits on the other.
        client_parameter = f"/{prefix}/search/page-client-id"
        self.function = lambda_.Function(
            self, "Handler", function_name=f"{prefix}-search", runtime=RUNTIME, handler="handler.lambda_handler",
            code=handler_code("search", artifacts.wheels_dir, BUNDLE_EXCLUDES, LAMBDA_UNZIPPED_LIMIT),
            role=role, timeout=HANDLER_TIMEOUT, memory_size=HANDLER_MEMORY_MB,
            environment={
                "VERACITY_LAKE": processing.lake_uri,
                "SEARCH_TABLE": processing.search_index.table_name,
                "AUDIT_LAKE": f"s3://{audit_bucket.bucket_name}",
                "USER_POOL_ID": self.user_pool.user_pool_id,
                "USER_POOL_CLIENT_PARAMETER": client_parameter,
                "POWERTOOLS_SERVICE_NAME": "veracity-search",
            },
            environment_encryption=storage.key, tracing=lambda_.Tracing.ACTIVE, log_group=log_group,
        )
        role.add_to_policy(iam.PolicyStatement(actions=["ssm:GetParameter"], resources=[
            f"arn:{Aws.PARTITION}:ssm:{Aws.REGION}:{Aws.ACCOUNT_ID}:parameter{client_parameter}"]))
        processing.search_index.grant_read_data(role)
        zone_bucket(self, config, "Curated").grant_read(role, "models/*")  # the trained model the index names
        audit_bucket.grant_put(role)
        storage.key.grant_encrypt_decrypt(role)

        access_logs = logs.LogGroup(self, "ApiAccessLogs", removal_policy=removal,
                                    retention=logs.RetentionDays.ONE_YEAR)
        self.api = apigw.RestApi(
            self, "Api", rest_api_name=f"{prefix}-search", description="Officer person search",
            endpoint_types=[apigw.EndpointType.REGIONAL], cloud_watch_role=False,
            deploy_options=apigw.StageOptions(
                stage_name="api", tracing_enabled=True, logging_level=apigw.MethodLoggingLevel.ERROR,
                data_trace_enabled=False, throttling_rate_limit=50, throttling_burst_limit=100,
                access_log_destination=apigw.LogGroupLogDestination(access_logs),
                access_log_format=apigw.AccessLogFormat.json_with_standard_fields(
                    caller=False, http_method=True, ip=True, protocol=True, request_time=True, resource_path=True,
                    response_length=True, status=True, user=True)),
        )
        authorizer = apigw.CognitoUserPoolsAuthorizer(self, "Authorizer", cognito_user_pools=[self.user_pool])
        validator = self.api.add_request_validator("Requests", validate_request_parameters=True,
                                                   validate_request_body=True)
        integration = apigw.LambdaIntegration(self.function)
        method = {"authorizer": authorizer, "authorization_type": apigw.AuthorizationType.COGNITO,
                  "request_validator": validator}
        persons = self.api.root.add_resource("api").add_resource("persons")
        persons.add_resource("search").add_method("GET", integration, **method, request_parameters={
            "method.request.querystring.purpose": True, "method.request.header.Authorization": True})
        persons.add_resource("{person_id}").add_method("GET", integration, **method, request_parameters={
            "method.request.querystring.purpose": True, "method.request.path.person_id": True,
            "method.request.header.Authorization": True})

        waf = wafv2.CfnWebACL(
            self, "ApiFirewall", scope="REGIONAL", default_action=wafv2.CfnWebACL.DefaultActionProperty(allow={}),
            visibility_config=_visibility(f"{prefix}-search-api"),
            rules=[
                _managed_rule("AWSManagedRulesCommonRuleSet", 0),
                _managed_rule("AWSManagedRulesKnownBadInputsRuleSet", 1),
                wafv2.CfnWebACL.RuleProperty(
                    name="rate-per-address", priority=2, action=wafv2.CfnWebACL.RuleActionProperty(block={}),
                    statement=wafv2.CfnWebACL.StatementProperty(rate_based_statement=wafv2.CfnWebACL.RateBasedStatementProperty(
                        limit=SEARCH_RATE_PER_5_MINUTES, aggregate_key_type="IP")),
                    visibility_config=_visibility("rate-per-address")),
            ],
        )
        wafv2.CfnWebACLAssociation(self, "ApiFirewallAssociation", web_acl_arn=waf.attr_arn,
                                   resource_arn=self.api.deployment_stage.stage_arn)

        # -- CloudFront: the page, and /api/* to the API ------------------------------------
        # Officers sign in on Cognito's managed login (authorization code with PKCE).
        domain = self.user_pool.add_domain("SignIn", cognito_domain=cognito.CognitoDomainOptions(
            domain_prefix=f"{prefix}-search-{Aws.ACCOUNT_ID}"))
        sign_in_url = domain.base_url()
        headers = cloudfront.ResponseHeadersPolicy(
            self, "PageHeaders", response_headers_policy_name=f"{prefix}-search-page",
            security_headers_behavior=cloudfront.ResponseSecurityHeadersBehavior(
                content_security_policy=cloudfront.ResponseHeadersContentSecurityPolicy(
                    content_security_policy="default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; "
                                            f"base-uri 'none'; form-action 'self'; connect-src 'self' {sign_in_url}",
                    override=True),
                content_type_options=cloudfront.ResponseHeadersContentTypeOptions(override=True),
                frame_options=cloudfront.ResponseHeadersFrameOptions(frame_option=cloudfront.HeadersFrameOption.DENY, override=True),
                referrer_policy=cloudfront.ResponseHeadersReferrerPolicy(
                    referrer_policy=cloudfront.HeadersReferrerPolicy.NO_REFERRER, override=True),
                strict_transport_security=cloudfront.ResponseHeadersStrictTransportSecurity(
                    access_control_max_age=Duration.days(730), include_subdomains=True, override=True),
            ),
        )
        self.distribution = cloudfront.Distribution(
            self, "Page", comment=f"{prefix}: person search", default_root_object="index.html",
            minimum_protocol_version=cloudfront.SecurityPolicyProtocol.TLS_V1_2_2021,
            http_version=cloudfront.HttpVersion.HTTP2_AND_3,
            enable_logging=True, log_bucket=storage.access_logs, log_file_prefix="search-cdn/",
            default_behavior=cloudfront.BehaviorOptions(
                origin=origins.S3BucketOrigin.with_origin_access_control(web_bucket),
                viewer_protocol_policy=cloudfront.ViewerProtocolPolicy.REDIRECT_TO_HTTPS,
                response_headers_policy=headers),
            additional_behaviors={"/api/*": cloudfront.BehaviorOptions(
                origin=origins.RestApiOrigin(self.api, origin_path=""),
                viewer_protocol_policy=cloudfront.ViewerProtocolPolicy.HTTPS_ONLY,
                allowed_methods=cloudfront.AllowedMethods.ALLOW_GET_HEAD,
                cache_policy=cloudfront.CachePolicy.CACHING_DISABLED,
                origin_request_policy=cloudfront.OriginRequestPolicy.ALL_VIEWER_EXCEPT_HOST_HEADER)},
        )
        page_url = f"https://{self.distribution.distribution_domain_name}/"
        self.client = self.user_pool.add_client(
            "Page", user_pool_client_name=f"{prefix}-search-page", generate_secret=False,
            auth_flows=cognito.AuthFlow(user_srp=True),
            o_auth=cognito.OAuthSettings(flows=cognito.OAuthFlows(authorization_code_grant=True),
                                         scopes=[cognito.OAuthScope.OPENID], callback_urls=[page_url],
                                         logout_urls=[page_url]),
            access_token_validity=Duration.hours(1), id_token_validity=Duration.hours(1),
            refresh_token_validity=Duration.hours(12), prevent_user_existence_errors=True,
        )
        ssm.StringParameter(self, "PageClientId", parameter_name=client_parameter,
                            string_value=self.client.user_pool_client_id,
                            description="The search page's Cognito client, whose tokens the search Lambda accepts")
        s3_deployment.BucketDeployment(self, "PageFiles", sources=[
            s3_deployment.Source.asset(str(WEB_DIR)),
            s3_deployment.Source.json_data(PAGE_CONFIG, {"sign_in": "cognito", "authority": sign_in_url,
                                                         "client_id": self.client.user_pool_client_id,
                                                         "redirect_uri": page_url}),
        ], destination_bucket=web_bucket, distribution=self.distribution, distribution_paths=["/*"])
        provider = next(c for c in self.node.children if c.node.id.startswith("Custom::CDKBucketDeployment"))
        web_objects = f"<{self.get_logical_id(web_bucket.node.default_child)}.Arn>/*"
        assets = f"arn:<AWS::Partition>:s3:::cdk-hnb659fds-assets-<AWS::AccountId>-{config.region}/*"
        for finding in (f"Resource::{web_objects}", f"Resource::{assets}", "Resource::*"):
            acknowledge(provider, f"AwsSolutions-IAM5[{finding}]", "CDK's BucketDeployment provider reads its asset, "
                        "writes the page's files into the page bucket and invalidates the distribution "
                        "(CloudFront's CreateInvalidation is granted on every distribution by CDK).")
        acknowledge_grant_actions(provider, "CDK's BucketDeployment provider on its asset and the page bucket")
        CfnOutput(self, "PageUrl", value=f"https://{self.distribution.distribution_domain_name}/")
        CfnOutput(self, "UserPoolId", value=self.user_pool.user_pool_id)

        # -- findings, each with its reason ---------------------------------------------------
        acknowledge(role, "AwsSolutions-IAM5[Resource::*]", "X-Ray's PutTraceSegments and PutTelemetryRecords take no resource.")
        acknowledge(role, objects_finding(config, "Curated").replace("/*]", "/models/*]"),
                    "The Lambda reads the trained model the serving index names, under the curated bucket's models/ folder.")
        acknowledge(role, objects_finding(config, "SearchAudit"),
                    "The Lambda writes one new audit object per request, under keys it derives from the time and request id.")
        acknowledge_grant_actions(role, "CDK's grants to the search Lambda on the model, audit bucket and data key")
        acknowledge(self.function, "AwsSolutions-L1", "Python 3.13, the runtime of the ingest Lambda's published "
                    "layers; the search wheelhouse is built for it (`make search-wheels`): move them together.")
        acknowledge(self.distribution, "AwsSolutions-CFR1", "The page serves officers anywhere in the UK and on "
                    "mutual aid; the user pool, not geography, decides who may search.")
        acknowledge(self.distribution, "AwsSolutions-CFR2", "CloudFront's WAF must live in us-east-1; the API's "
                    "own regional WAF (managed rules, rate limit) guards every data request, the page is static.")
        acknowledge(self.distribution, "AwsSolutions-CFR4", "Without a custom domain CloudFront's default "
                    "certificate sets the viewer TLS floor; give the distribution a domain and certificate to "
                    "enforce TLSv1.2_2021.")
        acknowledge(self, "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/"
                    "AWSLambdaBasicExecutionRole]", "CDK's BucketDeployment provider logs with the basic execution "
                    "policy; it is CDK's code, not ours to change.")
        acknowledge(self, "AwsSolutions-L1", "CDK's BucketDeployment provider picks its own runtime with each CDK release.")
        self.api_url = f"https://{self.api.rest_api_id}.execute-api.{Aws.REGION}.{Aws.URL_SUFFIX}/api/"


def _visibility(name: str) -> wafv2.CfnWebACL.VisibilityConfigProperty:
    return wafv2.CfnWebACL.VisibilityConfigProperty(cloud_watch_metrics_enabled=True, metric_name=name,
                                                    sampled_requests_enabled=True)


def _managed_rule(name: str, priority: int) -> wafv2.CfnWebACL.RuleProperty:
    return wafv2.CfnWebACL.RuleProperty(
        name=name, priority=priority, override_action=wafv2.CfnWebACL.OverrideActionProperty(none={}),
        statement=wafv2.CfnWebACL.StatementProperty(managed_rule_group_statement=wafv2.CfnWebACL.ManagedRuleGroupStatementProperty(
            vendor_name="AWS", name=name)),
        visibility_config=_visibility(name))
