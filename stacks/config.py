"""Typed per-environment config, read from the ``environments`` context in cdk.json.

Every key is checked: a missing, unknown or mistyped key fails synthesis with its
path, so no stage is ever built from a half-read config.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, fields
from typing import Any

from constructs import Node

CONTEXT_KEY = "environments"
ENVIRONMENTS = ("dev", "test", "prod")
GLUE_WORKER_TYPES = ("G.1X", "G.2X", "G.4X", "G.8X")
FEATURES = ("quicksight", "synthetic_generator")
_ACCOUNT = re.compile(r"\d{12}")
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
_ARN = re.compile(r"arn:aws[a-z-]*:[a-z0-9-]+:[a-z0-9-]*:\d{12}:\S+")


class ConfigError(ValueError):
    """The cdk.json context is missing or malformed for an environment."""


@dataclass(frozen=True)
class EnvironmentConfig:
    name: str
    region: str
    name_prefix: str
    retention_days: int  # noncurrent object versions, logs and Athena results
    object_lock: bool  # WORM landing zone: extracts can be neither changed nor deleted
    # None synthesizes an account-agnostic stage: the account comes from the
    # credentials used at deploy time, and synth needs no AWS access.
    account: str | None = None
    destroy_on_delete: bool = False  # dev only: stacks take their data with them
    deletion_protection: bool = False  # stacks and the ledger refuse deletion (prod)
    glue_worker_type: str = "G.1X"
    glue_workers: int = 2
    ingest_concurrency: int = 5  # reserved concurrency of the ingest Lambda
    schedule_hours: int = 4  # the pipeline runs at least this often, for systems that do not push
    stale_after_hours: int = 12  # alarm when no run has succeeded for this long
    athena_bytes_scanned_cutoff: int = 100 * 2**30  # per query
    alarm_emails: tuple[str, ...] = ()
    quicksight_principals: tuple[str, ...] = ()  # QuickSight user or group ARNs given the datasets
    features: frozenset[str] = field(default_factory=frozenset)

    @classmethod
    def from_dict(cls, name: str, raw: Any) -> EnvironmentConfig:
        where = f"cdk.json context {CONTEXT_KEY}.{name}"
        if not isinstance(raw, dict):
            raise ConfigError(f"{where}: expected an object, got {type(raw).__name__}")
        known = {f.name for f in fields(cls)} - {"name"}
        unknown = set(raw) - known
        if unknown:
            raise ConfigError(f"{where}: unknown keys {sorted(unknown)}")
        defaults = cls.__dataclass_fields__

        def get(key: str, kind: type, required: bool = False) -> Any:
            if key not in raw:
                if required:
                    raise ConfigError(f"{where}: missing required key {key!r}")
                default = defaults[key]
                return default.default_factory() if callable(default.default_factory) else default.default
            value = raw[key]
            # bool is a subclass of int: keep `true` out of the numbers.
            if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
                raise ConfigError(f"{where}.{key}: expected {kind.__name__}, got {value!r}")
            return value

        def positive(key: str, required: bool = False) -> int:
            value = get(key, int, required)
            if value < 1:
                raise ConfigError(f"{where}.{key}: must be at least 1, got {value}")
            return value

        def strings(key: str, pattern: re.Pattern, what: str) -> tuple[str, ...]:
            values = get(key, list)
            for value in values:
                if not isinstance(value, str) or not pattern.fullmatch(value):
                    raise ConfigError(f"{where}.{key}: expected {what}, got {value!r}")
            return tuple(values)

        account = raw.get("account")
        if account is not None and not (isinstance(account, str) and _ACCOUNT.fullmatch(account)):
            raise ConfigError(f"{where}.account: expected a 12-digit string or null, got {account!r}")
        worker_type = get("glue_worker_type", str)
        if worker_type not in GLUE_WORKER_TYPES:
            raise ConfigError(f"{where}.glue_worker_type: expected one of {list(GLUE_WORKER_TYPES)}, got {worker_type!r}")
        flags = get("features", dict) if "features" in raw else {}
        for flag, on in flags.items():
            if flag not in FEATURES or not isinstance(on, bool):
                raise ConfigError(f"{where}.features.{flag}: expected a flag of {list(FEATURES)} set true or false")
        if get("destroy_on_delete", bool) and get("deletion_protection", bool):
            raise ConfigError(f"{where}: destroy_on_delete and deletion_protection contradict each other")
        glue_workers = positive("glue_workers")
        if glue_workers < 2:
            raise ConfigError(f"{where}.glue_workers: a Glue Spark job needs at least 2 workers, got {glue_workers}")
        return cls(
            name=name,
            region=get("region", str, required=True),
            name_prefix=get("name_prefix", str, required=True),
            retention_days=positive("retention_days", required=True),
            object_lock=get("object_lock", bool, required=True),
            account=account,
            destroy_on_delete=get("destroy_on_delete", bool),
            deletion_protection=get("deletion_protection", bool),
            glue_worker_type=worker_type,
            glue_workers=glue_workers,
            ingest_concurrency=positive("ingest_concurrency"),
            schedule_hours=positive("schedule_hours"),
            stale_after_hours=positive("stale_after_hours"),
            athena_bytes_scanned_cutoff=positive("athena_bytes_scanned_cutoff"),
            alarm_emails=strings("alarm_emails", _EMAIL, "an email address"),
            quicksight_principals=strings("quicksight_principals", _ARN, "a QuickSight principal ARN"),
            features=frozenset(flag for flag, on in flags.items() if on),
        )

    @property
    def database_name(self) -> str:
        """The lake's Glue database: one per environment."""
        return self.name_prefix.replace("-", "_") + "_lake"

    def feature(self, flag: str) -> bool:
        if flag not in FEATURES:
            raise KeyError(f"unknown feature flag {flag!r}")
        return flag in self.features


def load(node: Node, name: str) -> EnvironmentConfig:
    """The config for one environment from a construct's context (normally the App's)."""
    environments = node.try_get_context(CONTEXT_KEY)
    if not isinstance(environments, dict):
        raise ConfigError(f"cdk.json context {CONTEXT_KEY!r} is missing or not an object")
    if name not in environments:
        raise ConfigError(f"cdk.json context {CONTEXT_KEY!r} has no entry for {name!r}")
    return EnvironmentConfig.from_dict(name, environments[name])
