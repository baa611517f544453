"""Errors a training run can end with, beyond the shared ones in ``maaskit.errors``.

Their class names become Step Functions error names, so they stay stable.
"""

from __future__ import annotations

from maaskit.errors import InvalidRequest


class TrainingDiverged(InvalidRequest):
    """The loss became NaN or infinite: the hyper-parameters, not the code, need changing."""
