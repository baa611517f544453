from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, f1_score, log_loss, mean_squared_error, r2_score

from maaskit.training.metrics import classification_metrics, macro_f1, regression_metrics


def test_classification_metrics_agree_with_scikit_learn() -> None:
    # Given random probabilities over 4 classes, one of them never predicted
    rng = np.random.default_rng(3)
    probabilities = rng.dirichlet(np.ones(4), size=50)
    probabilities[:, 3] = 0.0
    probabilities /= probabilities.sum(axis=1, keepdims=True)
    labels = rng.integers(0, 4, size=50)
    # When our metrics are computed
    ours = classification_metrics(probabilities, labels)
    # Then they equal scikit-learn's
    predicted = probabilities.argmax(axis=1)
    assert ours["accuracy"] == pytest.approx(accuracy_score(labels, predicted))
    assert ours["macro_f1"] == pytest.approx(
        f1_score(labels, predicted, average="macro", zero_division=0)
    )


def test_cross_entropy_agrees_with_scikit_learn() -> None:
    rng = np.random.default_rng(4)
    probabilities = rng.dirichlet(np.ones(3), size=40)
    labels = rng.integers(0, 3, size=40)
    ours = classification_metrics(probabilities, labels)["loss"]
    assert ours == pytest.approx(log_loss(labels, probabilities, labels=[0, 1, 2]))


def test_macro_f1_ignores_classes_absent_from_truth_and_prediction() -> None:
    assert macro_f1(np.array([0, 0, 5]), np.array([0, 0, 5])) == 1.0


def test_regression_metrics_are_reported_in_the_data_units() -> None:
    # Given targets standardised with mean 100, scale 20
    truth = np.array([90.0, 100.0, 130.0, 80.0])
    predicted = np.array([95.0, 98.0, 120.0, 85.0])
    mean, scale = 100.0, 20.0
    ours = regression_metrics((predicted - mean) / scale, (truth - mean) / scale, mean, scale)
    # Then RMSE and R2 are the data's, loss the standardised MSE
    assert ours["rmse"] == pytest.approx(np.sqrt(mean_squared_error(truth, predicted)))
    assert ours["r2"] == pytest.approx(r2_score(truth, predicted))
    assert ours["loss"] == pytest.approx(mean_squared_error(truth, predicted) / scale**2)
