"""One deployable environment (dev, test or prod) of Veracity.

Stacks, in deployment order: storage (key, zone buckets) → processing (Glue jobs, state
machine, ledger, search index) → ingest (events, queue, Lambda, schedule) → catalog
(Glue tables, Lake Formation) → search (user pool, API, audit, page) → analytics
(Athena, QuickSight) → monitoring (alarms, dashboard).
Later stacks refer to earlier ones; none refers back.
"""

from __future__ import annotations

from aws_cdk import Environment, Stage, Tags
from constructs import Construct

from stacks.analytics import AnalyticsStack
from stacks.catalog import CatalogStack
from stacks.config import EnvironmentConfig
from stacks.ingest import IngestStack
from stacks.monitoring import MonitoringStack
from stacks.processing import GlueArtifacts, ProcessingStack
from stacks.search import SearchArtifacts, SearchStack
from stacks.storage import StorageStack


class VeracityStage(Stage):
    def __init__(self, scope: Construct, id: str, *, config: EnvironmentConfig, artifacts: GlueArtifacts,
                 search_artifacts: SearchArtifacts) -> None:
        super().__init__(scope, id, env=Environment(account=config.account, region=config.region))
        self.config = config
        protect = {"termination_protection": config.deletion_protection}

        def name(stack: str) -> str:
            return f"{config.name_prefix}-{stack}"

        self.storage = StorageStack(self, "Storage", config=config, stack_name=name("storage"), **protect)
        self.processing = ProcessingStack(self, "Processing", config=config, storage=self.storage, artifacts=artifacts,
                                          database_name=config.database_name, stack_name=name("processing"), **protect)
        self.ingest = IngestStack(self, "Ingest", config=config, storage=self.storage, processing=self.processing,
                                  stack_name=name("ingest"), **protect)
        self.catalog = CatalogStack(self, "Catalog", config=config, storage=self.storage,
                                    pipeline_role=self.processing.job_role, stack_name=name("catalog"), **protect)
        self.analytics = AnalyticsStack(self, "Analytics", config=config, storage=self.storage,
                                        database_name=self.catalog.database_name, stack_name=name("analytics"), **protect)
        self.search = SearchStack(self, "Search", config=config, storage=self.storage, processing=self.processing,
                                  artifacts=search_artifacts, stack_name=name("search"), **protect)
        # Its datasets read the views the catalog creates (named by string: no reference orders them).
        self.analytics.add_stack_dependency(self.catalog)
        self.monitoring = MonitoringStack(
            self, "Monitoring", config=config, glue_job_names=list(self.processing.job_names.values()),
            state_machine=self.processing.state_machine, dead_letter_queue=self.ingest.dead_letter_queue,
            ingest_function=self.ingest.function, stack_name=name("monitoring"), **protect,
        )
        Tags.of(self).add("project", "veracity")
        Tags.of(self).add("environment", config.name)
