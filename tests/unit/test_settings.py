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
