from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from maaskit.errors import InvalidRequest
from maaskit.onnxmodel.signature import Signature, TensorSpec
from maaskit.onnxmodel.tensors import prepare_inputs, to_array

FEATURES = Signature(
    inputs=(TensorSpec("input", "FP32", ("batch", 4)),),
    outputs=(TensorSpec("output", "FP32", ("batch", 3)),),
)
TOKENS = Signature(
    inputs=(
        TensorSpec("input_ids", "INT64", ("batch", "sequence")),
        TensorSpec("attention_mask", "INT64", ("batch", "sequence")),
    ),
    outputs=(TensorSpec("hidden", "FP32", ("batch", "sequence", 8)),),
)


def test_numbers_are_coerced_to_the_models_element_type() -> None:
    arrays = prepare_inputs(FEATURES, {"input": [[1, 2, 3, 4], [0.5, 1, 2, 3]]})
    assert arrays["input"].dtype == np.float32
    assert arrays["input"].shape == (2, 4)


def test_integral_floats_are_accepted_for_integer_inputs() -> None:
    arrays = prepare_inputs(TOKENS, {"input_ids": [[1.0, 2.0]], "attention_mask": [[1, 1]]})
    assert arrays["input_ids"].dtype == np.int64


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({}, "missing input\\(s\\) 'input'"),
        ({"input": [[1, 2, 3, 4]], "extra": [1]}, "unknown input 'extra'"),
        ({"inptu": [[1, 2, 3, 4]]}, "unknown input 'inptu' \\(did you mean 'input'\\?\\)"),
        ({"input": [[1, 2, 3]]}, "dimension 1 must be 4"),
        ({"input": [1, 2, 3, 4]}, "must have rank 2"),
        ({"input": [[1, 2, 3, 4], [1, 2]]}, "ragged"),
        ({"input": [["a", "b", "c", "d"]]}, "expects FP32 numbers; got strings"),
        ({"input": [["1", "2", "3", "4"]]}, "expects FP32 numbers; got strings"),
        ({"input": [[True, False, True, False]]}, "got booleans"),
        ({"input": [[{"a": 1}, 2, 3, 4]]}, "non-numbers"),
        ({"input": "1,2,3,4"}, "got strings"),
    ],
)
def test_bad_inputs_get_messages_that_say_what_to_send(
    values: dict[str, Any], message: str
) -> None:
    with pytest.raises(InvalidRequest, match=message):
        prepare_inputs(FEATURES, values)


def test_fractional_values_for_integer_inputs_are_refused() -> None:
    with pytest.raises(InvalidRequest, match="expects INT64 integers; got fractional"):
        prepare_inputs(TOKENS, {"input_ids": [[1.5, 2]], "attention_mask": [[1, 1]]})


def test_inputs_sharing_a_named_dimension_must_agree() -> None:
    with pytest.raises(InvalidRequest, match="must agree on dimension 'sequence'"):
        prepare_inputs(TOKENS, {"input_ids": [[1, 2, 3]], "attention_mask": [[1, 1]]})


def test_values_outside_the_integer_range_are_refused() -> None:
    signature = Signature(inputs=(TensorSpec("x", "UINT8", ("batch",)),), outputs=())
    with pytest.raises(InvalidRequest, match="outside the UINT8 range"):
        prepare_inputs(signature, {"x": [1, 300]})


@given(
    st.lists(
        st.lists(st.floats(-1e6, 1e6, allow_nan=False, width=32), min_size=4, max_size=4),
        min_size=1,
        max_size=20,
    )
)
def test_any_well_formed_batch_round_trips_exactly(rows: list[list[float]]) -> None:
    arrays = prepare_inputs(FEATURES, {"input": rows})
    np.testing.assert_array_equal(arrays["input"], np.array(rows, dtype=np.float32))


@pytest.mark.parametrize(
    ("values", "datatype", "message"),
    [
        ([1e308, 1.0], "FP32", "outside the FP32 range"),
        ([-1e39, 1.0], "FP32", "outside the FP32 range"),
        ([70000, 1], "FP16", "outside the FP16 range"),
        (np.array([np.nan, 1.0]), "FP64", "holds NaN or infinity"),
        (np.array([np.inf, 1.0], np.float32), "FP32", "holds NaN or infinity"),
    ],
)
def test_float_values_that_would_not_be_finite_are_refused(
    values: object, datatype: str, message: str
) -> None:
    with pytest.raises(InvalidRequest, match=message):
        to_array(values, TensorSpec("x", datatype, ("batch",)))


def test_the_largest_finite_values_of_each_float_type_are_kept() -> None:
    for datatype in ["FP16", "FP32", "FP64"]:
        top = float(np.finfo(TensorSpec("x", datatype, ()).dtype).max)
        array = to_array([top, -top], TensorSpec("x", datatype, ("batch",)))
        assert array.tolist() == [top, -top]


def test_a_float_that_rounds_to_the_float32_maximum_is_kept_as_a_cast_keeps_it() -> None:
    # Given a number just above float32's largest that the cast rounds down to it
    top = float(np.finfo(np.float32).max)
    just_above = 3.4028235e38
    assert just_above > top
    # When it is converted for an FP32 input, Then it becomes that largest value, not a refusal
    array = to_array([just_above, -just_above], TensorSpec("x", "FP32", ("batch",)))
    assert array.dtype == np.float32
    assert array.tolist() == [top, -top]


def test_a_single_input_model_still_refuses_another_name_and_a_wrong_shape() -> None:
    # Given a model with one FP32 input of shape [batch, 4]
    # When a request names another input, or sends a row of another width
    # Then each is refused with what the model takes
    with pytest.raises(InvalidRequest, match="unknown input 'x'"):
        prepare_inputs(FEATURES, {"x": [[1, 2, 3, 4]]})
    with pytest.raises(InvalidRequest, match="dimension 1 must be 4"):
        prepare_inputs(FEATURES, {"input": [[1, 2, 3]]})
