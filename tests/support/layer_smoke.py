"""A Lambda layer alone: run in a fresh interpreter whose path is the layer and the core only.

Started as ``python -I -S -B layer_smoke.py LAYER CORE RUNTIME INPUTS [--training]`` (no
site-packages, no environment, no script folder on the path; RUNTIME holds what the Lambda
runtime provides, boto3 and its dependencies), it imports every module the CoreLayer ships,
so every module a handler can import, and then runs what the functions do with each
third-party package, through maaskit where maaskit wraps it: an ``InferenceSession``, a
tokenizer from its JSON, a simdjson parse and, for the training layer, onnx's helper,
checker, version converter and compose. It prints one JSON report; the caller checks it
(``tests/support/layers.py``). Only the standard library is imported before the path is set.
"""

from __future__ import annotations

import importlib
import json
import sys
import sysconfig
from pathlib import Path
from typing import Any

CORE_PACKAGES = ("onnxmodel", "registry", "serving", "batch", "training")  # as src/Makefile


def core_modules(core: Path) -> list[str]:
    """Every module of the maaskit core under ``core`` (a CoreLayer's ``python`` folder or src)."""
    root = core / "maaskit"
    files = list(root.glob("*.py"))
    for package in CORE_PACKAGES:
        files += (root / package).rglob("*.py")
    names = []
    for file in sorted(files):
        parts = list(file.relative_to(core).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        names.append(".".join(parts))
    return names


def run_inference(model: bytes) -> list[list[float]]:
    """The linear model on two rows, with the session options serving.runtime sets."""
    import numpy as np
    import onnxruntime as ort

    from maaskit.onnxmodel.signature import inspect_model

    signature = inspect_model(model)
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    session = ort.InferenceSession(model, sess_options=options, providers=["CPUExecutionProvider"])
    rows = np.arange(8, dtype=np.float32).reshape(2, 4)
    (output,) = session.run(None, {signature.inputs[0].name: rows})
    return [[float(value) for value in row] for row in output]


def run_tokenizer(tokenizer_json: str) -> list[int]:
    from maaskit.onnxmodel.text import load_tokenizer

    return [int(i) for i in load_tokenizer(tokenizer_json).encode("hello good movie").ids]


def run_simdjson() -> list[list[float]]:
    from maaskit.batch.formats.numbers import parse_json_rows

    rows = parse_json_rows([b"[1.5, 2]", b"[3, 4.25]"])
    assert rows is not None, "simdjson refused two rows of numbers"
    return [[float(value) for value in row] for row in rows]


def run_onnx(model: bytes) -> list[list[float]]:
    """The training export's onnx calls on the linear model, then its output in onnxruntime."""
    import numpy as np
    import onnx
    import onnxruntime as ort
    from onnx import TensorProto, checker, compose, helper, numpy_helper, version_converter

    linear = onnx.load_from_string(model)
    checker.check_model(linear)
    weights = numpy_helper.to_array(next(i for i in linear.graph.initializer if i.name == "W"))
    # a second graph built here, doubling the linear model's output, composed after it
    double = helper.make_graph(
        [helper.make_node("Mul", ["output", "two"], ["doubled"])],
        "double",
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["batch", weights.shape[1]])],
        [helper.make_tensor_value_info("doubled", TensorProto.FLOAT, ["batch", weights.shape[1]])],
        initializer=[numpy_helper.from_array(np.array(2.0, np.float32), "two")],
    )
    tail = helper.make_model(double, opset_imports=[helper.make_opsetid("", 18)])
    tail.ir_version = linear.ir_version
    head = version_converter.convert_version(linear, 18)
    composed = compose.merge_models(
        compose.add_prefix(head, "head.", rename_inputs=False, rename_outputs=False),
        tail,
        io_map=[("output", "output")],
    )
    checker.check_model(composed, full_check=True)
    session = ort.InferenceSession(composed.SerializeToString(), providers=["CPUExecutionProvider"])
    rows = np.arange(8, dtype=np.float32).reshape(2, 4)
    (output,) = session.run(None, {"input": rows})
    return [[float(value) for value in row] for row in output]


def origins(roots: list[tuple[str, Path]]) -> dict[str, str]:
    """Each loaded top-level module with a file, and which root it came from (else its path)."""
    found: dict[str, str] = {}
    for name, module in list(sys.modules.items()):
        file = getattr(module, "__file__", None)
        if "." in name or name.startswith("__") or not file:
            continue
        path = Path(file).resolve()
        found[name] = next((label for label, root in roots if path.is_relative_to(root)), str(path))
    return found


def main(argv: list[str]) -> dict[str, Any]:
    layer, core, runtime, inputs = (Path(arg).resolve() for arg in argv[:4])
    training = "--training" in argv[4:]
    sys.path[:0] = [str(layer), str(core), str(runtime)]
    modules = core_modules(core)
    for module in modules:
        importlib.import_module(module)
    model = (inputs / "linear.onnx").read_bytes()
    report: dict[str, Any] = {
        "python": sys.version.split()[0],
        "core_modules": len(modules),
        "inference": run_inference(model),
        "token_ids": run_tokenizer((inputs / "tokenizer.json").read_text()),
        "simdjson_rows": run_simdjson(),
    }
    if training:
        report["onnx_composed"] = run_onnx(model)
    stdlib = [Path(sysconfig.get_paths()[key]).resolve() for key in ("stdlib", "platstdlib")]
    roots = [("layer", layer), ("core", core), ("runtime", runtime)] + [
        ("stdlib", path) for path in stdlib
    ]
    report["origins"] = origins(roots)
    report["path"] = sys.path
    return report


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1:])))
