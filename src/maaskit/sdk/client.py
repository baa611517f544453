"""The SDK: call a deployed (or local) maaskit from Python.

``Model`` is one served model over HTTP, numpy in and numpy out::

    m = Model("digits", endpoint="http://127.0.0.1:3000/")
    probabilities = m.predict(images)          # or: m.set_input(images); m.predict()
    m.metadata(), m.versions()

``Client`` covers the rest, for scripts and the ``maaskit`` command: the registry (over S3),
datasets, training runs (Step Functions executions) and batch jobs (files through S3)::

    client = Client.connect(local=True)        # or stack="maaskit", or api_url=..., ...
    client.push_model("model.onnx", "digits", aliases=("production",))
    run = client.start_training(spec); client.wait_for_training(run.run_id)

Importing this module costs numpy and the standard library; boto3 is imported when a
``Client`` first needs AWS, onnxruntime only to validate a model being pushed.
"""

from __future__ import annotations

import json
import re
import secrets
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from maaskit.errors import CorruptObject, InvalidRequest, MaaskitError, NotFound
from maaskit.onnxmodel.signature import NUMPY_TO_V2, V2_TO_NUMPY
from maaskit.sdk.targets import LOCAL_API_URL, Target, TargetOptions
from maaskit.sdk.transport import HttpTransport, RetryPolicy, SigV4Signer, region_of

if TYPE_CHECKING:
    from maaskit.registry.catalog import Registry
    from maaskit.registry.store import ObjectStore

ArrayLike = Any  # numpy arrays, nested lists, scalars, or text for text models
_ANSWERS = ("label", "embedding", "prediction")  # what predict() returns, in this order


def _jsonable(value: ArrayLike) -> Any:
    if isinstance(value, np.ndarray):
        if value.dtype.kind in "SO":
            return [_jsonable(v) for v in value.tolist()]
        return value.tolist()
    if isinstance(value, bytes):
        return value.decode("utf-8")
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


def _array(data: Any, datatype: str | None, shape: Sequence[int] | None = None) -> np.ndarray:
    dtype = V2_TO_NUMPY.get(datatype or "")
    array = np.asarray(data, dtype=dtype) if dtype is not None else np.asarray(data)
    return array.reshape(shape) if shape is not None else array


def _nested(data: Any, shape: Sequence[int] | None) -> Any:
    """Flat V2 ``data`` nested by ``shape``, each number kept as the server wrote it.

    Not through the declared dtype: a float32 read back into Python prints as
    0.10000000149011612 where the server sent 0.1.
    """
    if shape is None or not isinstance(data, list):
        return data
    return np.asarray(data, dtype=object).reshape(shape).tolist()


def _quote(segment: str) -> str:
    from urllib.parse import quote

    return quote(str(segment), safe="")


