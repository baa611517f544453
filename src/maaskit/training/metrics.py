"""Validation metrics: loss, accuracy and macro F1, or RMSE and R2.

Macro F1 averages over the classes present in the truth or the predictions, as
scikit-learn does, so the figures can be compared with its reports.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from maaskit.training.losses import LOG_FLOOR

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


def cross_entropy(probabilities: FloatArray, labels: IntArray) -> float:
    picked = probabilities[np.arange(labels.size), labels]
    return -float(np.log(np.maximum(picked, LOG_FLOOR)).mean())


def macro_f1(labels: IntArray, predicted: IntArray) -> float:
    present = np.union1d(labels, predicted)
    size = int(present.max()) + 1
    confusion = np.bincount(labels * size + predicted, minlength=size * size).reshape(size, size)
    true_positive = np.diag(confusion)[present].astype(np.float64)
    predicted_count = confusion.sum(axis=0)[present]
    actual_count = confusion.sum(axis=1)[present]
    denominator = predicted_count + actual_count
    f1 = np.divide(
        2.0 * true_positive,
        denominator,
        out=np.zeros_like(true_positive),
        where=denominator > 0,
    )
    return float(f1.mean())


def classification_metrics(probabilities: FloatArray, labels: IntArray) -> dict[str, float]:
    predicted = probabilities.argmax(axis=1)
    return {
        "loss": cross_entropy(probabilities, labels),
        "accuracy": float((predicted == labels).mean()),
        "macro_f1": macro_f1(labels, predicted),
    }


def regression_metrics(
    predicted_std: FloatArray,
    target_std: FloatArray,
    target_mean: float,
    target_scale: float,
) -> dict[str, float]:
    """``loss`` in standardised units (what training minimises); RMSE and R2 in the data's."""
    residual = predicted_std.reshape(-1) - target_std.reshape(-1)
    loss = float(np.mean(np.square(residual)))
    truth = target_std.reshape(-1) * target_scale + target_mean
    error = residual * target_scale
    total = float(np.sum((truth - truth.mean()) ** 2))
    r2 = 1.0 - float(np.sum(error**2)) / total if total > 0 else 0.0
    return {"loss": loss, "rmse": float(np.sqrt(np.mean(error**2))), "r2": r2}
