"""Predictions over HTTP, answered as the API's JSON (the CLI prints them as they come)."""

from __future__ import annotations

from typing import Any

from maaskit.sdk.connection import Connection
from maaskit.sdk.model import nested, quote


class PredictionOperations(Connection):
    """One call to the simple or the V2 route of a model."""

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
                return model.infer_request(data)
            reply = model.infer_reply(data)
            return {
                "model_name": reply.get("model_name", name),
                "model_version": reply.get("model_version"),
                "outputs": {o["name"]: nested(o["data"], o.get("shape")) for o in reply["outputs"]},
            }
        body = (
            data
            if isinstance(data, dict) and ({"input", "inputs"} & set(data))
            else {"input": data}
        )
        return self.transport.request(
            "POST",
            f"models/{quote(name)}/predict",
            body=body,
            query={"version": None if version is None else str(version), "alias": alias},
        )
