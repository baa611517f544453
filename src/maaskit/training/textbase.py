"""The frozen encoder of a text fine-tune: a published text package with an embedding output.

Prepare pins the base version (an alias moving during the run changes nothing). Embed runs
the package as it serves (its tokenizer, feeds, pooling and normalisation) on the training
texts; Export composes the same encoder with the trained head; Register publishes the
result with the base's tokenizer and input block and a ``classification`` output, so the
fine-tuned model takes the same ``{"input": "..."}`` as its base and answers with a label.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from maaskit.errors import IntegrityError, InvalidModel, InvalidRequest, NotFound
from maaskit.onnxmodel.text import TextInput, TextOutput, TextProcessing, answer, output_names
from maaskit.registry.catalog import Manifest, Registry
from maaskit.serving.runtime import Runtime
from maaskit.training.compose import Pooling
from maaskit.training.embedding import Embed

KIND = "text-encoder"


@dataclass(frozen=True)
class TextBase:
    name: str
    version: int
    sha256: str

    @property
    def label(self) -> str:
        return f"{self.name!r} version {self.version}"

    def lineage(self) -> dict[str, Any]:
        return {"kind": KIND, "name": self.name, "version": self.version, "sha256": self.sha256}

    @classmethod
    def from_lineage(cls, data: Mapping[str, Any] | None) -> TextBase | None:
        if not data or data.get("kind") != KIND:
            return None
        return cls(name=str(data["name"]), version=int(data["version"]), sha256=str(data["sha256"]))

    @staticmethod
    def describes(manifest: Manifest) -> bool:
        """Whether ``manifest`` is a text package (it declares how texts become inputs)."""
        processing = manifest.processing or {}
        return isinstance(processing.get("input"), Mapping)

    @classmethod
    def of(cls, manifest: Manifest) -> TextBase:
        base = cls(name=manifest.name, version=manifest.version, sha256=manifest.sha256)
        kind = base.processing(manifest)[1].kind
        if kind != "embedding":
            raise InvalidRequest(
                f"base model {base.label} is a text package whose output is {kind!r}, not "
                "an embedding: fine-tune from an encoder (output kind embedding)"
            )
        return base

    def manifest(self, registry: Registry) -> Manifest:
        """The pinned version's manifest, refused if the version was replaced since Prepare."""
        manifest = registry.get_manifest(self.name, self.version)
        if manifest.sha256 != self.sha256:
            raise IntegrityError(
                f"base model {self.label} is not the file this run started from "
                f"(sha256 {manifest.sha256[:12]}… instead of {self.sha256[:12]}…)"
            )
        return manifest

    def processing(self, manifest: Manifest) -> tuple[TextInput, TextOutput]:
        """The package's input and output blocks, checked against its model."""
        bound = TextProcessing.from_dict(manifest.processing or {}).bind(manifest.signature)
        if bound.input is None or bound.output.source is None:
            raise InvalidModel(f"base model {self.label} does not declare how it takes text")
        return bound.input, bound.output

    def pooling(self, manifest: Manifest) -> Pooling:
        text_input, output = self.processing(manifest)
        return Pooling(
            source=output.source or "",
            pooling=output.pooling,
            normalize=output.normalize,
            mask_input=text_input.feeds.get("attention_mask"),
        )

    def embedder(self, runtime: Runtime) -> Embed:
        """Texts to embeddings exactly as the base package serves them."""
        model = runtime.load(self.name, version=self.version)
        if model.manifest.sha256 != self.sha256:
            self.manifest(runtime.registry)  # raises the reason
        encoder, processing = model.encoder, model.processing
        if encoder is None or processing is None:
            raise InvalidModel(f"base model {self.label} does not take text")
        output = processing.output

        def embed(texts: Sequence[str]) -> np.ndarray:
            encoded = encoder.encode(texts)
            results = model.run(encoded.feeds, output_names(output))
            embeddings: np.ndarray = answer(output, results, encoded.attention_mask)["embedding"]
            return embeddings

        return embed

    def file(self, registry: Registry, manifest: Manifest, filename: str) -> bytes:
        """One file of the base package, checked against its manifest."""
        entry = manifest.files.get(filename)
        if entry is None:
            raise NotFound(f"base model {self.label} has no file {filename!r}")
        data = registry.store.get_bytes(manifest.file_key(filename))
        if hashlib.sha256(data).hexdigest() != entry.sha256:
            raise IntegrityError(
                f"base model {self.label}'s {filename} does not match its manifest's sha256"
            )
        return data

    def classifier_processing(self, manifest: Manifest, labels: Sequence[str]) -> dict[str, Any]:
        """The fine-tuned package's processing: the base's input block, a label output."""
        text_input, _ = self.processing(manifest)
        return {
            "input": text_input.to_dict(),
            "output": {
                "kind": "classification",
                "from": "probabilities",
                "apply": "none",  # the head's softmax is in the graph
                "labels": [str(label) for label in labels],
            },
        }
