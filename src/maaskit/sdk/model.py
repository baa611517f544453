"""``Model``: one served model over HTTP, numpy in and numpy out.

Importing this module costs numpy and the standard library.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from maaskit.errors import InvalidRequest, NotFound
from maaskit.onnxmodel.signature import NUMPY_TO_V2, V2_TO_NUMPY
from maaskit.sdk.targets import LOCAL_API_URL
from maaskit.sdk.transport import HttpTransport, RetryPolicy, SigV4Signer, region_of

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


def nested(data: Any, shape: Sequence[int] | None) -> Any:
    """Flat V2 ``data`` nested by ``shape``, each number kept as the server wrote it.

    Not through the declared dtype: a float32 read back into Python prints as
    0.10000000149011612 where the server sent 0.1.
    """
    if shape is None or not isinstance(data, list):
        return data
    return np.asarray(data, dtype=object).reshape(shape).tolist()


def quote(segment: str) -> str:
    """``segment`` as one URL path segment."""
    from urllib.parse import quote as url_quote

    return url_quote(str(segment), safe="")


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
        path = f"v2/models/{quote(self.name)}"
        return path + (f"/versions/{quote(version)}" if version else "")

    def metadata(self) -> dict[str, Any]:
        """Open Inference Protocol metadata: inputs and outputs with datatypes and shapes."""
        version = self._resolved_version()
        document: dict[str, Any] = self.transport.request("GET", self._v2_path(version))
        self._metadata = document
        return document

    def describe(self) -> dict[str, Any]:
        """The registry's view: every version's manifest and the aliases."""
        document: dict[str, Any] = self.transport.request("GET", f"models/{quote(self.name)}")
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
            f"models/{quote(self.name)}/predict",
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
        return self.infer_request({"inputs": tensors})

    def infer_request(self, body: Mapping[str, Any]) -> dict[str, Any]:
        """A complete V2 request body, posted as given (with its own ``parameters`` or
        ``outputs``, say); the reply as the server sent it."""
        reply: dict[str, Any] = self.transport.request(
            "POST", self._v2_path(self._resolved_version()) + "/infer", body=dict(body)
        )
        return reply
