from __future__ import annotations

from pathlib import Path

import pytest

from maaskit.errors import SettingsError
from maaskit.settings import Settings


def test_settings_read_every_field_from_the_environment() -> None:
    settings = Settings.from_env(
        {
            "MAASKIT_BUCKET": "models-bucket",
            "MAASKIT_MODEL_CACHE_MB": "64",
            "MAASKIT_CACHE_DIR": "/tmp/elsewhere",
            "MAASKIT_DISK_CACHE_MB": "100",
            "MAASKIT_ALIAS_TTL_SECONDS": "2.5",
            "MAASKIT_INTRA_OP_THREADS": "3",
            "MAASKIT_MAX_REQUEST_MB": "1",
            "MAASKIT_MAX_MODEL_MB": "10",
            "MAASKIT_BATCH_SIZE": "256",
            "MAASKIT_BATCH_CHUNK_KB": "64",
            "MAASKIT_BATCH_PART_MB": "16",
            "MAASKIT_BATCH_MAX_LISTED_FAILURES": "10",
        }
    )
    assert settings == Settings(
        bucket="models-bucket",
        model_cache_bytes=64 * 1024 * 1024,
        cache_dir=Path("/tmp/elsewhere"),
        disk_cache_bytes=100 * 1024 * 1024,
        alias_ttl_seconds=2.5,
        intra_op_threads=3,
        max_request_bytes=1024 * 1024,
        max_model_bytes=10 * 1024 * 1024,
        batch_size=256,
        batch_chunk_bytes=64 * 1024,
        batch_part_bytes=16 * 1024 * 1024,
        batch_max_listed_failures=10,
    )


def test_missing_bucket_is_refused_at_cold_start() -> None:
    with pytest.raises(SettingsError, match="MAASKIT_BUCKET"):
        Settings.from_env({})


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("MAASKIT_MODEL_CACHE_MB", "lots", "must be an integer"),
        ("MAASKIT_MODEL_CACHE_MB", "0", "must be >= 1"),
        ("MAASKIT_ALIAS_TTL_SECONDS", "soon", "must be a number"),
        ("MAASKIT_ALIAS_TTL_SECONDS", "-1", "must be >= 0"),
    ],
)
def test_bad_values_name_the_variable(name: str, value: str, message: str) -> None:
    with pytest.raises(SettingsError, match=f"{name} {message}"):
        Settings.from_env({"MAASKIT_BUCKET": "b", name: value})


def test_batch_parts_below_the_s3_minimum_are_refused() -> None:
    with pytest.raises(SettingsError, match="MAASKIT_BATCH_PART_MB must be >= 5"):
        Settings.from_env({"MAASKIT_BUCKET": "b", "MAASKIT_BATCH_PART_MB": "4"})


def test_serving_and_telemetry_settings() -> None:
    # Given a deployment that preloads two models, with Powertools' variables set
    settings = Settings.from_env(
        {
            "MAASKIT_BUCKET": "b",
            "MAASKIT_PRELOAD_MODELS": " iris@production, minilm@3 ,digits",
            "POWERTOOLS_SERVICE_NAME": "api",
            "POWERTOOLS_LOG_LEVEL": "warning",
            "POWERTOOLS_METRICS_DISABLED": "true",
            "AWS_LAMBDA_FUNCTION_NAME": "maaskit-api",
        }
    )
    assert settings.preload_models == ("iris@production", "minilm@3", "digits")
    assert (settings.service_name, settings.log_level) == ("api", "WARNING")
    assert settings.metrics_enabled is False
    assert settings.tracing_enabled is True  # in a Lambda sandbox, unless disabled


@pytest.mark.parametrize(
    ("env", "tracing"),
    [
        ({}, False),  # not in Lambda: nothing to send segments to
        ({"AWS_LAMBDA_FUNCTION_NAME": "f", "POWERTOOLS_TRACE_DISABLED": "true"}, False),
        ({"AWS_LAMBDA_FUNCTION_NAME": "f", "AWS_SAM_LOCAL": "true"}, False),
        ({"AWS_LAMBDA_FUNCTION_NAME": "f", "POWERTOOLS_TRACE_DISABLED": "false"}, True),
    ],
)
def test_tracing_follows_powertools_rules(env: dict[str, str], tracing: bool) -> None:
    assert Settings.from_env({"MAASKIT_BUCKET": "b", **env}).tracing_enabled is tracing


@pytest.mark.parametrize("refs", ["iris@", "@3", "a@b@c"])
def test_malformed_preload_references_fail_at_cold_start(refs: str) -> None:
    with pytest.raises(SettingsError, match="MAASKIT_PRELOAD_MODELS"):
        Settings.from_env({"MAASKIT_BUCKET": "b", "MAASKIT_PRELOAD_MODELS": refs})


def test_an_unknown_log_level_fails_at_cold_start() -> None:
    with pytest.raises(SettingsError, match="POWERTOOLS_LOG_LEVEL"):
        Settings.from_env({"MAASKIT_BUCKET": "b", "POWERTOOLS_LOG_LEVEL": "LOUD"})
