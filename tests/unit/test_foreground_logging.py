"""What the local stack's console shows: moto's handled evaluation errors are not errors."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from maaskit.cli.foreground import MOTO_ASL_EVALUATION, configure_logging

NOISY = ("werkzeug", "botocore", "boto3", "urllib3", "s3transfer", MOTO_ASL_EVALUATION)


@pytest.fixture
def restored_levels() -> Iterator[None]:
    before = {name: logging.getLogger(name).level for name in NOISY}
    yield
    for name, level in before.items():
        logging.getLogger(name).setLevel(level)


@pytest.mark.usefixtures("restored_levels")
def test_moto_asl_evaluation_errors_are_hidden_unless_verbose() -> None:
    asl = logging.getLogger(MOTO_ASL_EVALUATION)

    configure_logging(verbose=False)
    assert not asl.isEnabledFor(logging.ERROR)
    assert logging.getLogger("botocore").isEnabledFor(logging.WARNING)

    configure_logging(verbose=True)
    assert asl.isEnabledFor(logging.ERROR)