class Model:
    """One model behind the HTTP API.

    ``version`` or ``alias`` pins what is called (default: the ``latest`` alias). Outputs
    come back as numpy arrays with the dtype the model declares.
    """

    def __init__(
        self,
        name: str | None = None,
        endpoint: str | None = None,
        *,
        version: int | str | None = None,
        alias: str | None = None,
        api_key: str | None = None,
        sigv4: bool = False,
        region: str | None = None,
        timeout_s: float = 30.0,
        retries: int = 3,
        transport: HttpTransport | None = None,
    ) -> None:
        import os

        if version is not None and alias is not None:
            raise InvalidRequest("give either a version or an alias, not both")
        name = name or os.environ.get("MAASKIT_MODEL")
        if not name:
            raise InvalidRequest('name the model: Model("minilm"), or set MAASKIT_MODEL')
        self.name = name
        self.version = None if version is None else str(version)
        self.alias = alias
        if transport is None:
            base = endpoint or os.environ.get("MAASKIT_API_URL") or LOCAL_API_URL
            signer = None
            if sigv4:
                signer_region = region or region_of(base) or os.environ.get("AWS_REGION")
                if not signer_region:
                    raise InvalidRequest("SigV4 needs a region: pass region=...")
                signer = SigV4Signer(signer_region)
            transport = HttpTransport(
                base,
                api_key=api_key or os.environ.get("MAASKIT_API_KEY"),
                signer=signer,
                timeout_s=timeout_s,
                retry=RetryPolicy(retries=retries),
            )
        self.transport = transport
        self._input: ArrayLike | None = None
        self._metadata: dict[str, Any] | None = None
        self._output_datatypes: dict[str | None, dict[str, str | None]] = {}

    def __repr__(self) -> str:
        pinned = f", version={self.version}" if self.version else ""
        pinned += f", alias={self.alias!r}" if self.alias else ""
        return f"Model({self.name!r}, endpoint={self.transport.base_url!r}{pinned})"

    # describing ---------------------------------------------------------------------

    def _v2_path(self, version: str | None) -> str:
        path = f"v2/models/{_quote(self.name)}"
        return path + (f"/versions/{_quote(version)}" if version else "")

    def metadata(self) -> dict[str, Any]:
        """Open Inference Protocol metadata: inputs and outputs with datatypes and shapes."""
        version = self._resolved_version()
        document: dict[str, Any] = self.transport.request("GET", self._v2_path(version))
        self._metadata = document
        return document

    def describe(self) -> dict[str, Any]:
        """The registry's view: every version's manifest and the aliases."""
        document: dict[str, Any] = self.transport.request("GET", f"models/{_quote(self.name)}")
        return document

    def versions(self) -> list[int]:
        entries = self.describe().get("versions", [])
        return sorted(int(e["version"]) if isinstance(e, dict) else int(e) for e in entries)

    def ready(self) -> bool:
        document = self.transport.request("GET", self._v2_path(self._resolved_version()) + "/ready")
        return bool(isinstance(document, dict) and document.get("ready"))

    def _resolved_version(self) -> str | None:
        """V2 addresses versions only: an alias is looked up in the registry view."""
        if self.alias is None:
            return self.version
        aliases = self.describe().get("aliases", {})
        if self.alias not in aliases:
            known = ", ".join(sorted(aliases)) or "none"
            raise NotFound(f"model {self.name!r} has no alias {self.alias!r} (aliases: {known})")
        return str(aliases[self.alias])

    def _declared(self) -> dict[str, Any]:
        return self._metadata if self._metadata is not None else self.metadata()

    # predicting ---------------------------------------------------------------------

    def set_input(self, x: ArrayLike | Mapping[str, ArrayLike]) -> Model:
        """Keep ``x`` for the next :meth:`predict` (the seed's two-step style)."""
        self._input = x
        return self

    def _take_input(self, x: Any) -> Any:
        if x is None:
            if self._input is None:
                raise InvalidRequest("no input: call set_input(x) first or pass predict(x)")
            return self._input
        return x

    def predict_outputs(
        self, x: ArrayLike | Mapping[str, ArrayLike] | None = None
    ) -> dict[str, np.ndarray]:
        """Every output by name, through ``POST /models/{name}/predict``."""
        x = self._take_input(x)
        if isinstance(x, Mapping):
            body: dict[str, Any] = {"inputs": {k: _jsonable(v) for k, v in x.items()}}
        else:
            body = {"input": _jsonable(x)}
        reply = self.transport.request(
            "POST",
            f"models/{_quote(self.name)}/predict",
            body=body,
            query={"version": self.version, "alias": self.alias},
        )
        declared = self._output_types(reply.get("version"))
        return {name: _array(value, declared.get(name)) for name, value in reply["outputs"].items()}

    def _output_types(self, version: Any) -> dict[str, str | None]:
        """Output datatypes of the version that answered (JSON numbers carry no dtype)."""
        key = None if version is None else str(version)
        if key not in self._output_datatypes:
            document = self.transport.request("GET", self._v2_path(key))
            self._output_datatypes[key] = {
                o["name"]: o.get("datatype") for o in document.get("outputs", [])
            }
        return self._output_datatypes[key]

    def predict(
        self, x: ArrayLike | Mapping[str, ArrayLike] | None = None, *, output: str | None = None
    ) -> Any:
        """One output for ``x``: ``output`` by name, else the answer a person wants first:
        ``label`` (classifiers), ``embedding`` (text encoders), ``prediction``, or the
        model's first output. A single string gives that text's answer (not a batch of one).

        :meth:`predict_outputs` returns them all.
        """
        single_text = isinstance(self._take_input(x), str)
        outputs = self.predict_outputs(x)
        if output is None:
            output = next((n for n in _ANSWERS if n in outputs), next(iter(outputs)))
        if output not in outputs:
            raise InvalidRequest(
                f"{self.name} has no output {output!r} (outputs: {', '.join(outputs)})"
            )
        return outputs[output][0] if single_text else outputs[output]

    def infer(self, x: ArrayLike | Mapping[str, ArrayLike] | None = None) -> dict[str, np.ndarray]:
        """The same through the Open Inference Protocol V2 (``/v2/models/{name}/infer``)."""
        reply = self.infer_reply(x)
        return {
            o["name"]: _array(o["data"], o.get("datatype"), o.get("shape"))
            for o in reply["outputs"]
        }

    def infer_reply(self, x: ArrayLike | Mapping[str, ArrayLike] | None = None) -> dict[str, Any]:
        """The V2 reply as the server sent it (JSON numbers as written, ``model_version``)."""
        x = self._take_input(x)
        declared = self._declared()
        inputs = declared.get("inputs", [])
        if isinstance(x, str):
            x = [x]  # one text is a batch of one
        if not isinstance(x, Mapping):
            if len(inputs) != 1:
                names = ", ".join(i["name"] for i in inputs)
                raise InvalidRequest(f"{self.name} takes several inputs ({names}): pass a dict")
            x = {inputs[0]["name"]: x}
        datatypes = {i["name"]: i.get("datatype") for i in inputs}
        tensors = []
        for name, value in x.items():
            array = np.asarray(value, dtype=V2_TO_NUMPY.get(datatypes.get(name) or ""))
            datatype = datatypes.get(name) or NUMPY_TO_V2.get(array.dtype, "FP32")
            tensors.append(
                {
                    "name": name,
                    "shape": list(array.shape),
                    "datatype": datatype,
                    "data": _jsonable(array.reshape(-1)),
                }
            )
        reply: dict[str, Any] = self.transport.request(
            "POST", self._v2_path(self._resolved_version()) + "/infer", body={"inputs": tensors}
        )
        return reply


