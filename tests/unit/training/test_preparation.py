from __future__ import annotations

import numpy as np
import pytest

from maaskit.errors import InvalidRequest
from maaskit.training.datasets import Table
from maaskit.training.preparation import prepare
from maaskit.training.split import shard_indices, train_validation_split
from maaskit.training.targets import encode_labels, infer_task

from .helpers import blobs, linear_data, make_spec


def test_stratified_split_keeps_each_class_in_proportion() -> None:
    # Given imbalanced labels: 80 of class 0, 20 of class 1, 10 of class 2
    labels = np.array([0] * 80 + [1] * 20 + [2] * 10)
    # When 20% is held out, stratified
    train, validation = train_validation_split(labels.size, 0.2, seed=7, labels=labels)
    # Then every class keeps its share in the validation part
    counts = np.bincount(labels[validation], minlength=3)
    np.testing.assert_array_equal(counts, [16, 4, 2])
    # And the parts are disjoint and cover every row
    assert np.intersect1d(train, validation).size == 0
    assert train.size + validation.size == labels.size


def test_split_depends_on_the_seed_and_only_the_seed() -> None:
    labels = np.arange(100) % 4
    first = train_validation_split(100, 0.3, seed=1, labels=labels)
    again = train_validation_split(100, 0.3, seed=1, labels=labels)
    other = train_validation_split(100, 0.3, seed=2, labels=labels)
    np.testing.assert_array_equal(first[1], again[1])
    assert not np.array_equal(first[1], other[1])


def test_a_class_with_one_row_stays_in_training() -> None:
    labels = np.array([0] * 10 + [1] * 10 + [2])
    train, validation = train_validation_split(labels.size, 0.5, seed=0, labels=labels)
    assert 20 in train
    assert 20 not in validation


def test_shards_are_disjoint_cover_all_rows_and_differ_in_size_by_at_most_one() -> None:
    shards = shard_indices(10, 3, seed=0)
    assert sorted(len(s) for s in shards) == [3, 3, 4]
    np.testing.assert_array_equal(np.sort(np.concatenate(shards)), np.arange(10))


def test_task_is_inferred_from_the_target() -> None:
    assert infer_task(np.array(["a", "b"])) == "classification"
    assert infer_task(np.array([0.0, 1.0, 2.0])) == "classification"
    assert infer_task(np.array([0.5, 1.25, 2.0])) == "regression"
    assert infer_task(np.arange(500.0)) == "regression"  # too many distinct values


def test_whole_number_classes_stay_integers_sorted_numerically() -> None:
    labels = encode_labels(np.array([10.0, 2.0, 10.0, 1.0]))
    assert labels.classes.tolist() == [1, 2, 10]
    assert labels.indices.tolist() == [2, 1, 2, 0]
    assert labels.json_classes() == [1, 2, 10]


def test_standardisation_is_fitted_on_the_training_rows_only() -> None:
    # Given blobs split 75/25
    table = blobs(rows=120)
    data = prepare(table, make_spec())
    # When the training part is standardised
    # Then it has mean 0 and std 1 per column, and the validation part does not exactly
    np.testing.assert_allclose(data.train.x.mean(axis=0), 0.0, atol=1e-12)
    np.testing.assert_allclose(data.train.x.std(axis=0), 1.0, atol=1e-12)
    assert not np.allclose(data.validation.x.mean(axis=0), 0.0, atol=1e-6)
    # And the raw validation features are kept for the exported model's parity check
    np.testing.assert_allclose(data.x_scaler.transform(data.validation_raw_x), data.validation.x)


def test_regression_targets_are_standardised_and_the_scale_kept() -> None:
    data = prepare(linear_data(), make_spec(architecture={"type": "linear"}))
    assert data.spec.task == "regression"
    assert data.target_scale is not None
    assert abs(data.target_scale.mean - 1000.0) < 50.0
    np.testing.assert_allclose(data.train.y.mean(), 0.0, atol=1e-12)
    assert data.train.y.shape == (data.train.rows, 1)


def test_a_single_class_is_refused() -> None:
    table = Table(np.ones((40, 2)), np.zeros(40), ("a", "b"))
    with pytest.raises(InvalidRequest, match="single class"):
        prepare(table, make_spec(task="classification"))


def test_fewer_training_rows_than_one_batch_is_refused() -> None:
    with pytest.raises(InvalidRequest, match="fewer than one batch"):
        prepare(blobs(rows=30), make_spec(batch_size=64))


def test_string_targets_cannot_be_regressed() -> None:
    table = Table(np.ones((40, 2)), np.array(["a", "b"] * 20), ("a", "b"))
    with pytest.raises(InvalidRequest, match="not numeric"):
        prepare(table, make_spec(architecture={"type": "linear"}))


def test_a_nan_regression_target_is_refused() -> None:
    table = linear_data()
    target = table.target.copy()
    target[5] = np.nan
    with pytest.raises(InvalidRequest, match="row 6"):
        prepare(Table(table.features, target, table.feature_names), make_spec(task="regression"))
