"""One typed settings object, read from the environment once and validated at cold start."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from maaskit.errors import SettingsError

_MB = 1024 * 1024
# Lambda's /tmp is private to one sandbox. Elsewhere /tmp may be shared: the runtime creates
# this folder for its owner only and hashes every cached file again before it loads one.
DEFAULT_CACHE_DIR = Path("/tmp/maaskit")  # nosec B108  # see above


def _int(env: Mapping[str, str], name: str, default: int, minimum: int = 0) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"{name} must be an integer, got {raw!r}") from None
    if value < minimum:
        raise SettingsError(f"{name} must be >= {minimum}, got {value}")
    return value


def _float(env: Mapping[str, str], name: str, default: float, minimum: float = 0.0) -> float:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise SettingsError(f"{name} must be a number, got {raw!r}") from None
    if value < minimum:
        raise SettingsError(f"{name} must be >= {minimum}, got {value}")
    return value


def _flag(env: Mapping[str, str], name: str) -> bool | None:
    raw = (env.get(name) or "").strip().lower()
    if not raw:
        return None
    return raw in ("1", "true", "yes", "on", "y", "t")


def _metrics_enabled(env: Mapping[str, str]) -> bool:
    """Powertools' rule: off when disabled, or in its dev mode unless asked for."""
    disabled = _flag(env, "POWERTOOLS_METRICS_DISABLED")
    if disabled is not None:
        return not disabled
    return not _flag(env, "POWERTOOLS_DEV")


def _tracing_enabled(env: Mapping[str, str]) -> bool:
    """Powertools' rule: on in a Lambda sandbox (not SAM local) unless disabled."""
    if _flag(env, "POWERTOOLS_TRACE_DISABLED"):
        return False
    in_lambda = bool(env.get("AWS_LAMBDA_FUNCTION_NAME"))
    return in_lambda and not _flag(env, "AWS_SAM_LOCAL") and not env.get("CHALICE_LOCAL")


def _log_level(env: Mapping[str, str], name: str) -> str:
    level = (env.get(name) or "INFO").strip().upper()
    if level not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
        raise SettingsError(
            f"{name} must be DEBUG, INFO, WARNING, ERROR or CRITICAL, got {level!r}"
        )
    return level


def _model_refs(env: Mapping[str, str], name: str) -> tuple[str, ...]:
    """``a@production, b@3, c`` -> ("a@production", "b@3", "c"); refs are checked on use."""
    refs = tuple(part.strip() for part in (env.get(name) or "").split(",") if part.strip())
    for ref in refs:
        model, _, selector = ref.partition("@")
        if not model or (ref.count("@") and not selector) or ref.count("@") > 1:
            raise SettingsError(
                f"{name}: {ref!r} is not a model reference; use name, name@alias or "
                "name@version, separated by commas"
            )
    return refs


@dataclass(frozen=True)
class Settings:
    """Everything the core reads from the environment; nothing else touches ``os.environ``."""

    bucket: str
    model_cache_bytes: int = 1024 * _MB
    cache_dir: Path = DEFAULT_CACHE_DIR
    disk_cache_bytes: int = 400 * _MB  # Lambda's /tmp is 512 MB unless configured larger
    alias_ttl_seconds: float = 10.0
    intra_op_threads: int = 0  # 0: one per vCPU the sandbox has
    max_request_bytes: int = 6 * _MB
    max_model_bytes: int = 200 * _MB
    batch_size: int = 1024
    # Batch predictions from S3: how much of a file is read, and written, at a time. Memory
    # is bounded by these (and by max_request_bytes for one line), never by the file's size.
    batch_chunk_bytes: int = 8 * _MB
    batch_part_bytes: int = 8 * _MB
    batch_max_listed_failures: int = 1000
    # training: what a step keeps back from its Lambda timeout to write its checkpoint
    training_margin_ms: int = 10_000
    training_steps_per_invocation: int = 0  # 0: as many as the time allows
    training_max_dataset_bytes: int = 512 * _MB
    # serving: models a sandbox loads during init ("name", "name@alias", "name@3"), so that
    # a SnapStart snapshot holds their sessions and no first request pays for them
    preload_models: tuple[str, ...] = ()
    # telemetry (the Powertools variables, so one set of names covers every function)
    service_name: str = "maaskit"
    log_level: str = "INFO"
    metrics_namespace: str = "maaskit"
    metrics_enabled: bool = True
    tracing_enabled: bool = False

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        bucket = env.get("MAASKIT_BUCKET", "").strip()
        if not bucket:
            raise SettingsError(
                "MAASKIT_BUCKET is not set: name the S3 bucket that holds the models"
            )
        return cls(
            bucket=bucket,
            model_cache_bytes=_int(env, "MAASKIT_MODEL_CACHE_MB", 1024, minimum=1) * _MB,
            cache_dir=Path(env.get("MAASKIT_CACHE_DIR") or DEFAULT_CACHE_DIR),
            disk_cache_bytes=_int(env, "MAASKIT_DISK_CACHE_MB", 400, minimum=0) * _MB,
            alias_ttl_seconds=_float(env, "MAASKIT_ALIAS_TTL_SECONDS", 10.0),
            intra_op_threads=_int(env, "MAASKIT_INTRA_OP_THREADS", 0),
            max_request_bytes=_int(env, "MAASKIT_MAX_REQUEST_MB", 6, minimum=1) * _MB,
            max_model_bytes=_int(env, "MAASKIT_MAX_MODEL_MB", 200, minimum=1) * _MB,
            batch_size=_int(env, "MAASKIT_BATCH_SIZE", 1024, minimum=1),
            batch_chunk_bytes=_int(env, "MAASKIT_BATCH_CHUNK_KB", 8192, minimum=1) * 1024,
            # S3 refuses multipart parts under 5 MiB (all but the last), so does this setting.
            batch_part_bytes=_int(env, "MAASKIT_BATCH_PART_MB", 8, minimum=5) * _MB,
            batch_max_listed_failures=_int(env, "MAASKIT_BATCH_MAX_LISTED_FAILURES", 1000),
            training_margin_ms=_int(env, "MAASKIT_TRAINING_MARGIN_MS", 10_000),
            training_steps_per_invocation=_int(env, "MAASKIT_TRAINING_STEPS_PER_INVOCATION", 0),
            training_max_dataset_bytes=_int(env, "MAASKIT_TRAINING_MAX_DATASET_MB", 512, minimum=1)
            * _MB,
            preload_models=_model_refs(env, "MAASKIT_PRELOAD_MODELS"),
            service_name=env.get("POWERTOOLS_SERVICE_NAME") or "maaskit",
            log_level=_log_level(env, "POWERTOOLS_LOG_LEVEL"),
            metrics_namespace=env.get("POWERTOOLS_METRICS_NAMESPACE") or "maaskit",
            metrics_enabled=_metrics_enabled(env),
            tracing_enabled=_tracing_enabled(env),
        )