# training runs and batch jobs -----------------------------------------------------------


@dataclass(frozen=True)
class TrainingRun:
    run_id: str
    execution_arn: str


@dataclass(frozen=True)
class TrainingStatus:
    run_id: str
    status: str  # RUNNING, SUCCEEDED, FAILED, TIMED_OUT, ABORTED
    metrics: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None
    cause: str | None = None
    output: Any = None
    details: dict[str, Any] = field(default_factory=dict)  # training/{run_id}/status.json

    @property
    def done(self) -> bool:
        return self.status != "RUNNING"

    @property
    def latest(self) -> dict[str, Any]:
        return self.metrics[-1] if self.metrics else {}


@dataclass(frozen=True)
class BatchJob:
    model: str
    input_key: str
    etag: str
    output_key: str
    report_keys: tuple[str, ...]
    submitted_at: float


def new_run_id(model: str) -> str:
    """A readable, unique execution name: ``{model}-{UTC time}-{random}``."""
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    safe = re.sub(r"[^A-Za-z0-9_-]", "-", model)[:50]
    return f"{safe}-{stamp}-{secrets.token_hex(2)}"


def execution_input(spec: Mapping[str, Any]) -> dict[str, Any]:
    """A training execution starts with the spec as written; its name is the run id."""
    return dict(spec)


def _parse_metrics(text: str) -> list[dict[str, Any]]:
    rows = []
    for line in text.splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue  # a line being written as we read
        if isinstance(row, dict):
            rows.append(row)
    return rows


def _etag(value: str) -> str:
    return value.strip('"')


def _mentions(document: Any, wanted: str) -> bool:
    if isinstance(document, dict):
        return any(_mentions(v, wanted) for v in document.values())
    if isinstance(document, list):
        return any(_mentions(v, wanted) for v in document)
    return isinstance(document, str) and _etag(document) == wanted


