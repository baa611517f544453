from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from maaskit.errors import IntegrityError
from maaskit.training.datasets import Table
from maaskit.training.export import check_parity, export_onnx
from maaskit.training.weights import ModelWeights

from .helpers import blobs, initial_params, linear_data, make_spec, trainer_for


def trained_weights(table: Table, **spec) -> tuple[ModelWeights, np.ndarray]:
    trainer, data = trainer_for(table, make_spec(**spec))
    state = trainer.start(initial_params(trainer))
    trainer.run(state, data.train)
    weights = ModelWeights(
        architecture=trainer.architecture,
        params=state.params,
        x_scaler=data.x_scaler,
        feature_names=data.feature_names,
        classes=data.classes,
        target_scale=data.target_scale,
    )
    return weights, data.validation_raw_x


def session_for(path: Path) -> ort.InferenceSession:
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def test_classifier_exports_label_and_probabilities_matching_numpy(tmp_path: Path) -> None:
    # Given an MLP trained on blobs with classes 0, 1, 2
    weights, raw_x = trained_weights(
        blobs(), architecture={"type": "mlp", "hidden": [8, 6], "activation": "tanh"}
    )
    # When it is exported and loaded from a file
    path = tmp_path / "model.onnx"
    path.write_bytes(export_onnx(weights, model_name="blobs"))
    model = onnx.load(str(path))
    session = session_for(path)
    # Then the file is opset 17, IR 8, with one FP32 input [batch, features]
    assert model.ir_version == 8
    assert [(o.domain, o.version) for o in model.opset_import] == [("", 17)]
    (model_input,) = session.get_inputs()
    assert (model_input.name, model_input.type) == ("input", "tensor(float)")
    assert model_input.shape == ["batch", 4]
    assert [o.name for o in session.get_outputs()] == ["probabilities", "label"]
    # And on raw validation features it agrees with the numpy forward pass
    probabilities, labels = session.run(None, {"input": raw_x.astype(np.float32)})
    expected = weights.predict(raw_x.astype(np.float32).astype(np.float64))
    assert np.abs(probabilities - expected).max() <= 1e-5
    assert labels.dtype == np.int64
    np.testing.assert_array_equal(labels, expected.argmax(axis=1))
    report = check_parity(path.read_bytes(), weights, raw_x)
    assert report.max_abs_diff <= 1e-5
    assert report.rows == raw_x.shape[0]


def test_string_classes_come_out_as_string_labels(tmp_path: Path) -> None:
    table = blobs()
    names = np.array(["cat", "dog", "emu"])[table.target.astype(int)]
    weights, raw_x = trained_weights(
        Table(table.features, names, table.feature_names), architecture={"type": "softmax"}
    )
    model_bytes = export_onnx(weights)
    session = ort.InferenceSession(model_bytes, providers=["CPUExecutionProvider"])
    _, labels = session.run(None, {"input": raw_x.astype(np.float32)})
    assert set(labels.tolist()) <= {"cat", "dog", "emu"}
    check_parity(model_bytes, weights, raw_x)


def test_regressor_predicts_in_the_data_units(tmp_path: Path) -> None:
    # Given a linear model of targets around 1000
    weights, raw_x = trained_weights(
        linear_data(), architecture={"type": "linear"}, epochs=40,
        optimizer={"type": "adam", "learning_rate": 0.05},
    )  # fmt: skip
    model_bytes = export_onnx(weights)
    session = ort.InferenceSession(model_bytes, providers=["CPUExecutionProvider"])
    (prediction,) = session.run(None, {"input": raw_x.astype(np.float32)})
    # Then the ONNX prediction is [batch] and matches numpy in relative terms
    assert prediction.shape == (raw_x.shape[0],)
    expected = weights.predict(raw_x.astype(np.float32).astype(np.float64)).reshape(-1)
    np.testing.assert_allclose(prediction, expected, rtol=1e-5)
    assert np.abs(expected - 1000).max() > 50  # really in data units
    check_parity(model_bytes, weights, raw_x)


def test_parity_check_refuses_a_model_that_disagrees() -> None:
    # Given the file of one model checked against slightly different weights
    weights, raw_x = trained_weights(blobs())
    model_bytes = export_onnx(weights)
    nudged = weights.with_params(weights.params + 1e-3)
    # Then publishing is refused
    with pytest.raises(IntegrityError, match="disagrees with the numpy forward pass"):
        check_parity(model_bytes, nudged, raw_x)


def test_weights_survive_their_npz_round_trip() -> None:
    weights, _ = trained_weights(blobs())
    again = ModelWeights.from_bytes(weights.to_bytes())
    assert again.architecture == weights.architecture
    assert again.params.tobytes() == weights.params.tobytes()
    assert again.class_list() == [0, 1, 2]
    assert again.feature_names == weights.feature_names


def test_only_the_export_step_needs_the_onnx_package() -> None:
    # Given a fresh interpreter importing every training module, export included
    code = (
        "import sys, pkgutil, importlib, maaskit.training as t\n"
        "for m in pkgutil.iter_modules(t.__path__):\n"
        "    importlib.import_module('maaskit.training.' + m.name)\n"
        "print('onnx' in sys.modules)\n"
    )
    src = Path(__file__).resolve().parents[3] / "src"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True,
        env={"PYTHONPATH": str(src)},
    )  # fmt: skip
    # Then onnx was not imported
    assert out.stdout.strip() == "False"
