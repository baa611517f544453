from __future__ import annotations

import pytest

from maaskit.errors import SettingsError
from maaskit.settings import Settings


def test_training_settings_have_defaults_and_read_their_variables() -> None:
    defaults = Settings.from_env({"MAASKIT_BUCKET": "b"})
    assert defaults.training_margin_ms == 10_000
    assert defaults.training_max_dataset_bytes == 512 * 1024 * 1024
    assert defaults.training_steps_per_invocation == 0
    custom = Settings.from_env(
        {
            "MAASKIT_BUCKET": "b",
            "MAASKIT_TRAINING_MARGIN_MS": "2500",
            "MAASKIT_TRAINING_MAX_DATASET_MB": "8",
            "MAASKIT_TRAINING_STEPS_PER_INVOCATION": "50",
        }
    )
    assert custom.training_steps_per_invocation == 50
    assert custom.training_margin_ms == 2500
    assert custom.training_max_dataset_bytes == 8 * 1024 * 1024


def test_a_bad_training_setting_names_its_variable() -> None:
    with pytest.raises(SettingsError, match="MAASKIT_TRAINING_MARGIN_MS"):
        Settings.from_env({"MAASKIT_BUCKET": "b", "MAASKIT_TRAINING_MARGIN_MS": "-5"})