def _history_line(event: Mapping[str, Any]) -> str:
    stamp = event.get("timestamp")
    when = stamp.strftime("%H:%M:%S") if isinstance(stamp, datetime) else ""
    details: Mapping[str, Any] = next(
        (v for k, v in event.items() if k.endswith("EventDetails") and isinstance(v, dict)), {}
    )
    parts = [when, str(event.get("type", ""))]
    if details.get("name"):
        parts.append(str(details["name"]))
    if details.get("error"):
        parts.append(f"error={details['error']}")
    if details.get("cause"):
        parts.append(f"cause={str(details['cause'])[:500]}")
    return " ".join(part for part in parts if part)


class Client:
    """Registry, datasets, training runs and batch jobs of one deployment."""

    def __init__(self, target: Target | None = None, *, timeout_s: float = 30.0, retries: int = 3):
        self.target = target or Target()
        self.timeout_s = timeout_s
        self.retries = retries
        self._transport: HttpTransport | None = None
        self._store: ObjectStore | None = None
        self._registry: Registry | None = None

    @classmethod
    def connect(cls, **options: Any) -> Client:
        """``Client.connect(local=True)``, ``(stack="maaskit")``, ``(api_url=..., ...)``."""
        return cls(Target(TargetOptions(**options)))

    # plumbing -----------------------------------------------------------------------

    @property
    def transport(self) -> HttpTransport:
        if self._transport is None:
            url = self.target.api_url
            signer = None
            if self.target.sigv4:
                region = region_of(url) or self.target.region
                if not region:
                    raise InvalidRequest("SigV4 needs a region: pass --region")
                signer = SigV4Signer(region, self.target.session.get_credentials())
            self._transport = HttpTransport(
                url,
                api_key=self.target.api_key,
                signer=signer,
                timeout_s=self.timeout_s,
                retry=RetryPolicy(retries=self.retries),
            )
        return self._transport

    @property
    def store(self) -> ObjectStore:
        if self._store is None:
            from maaskit.registry.store import ObjectStore

            self._store = ObjectStore(self.target.bucket, client=self.target.client("s3"))
        return self._store

    @property
    def registry(self) -> Registry:
        if self._registry is None:
            from maaskit.registry.catalog import Registry

            self._registry = Registry(self.store)
        return self._registry

    def model(
        self, name: str, *, version: int | str | None = None, alias: str | None = None
    ) -> Model:
        return Model(name, version=version, alias=alias, transport=self.transport)

    # the registry (directly over S3) --------------------------------------------------

    def push_model(
        self,
        path: str | Path,
        name: str,
        *,
        aliases: Sequence[str] = (),
        tokenizer: str | Path | None = None,
        pooling: str | None = None,
        normalize: bool | None = None,
        max_length: int | None = None,
        labels: Sequence[str] | None = None,
    ) -> dict[str, Any]:
        """Validate ``path`` with onnxruntime here, then publish it as the next version.

        ``path`` is an ``.onnx`` file, an export folder (Optimum / sentence-transformers:
        ``model.onnx``, ``tokenizer.json``, ``1_Pooling/``, ``config.json``) or a ``.zip`` /
        ``.tar.gz`` of one; the text options override what the folder's files say.
        Going through the registry directly (not ``uploads/``) means a bad file is refused
        before anything is written, and the new version number comes back at once.
        """
        from maaskit.registry.packages import TextOptions, read_path

        try:
            import onnxruntime  # noqa: F401 - only to give a clear message when it is missing
        except ImportError:
            raise MaaskitError(
                "pushing a model validates it with onnxruntime first: "
                "pip install 'maaskit[runtime]'"
            ) from None
        options = TextOptions(
            tokenizer=Path(tokenizer).read_bytes() if tokenizer is not None else None,
            pooling=pooling,
            normalize=normalize,
            max_length=max_length,
            labels=tuple(labels) if labels is not None else None,
        )
        package = read_path(Path(path), options)
        manifest = self.registry.publish(
            name,
            package.model,
            files=package.files,
            processing=package.processing,
            aliases=tuple(aliases),
            metadata={"source": Path(path).name},
        )
        return manifest.to_dict()

    def list_models(self) -> list[dict[str, Any]]:
        models: list[dict[str, Any]] = self.catalog()["models"]
        return models

    def catalog(self) -> dict[str, Any]:
        """``{"models": [...], "skipped": [{"name", "reason"}]}`` (models that cannot be read)."""
        return self.registry.catalog()

    def describe_model(self, name: str) -> dict[str, Any]:
        return self.registry.describe(name)

    def promote(self, name: str, version: int | str, alias: str) -> None:
        from maaskit.registry.catalog import parse_version

        self.registry.set_alias(name, alias, parse_version(version))

    # predictions (over HTTP) ----------------------------------------------------------

    def predict(
        self,
        name: str,
        data: Any,
        *,
        v2: bool = False,
        version: int | str | None = None,
        alias: str | None = None,
    ) -> Any:
        """The API's reply as JSON. ``data`` is a tensor, or a complete request body."""
        model = self.model(name, version=version, alias=alias)
        if v2:
            if isinstance(data, dict) and isinstance(data.get("inputs"), list):
                version_part = model._resolved_version()
                return self.transport.request(
                    "POST", model._v2_path(version_part) + "/infer", body=data
                )
            reply = model.infer_reply(data)
            return {
                "model_name": reply.get("model_name", name),
                "model_version": reply.get("model_version"),
                "outputs": {
                    o["name"]: _nested(o["data"], o.get("shape")) for o in reply["outputs"]
                },
            }
        body = (
            data
            if isinstance(data, dict) and ({"input", "inputs"} & set(data))
            else {"input": data}
        )
        return self.transport.request(
            "POST",
            f"models/{_quote(name)}/predict",
            body=body,
            query={"version": None if version is None else str(version), "alias": alias},
        )

    # datasets -------------------------------------------------------------------------

    def push_dataset(self, path: str | Path, name: str) -> str:
        """Upload a dataset file; return the ``s3://`` URI a training spec can name."""
        from maaskit.registry.catalog import validate_name

        path = Path(path)
        validate_name(name)
        key = f"datasets/{name}/{path.name}"
        with path.open("rb") as handle:
            self.store.upload_file(key, handle, content_type=_content_type(path))
        return self.store.uri(key)

    def list_datasets(self) -> list[dict[str, Any]]:
        return [
            {"key": info.key, "size": info.size, "uri": self.store.uri(info.key)}
            for info in self.store.list_keys("datasets/")
        ]

    # training -------------------------------------------------------------------------

    def _training_machine(self) -> str:
        return self.target.state_machine("training")

    def _execution_arn(self, run_id: str) -> str:
        machine = self._training_machine()
        return machine.replace(":stateMachine:", ":execution:", 1) + f":{run_id}"

    def start_training(self, spec: Mapping[str, Any], *, run_id: str | None = None) -> TrainingRun:
        """Start the training state machine on ``spec``; the run id names the execution."""
        if not isinstance(spec, Mapping) or "model" not in spec:
            raise InvalidRequest('a training spec is a JSON object with at least "model"')
        run_id = run_id or new_run_id(str(spec["model"]))
        response = self.target.client("stepfunctions").start_execution(
            stateMachineArn=self._training_machine(),
            name=run_id,
            input=json.dumps(execution_input(spec)),
        )
        return TrainingRun(run_id=run_id, execution_arn=str(response["executionArn"]))

    def training_metrics(self, run_id: str) -> list[dict[str, Any]]:
        try:
            data = self.store.get_bytes(f"training/{run_id}/metrics.jsonl")
            text = data.decode("utf-8", errors="replace")  # a damaged line is skipped below
        except NotFound:
            return []
        return _parse_metrics(text)

    def training_details(self, run_id: str) -> dict[str, Any]:
        """What the workflow itself says about the run (its current step, how it ended)."""
        try:
            details = self.store.get_json(f"training/{run_id}/status.json")
        except NotFound:
            return {}
        except CorruptObject as err:  # the execution's own state still answers
            return {"unreadable": err.message}
        if not isinstance(details, dict):
            return {"unreadable": f"training/{run_id}/status.json is not a JSON object"}
        return details

    def training_status(self, run_id: str) -> TrainingStatus:
        sfn = self.target.client("stepfunctions")
        try:
            described = sfn.describe_execution(executionArn=self._execution_arn(run_id))
        except sfn.exceptions.ExecutionDoesNotExist:
            raise NotFound(f"no training run {run_id!r}") from None
        output = described.get("output")
        return TrainingStatus(
            run_id=run_id,
            status=str(described["status"]),
            metrics=self.training_metrics(run_id),
            error=described.get("error"),
            cause=described.get("cause"),
            output=json.loads(output) if output else None,
            details=self.training_details(run_id),
        )

    def training_logs(self, run_id: str) -> list[str]:
        """The execution's history, one line per event (states, task failures, retries)."""
        sfn = self.target.client("stepfunctions")
        arn = self._execution_arn(run_id)
        lines: list[str] = []
        token: str | None = None
        try:
            while True:
                args: dict[str, Any] = {"executionArn": arn, "maxResults": 1000}
                if token:
                    args["nextToken"] = token
                page = sfn.get_execution_history(**args)
                lines.extend(_history_line(event) for event in page.get("events", []))
                token = page.get("nextToken")
                if not token:
                    return lines
        except sfn.exceptions.ExecutionDoesNotExist:
            raise NotFound(f"no training run {run_id!r}") from None

    def wait_for_training(
        self,
        run_id: str,
        *,
        on_progress: Callable[[TrainingStatus], None] | None = None,
        poll_s: float = 1.0,
        timeout_s: float | None = None,
    ) -> TrainingStatus:
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while True:
            status = self.training_status(run_id)
            if on_progress is not None:
                on_progress(status)
            if status.done:
                return status
            if deadline is not None and time.monotonic() > deadline:
                raise MaaskitError(
                    f"training run {run_id} still {status.status} after {timeout_s} s"
                )
            time.sleep(poll_s)

    # batch ----------------------------------------------------------------------------

    def submit_batch(self, path: str | Path, model: str) -> BatchJob:
        """Upload ``path`` to ``batch/in/{model}/``; the bucket's batch function takes it."""
        from maaskit.registry.catalog import validate_name

        validate_name(model)
        path = Path(path)
        if path.suffix.lower() not in (".jsonl", ".csv", ".npy"):
            raise InvalidRequest(f"{path.name}: batch files are .jsonl, .csv or .npy")
        from maaskit.batch.keys import IN_PREFIX, parse_batch_key, rejected_report_key

        key = f"{IN_PREFIX}{model}/{path.name}"
        try:
            parsed = parse_batch_key(key)
        except InvalidRequest as err:
            raise InvalidRequest(f"{path.name}: {err}") from None
        submitted_at = time.time()
        with path.open("rb") as handle:
            self.store.upload_file(key, handle, content_type=_content_type(path))
        head = self.store.head(key)
        return BatchJob(
            model=model,
            input_key=key,
            etag=_etag(head.etag) if head else "",
            output_key=parsed.output_key,
            # where the batch function writes it, or where it goes if it refuses the key
            report_keys=(parsed.report_key, rejected_report_key(key)),
            submitted_at=submitted_at,
        )

    def batch_report(self, job: BatchJob) -> dict[str, Any] | None:
        """The job's report once written (one from an earlier upload does not count)."""
        for key in job.report_keys:
            info = self.store.head(key)
            if info is None:
                continue
            report: dict[str, Any] = self.store.get_json(key)
            if _mentions(report, job.etag):
                return report
        return None

    def wait_for_batch(
        self,
        job: BatchJob,
        *,
        timeout_s: float = 600.0,
        poll_s: float = 0.5,
        on_wait: Callable[[float], None] | None = None,
    ) -> dict[str, Any]:
        """The job's report; ``on_wait`` is called with the seconds waited so far."""
        started = time.monotonic()
        deadline = started + timeout_s
        while True:
            report = self.batch_report(job)
            if report is not None:
                return report
            if on_wait is not None:
                on_wait(time.monotonic() - started)
            if time.monotonic() > deadline:
                raise MaaskitError(
                    f"no report for {job.input_key} after {timeout_s:g} s: is a batch function "
                    "deployed? (locally, its errors are in the local stack's log)"
                )
            time.sleep(poll_s)

    def download(self, key: str, destination: str | Path) -> Path:
        destination = Path(destination)
        destination.write_bytes(self.store.get_bytes(key))
        return destination


def _content_type(path: Path) -> str:
    return {
        ".json": "application/json",
        ".jsonl": "application/x-ndjson",
        ".csv": "text/csv",
        ".onnx": "application/octet-stream",
    }.get(path.suffix.lower(), "application/octet-stream")
