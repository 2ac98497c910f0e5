"""One deployable environment (dev, test or prod) of Veracity."""

from __future__ import annotations

from aws_cdk import Environment, Stage, Tags
from constructs import Construct

from stacks.config import EnvironmentConfig
from stacks.storage import StorageStack


class VeracityStage(Stage):
    def __init__(self, scope: Construct, id: str, *, config: EnvironmentConfig) -> None:
        super().__init__(scope, id, env=Environment(account=config.account, region=config.region))
        self.config = config
        self.storage = StorageStack(
            self, "Storage", config=config, stack_name=f"{config.name_prefix}-storage"
        )
        Tags.of(self).add("project", "veracity")
        Tags.of(self).add("environment", config.name)
