"""The registry, directly over S3: push a model, list and describe them, move an alias."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from maaskit.errors import MaaskitError
from maaskit.sdk.connection import Connection


class CatalogOperations(Connection):
    """Models and aliases, written through the same registry code the functions use."""

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
