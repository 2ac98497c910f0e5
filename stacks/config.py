"""Typed per-environment config, read from the ``environments`` context in cdk.json."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from constructs import Node

CONTEXT_KEY = "environments"
ENVIRONMENTS = ("dev", "test", "prod")


class ConfigError(ValueError):
    """The cdk.json context is missing or malformed for an environment."""


@dataclass(frozen=True)
class EnvironmentConfig:
    name: str
    region: str
    name_prefix: str
    retention_days: int
    object_lock: bool
    # None synthesizes an account-agnostic stage: the account comes from the
    # credentials used at deploy time, and synth needs no AWS access.
    account: str | None = None

    @classmethod
    def from_dict(cls, name: str, raw: Any) -> EnvironmentConfig:
        where = f"cdk.json context {CONTEXT_KEY}.{name}"
        if not isinstance(raw, dict):
            raise ConfigError(f"{where}: expected an object, got {type(raw).__name__}")
        unknown = set(raw) - {"region", "name_prefix", "retention_days", "object_lock", "account"}
        if unknown:
            raise ConfigError(f"{where}: unknown keys {sorted(unknown)}")

        def need(key: str, kind: type) -> Any:
            if key not in raw:
                raise ConfigError(f"{where}: missing required key {key!r}")
            value = raw[key]
            # bool is a subclass of int: keep `true` out of retention_days.
            if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
                raise ConfigError(f"{where}.{key}: expected {kind.__name__}, got {value!r}")
            return value

        account = raw.get("account")
        if account is not None and not (
            isinstance(account, str) and re.fullmatch(r"\d{12}", account)
        ):
            raise ConfigError(
                f"{where}.account: expected a 12-digit string or null, got {account!r}"
            )
        retention_days = need("retention_days", int)
        if retention_days < 1:
            raise ConfigError(f"{where}.retention_days: must be at least 1, got {retention_days}")
        return cls(
            name=name,
            region=need("region", str),
            name_prefix=need("name_prefix", str),
            retention_days=retention_days,
            object_lock=need("object_lock", bool),
            account=account,
        )


def load(node: Node, name: str) -> EnvironmentConfig:
    """The config for one environment from a construct's context (normally the App's)."""
    environments = node.try_get_context(CONTEXT_KEY)
    if not isinstance(environments, dict):
        raise ConfigError(f"cdk.json context {CONTEXT_KEY!r} is missing or not an object")
    if name not in environments:
        raise ConfigError(f"cdk.json context {CONTEXT_KEY!r} has no entry for {name!r}")
    return EnvironmentConfig.from_dict(name, environments[name])
