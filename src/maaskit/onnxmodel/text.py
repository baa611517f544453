"""Text models: the processing a package declares, the tokenizer that runs it, and pooling.

A version may carry a ``tokenizer.json`` and a ``processing`` block in its manifest, saying
how texts become the model's inputs and how its outputs become the answer (an embedding,
a label with probabilities, or the raw tensors). Importing this module costs numpy only:
``tokenizers`` is imported when a tokenizer is first built, so models without one never
load it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from maaskit.errors import InvalidModel, InvalidRequest
from maaskit.onnxmodel.signature import Signature, TensorSpec

TOKENIZER_FILE = "tokenizer.json"
DEFAULT_TEXT_INPUT = "text"
DEFAULT_MAX_LENGTH = 512
ROLES = ("input_ids", "attention_mask", "token_type_ids")
POOLINGS = ("mean", "cls", "none")
OUTPUT_KINDS = ("embedding", "classification", "raw")
APPLY = ("softmax", "none")
_INPUT_KEYS = frozenset(
    {"kind", "name", "tokenizer", "max_length", "truncation", "padding", "feeds"}
)
_OUTPUT_KEYS = frozenset({"kind", "from", "pooling", "normalize", "apply", "labels"})


def _refuse(message: str) -> InvalidModel:
    return InvalidModel(f"invalid processing: {message}")


def _choice(value: Any, allowed: Sequence[str], what: str) -> str:
    if value not in allowed:
        raise _refuse(f"unknown {what} {value!r}; use one of: {', '.join(allowed)}")
    return str(value)


def _unknown_keys(data: Mapping[str, Any], allowed: frozenset[str], block: str) -> None:
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise _refuse(
            f"unknown field {unknown[0]!r} in {block}; allowed: {', '.join(sorted(allowed))}"
        )


@dataclass(frozen=True)
class TextInput:
    """How texts become the model's inputs."""

    feeds: Mapping[str, str]  # role -> the model's input name
    name: str = DEFAULT_TEXT_INPUT
    tokenizer: str = TOKENIZER_FILE
    max_length: int = DEFAULT_MAX_LENGTH
    truncation: bool = True
    padding: str = "longest"

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": "text",
            "name": self.name,
            "tokenizer": self.tokenizer,
            "max_length": self.max_length,
            "truncation": self.truncation,
            "padding": self.padding,
            "feeds": dict(self.feeds),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TextInput:
        if not isinstance(data, Mapping):
            raise _refuse('"input" must be an object')
        _unknown_keys(data, _INPUT_KEYS, '"input"')
        _choice(data.get("kind", "text"), ("text",), "input kind")
        feeds = data.get("feeds")
        if not isinstance(feeds, Mapping) or "input_ids" not in feeds:
            raise _refuse(
                '"input.feeds" must map "input_ids" (and optionally "attention_mask", '
                '"token_type_ids") to the model\'s input names'
            )
        for role, target in feeds.items():
            _choice(role, ROLES, "feed role")
            if not isinstance(target, str) or not target:
                raise _refuse(f"feed {role!r} must name a model input")
        max_length = data.get("max_length", DEFAULT_MAX_LENGTH)
        if isinstance(max_length, bool) or not isinstance(max_length, int) or max_length < 2:
            raise _refuse(f'"max_length" must be an integer >= 2, got {max_length!r}')
        truncation = data.get("truncation", True)
        if not isinstance(truncation, bool):
            raise _refuse('"truncation" must be true or false')
        name = data.get("name", DEFAULT_TEXT_INPUT)
        tokenizer = data.get("tokenizer", TOKENIZER_FILE)
        if not isinstance(name, str) or not name or not isinstance(tokenizer, str):
            raise _refuse('"name" and "tokenizer" must be non-empty strings')
        return cls(
            feeds=dict(feeds),
            name=name,
            tokenizer=tokenizer,
            max_length=max_length,
            truncation=truncation,
            padding=_choice(data.get("padding", "longest"), ("longest",), "padding"),
        )


@dataclass(frozen=True)
class TextOutput:
    """How the model's outputs become the answer."""

    kind: str = "raw"
    source: str | None = None  # "from": the model output read
    pooling: str = "mean"
    normalize: bool = False
    apply: str = "softmax"
    labels: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        if self.kind == "raw":
            return {"kind": "raw"}
        if self.kind == "embedding":
            return {
                "kind": "embedding",
                "from": self.source,
                "pooling": self.pooling,
                "normalize": self.normalize,
            }
        return {
            "kind": "classification",
            "from": self.source,
            "apply": self.apply,
            "labels": list(self.labels),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TextOutput:
        if not isinstance(data, Mapping):
            raise _refuse('"output" must be an object')
        _unknown_keys(data, _OUTPUT_KEYS, '"output"')
        kind = _choice(data.get("kind", "raw"), OUTPUT_KINDS, "output kind")
        if kind == "raw":
            return cls()
        source = data.get("from")
        if source is not None and (not isinstance(source, str) or not source):
            raise _refuse('"output.from" must name a model output')
        if kind == "embedding":
            normalize = data.get("normalize", False)
            if not isinstance(normalize, bool):
                raise _refuse('"normalize" must be true or false')
            return cls(
                kind=kind,
                source=source,
                pooling=_choice(data.get("pooling", "mean"), POOLINGS, "pooling"),
                normalize=normalize,
            )
        labels = data.get("labels", [])
        if not isinstance(labels, list) or not all(isinstance(x, str) for x in labels):
            raise _refuse('"labels" must be a list of strings (class names in output order)')
        return cls(
            kind=kind,
            source=source,
            apply=_choice(data.get("apply", "softmax"), APPLY, "apply"),
            labels=tuple(labels),
        )


@dataclass(frozen=True)
class TextProcessing:
    """A package's processing block: ``input`` absent means the model takes tensors."""

    output: TextOutput = field(default_factory=TextOutput)
    input: TextInput | None = None

    @property
    def takes_text(self) -> bool:
        return self.input is not None

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"output": self.output.to_dict()}
        if self.input is not None:
            data["input"] = self.input.to_dict()
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TextProcessing:
        if not isinstance(data, Mapping):
            raise _refuse("the processing block must be an object")
        _unknown_keys(data, frozenset({"input", "output"}), "processing")
        text_input = TextInput.from_dict(data["input"]) if data.get("input") is not None else None
        output = TextOutput.from_dict(data.get("output") or {"kind": "raw"})
        if output.kind != "raw" and text_input is None:
            raise _refuse(
                f'an "{output.kind}" output needs an "input" block saying how texts are tokenized'
            )
        return cls(output=output, input=text_input)

    def bind(self, signature: Signature) -> TextProcessing:
        """Checked against the model: feeds cover its inputs, ``from`` names an output.

        Returns the processing with ``from`` filled in when the model has one output.
        """
        if self.input is None:
            return self
        inputs = [spec.name for spec in signature.inputs]
        fed = list(self.input.feeds.values())
        missing = [name for name in inputs if name not in fed]
        if missing:
            raise _refuse(
                f"the model takes {', '.join(map(repr, inputs))} but the declared feeds "
                f"({', '.join(f'{r}={n!r}' for r, n in self.input.feeds.items())}) do not cover "
                f"{', '.join(map(repr, missing))}"
            )
        extra = [name for name in fed if name not in inputs]
        if extra:
            raise _refuse(
                f"feed {extra[0]!r} is not an input of the model (inputs: {', '.join(map(repr, inputs))})"
            )
        for role, name in self.input.feeds.items():
            spec = signature.input(name)
            if spec is not None and spec.datatype not in ("INT64", "INT32"):
                raise _refuse(
                    f"feed {role} goes to {name!r}, which takes {spec.datatype}, not integers"
                )
        if self.output.kind == "raw":
            return self
        outputs = [spec.name for spec in signature.outputs]
        source = self.output.source
        if source is None:
            source = _default_source(self.output.kind, outputs)
        if source not in outputs:
            raise _refuse(
                f'"output.from" is {source!r}, which the model does not return '
                f"(outputs: {', '.join(map(repr, outputs))})"
            )
        spec = next(s for s in signature.outputs if s.name == source)
        if self.output.kind == "embedding":
            rank = len(spec.shape)
            if rank not in (2, 3):
                raise _refuse(f"output {source!r} has rank {rank}; an embedding needs rank 3 or 2")
            if rank == 2 and self.output.pooling != "none":
                raise _refuse(f'output {source!r} is already pooled (rank 2): use pooling "none"')
            if rank == 3 and self.output.pooling == "none":
                raise _refuse(
                    f'output {source!r} is per token (rank 3): use pooling "mean" or "cls"'
                )
        return TextProcessing(output=_with_source(self.output, source), input=self.input)


def _default_source(kind: str, outputs: list[str]) -> str:
    preferred = (
        ("last_hidden_state", "sentence_embedding")
        if kind == "embedding"
        else ("logits", "probabilities")
    )
    for name in preferred:
        if name in outputs:
            return name
    if len(outputs) == 1:
        return outputs[0]
    raise _refuse(
        f'the model has several outputs ({", ".join(map(repr, outputs))}): name one in "output.from"'
    )


def _with_source(output: TextOutput, source: str) -> TextOutput:
    return TextOutput(
        kind=output.kind,
        source=source,
        pooling=output.pooling,
        normalize=output.normalize,
        apply=output.apply,
        labels=output.labels,
    )


# the tokenizer -----------------------------------------------------------------------


def load_tokenizer(tokenizer_json: str) -> Any:
    """A ``tokenizers.Tokenizer`` from its JSON, or ``InvalidModel`` saying why not."""
    from tokenizers import Tokenizer

    try:
        return Tokenizer.from_str(tokenizer_json)
    except Exception as err:  # the Rust side raises a bare Exception
        raise InvalidModel(
            f"{TOKENIZER_FILE} is not a Hugging Face tokenizers file: {err}"
        ) from None


def vocab_size(tokenizer_json: str) -> int:
    return int(load_tokenizer(tokenizer_json).get_vocab_size(with_added_tokens=True))


def check_texts(value: Any, *, takes: str) -> list[str]:
    """A string or a non-empty list of non-empty strings, or a 400 saying what to send."""
    texts = [value] if isinstance(value, str) else value
    if not isinstance(texts, list) or not texts:
        raise InvalidRequest(
            f"this model takes text ({takes}): send a string or a non-empty list of strings, "
            f"got {type(value).__name__}"
        )
    for index, text in enumerate(texts):
        if not isinstance(text, str):
            raise InvalidRequest(
                f"item {index} is {type(text).__name__}, not a string: this model takes text "
                f"({takes}); send a string or a list of strings only"
            )
        if not text.strip():
            raise InvalidRequest(f"item {index} is an empty string: send some text to encode")
    return texts


@dataclass(frozen=True)
class EncodedText:
    feeds: dict[str, np.ndarray]  # int64, keyed by the model's input names
    truncated: list[int]  # indices of the texts cut to max_length
    attention_mask: np.ndarray


class TextEncoder:
    """Texts to the model's feeds: one ``encode_batch`` per request, padded to the longest."""

    def __init__(self, tokenizer_json: str, processing: TextProcessing) -> None:
        if processing.input is None:
            raise _refuse("this model does not take text (no input block)")
        self.spec = processing.input
        tokenizer = load_tokenizer(tokenizer_json)
        tokenizer.enable_truncation(max_length=self.spec.max_length)
        padding = tokenizer.padding or {}
        pad_token = padding.get("pad_token") or _pad_token(tokenizer)
        pad_id = padding.get("pad_id", tokenizer.token_to_id(pad_token) or 0)
        tokenizer.enable_padding(pad_id=pad_id, pad_token=pad_token)  # to the longest
        self.tokenizer = tokenizer

    def encode(self, texts: Sequence[str], *, truncate: bool = True) -> EncodedText:
        encodings = self.tokenizer.encode_batch(list(texts))
        truncated = [i for i, e in enumerate(encodings) if e.overflowing]
        if truncated and not (truncate and self.spec.truncation):
            raise InvalidRequest(
                f"text {truncated[0]} is longer than this model's {self.spec.max_length} tokens"
                f" ({len(truncated)} text(s) too long); shorten it, or allow truncation "
                "(the default, without ?truncate=false)"
            )
        mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
        columns = {
            "input_ids": lambda: np.array([e.ids for e in encodings], dtype=np.int64),
            "attention_mask": lambda: mask,
            "token_type_ids": lambda: np.array([e.type_ids for e in encodings], dtype=np.int64),
        }
        feeds = {name: columns[role]() for role, name in self.spec.feeds.items()}
        return EncodedText(feeds=feeds, truncated=truncated, attention_mask=mask)


def _pad_token(tokenizer: Any) -> str:
    for token in ("[PAD]", "<pad>", "<|pad|>"):
        if tokenizer.token_to_id(token) is not None:
            return token
    return "[PAD]"


# outputs to answers ------------------------------------------------------------------


def pool(
    hidden: np.ndarray, attention_mask: np.ndarray, pooling: str, normalize: bool
) -> np.ndarray:
    """Token states ``[batch, seq, dim]`` (or pooled ``[batch, dim]``) to ``[batch, dim]`` float32."""
    hidden = np.asarray(hidden, dtype=np.float32)
    if pooling == "mean":
        mask = attention_mask.astype(np.float32)[:, :, None]
        counts = np.maximum(mask.sum(axis=1), 1e-9)
        pooled = (hidden * mask).sum(axis=1) / counts
    elif pooling == "cls":
        pooled = hidden[:, 0, :]
    elif pooling == "none":
        pooled = hidden
    else:
        raise _refuse(f"unknown pooling {pooling!r}; use one of: {', '.join(POOLINGS)}")
    if normalize:
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        pooled = pooled / np.maximum(norms, 1e-12)
    return np.ascontiguousarray(pooled, dtype=np.float32)


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits.astype(np.float32) - logits.max(axis=-1, keepdims=True)
    exp = np.exp(shifted)
    result: np.ndarray = exp / exp.sum(axis=-1, keepdims=True)
    return result


def answer(
    output: TextOutput, results: Mapping[str, np.ndarray], attention_mask: np.ndarray
) -> dict[str, Any]:
    """The reply's outputs for ``output.kind`` from the model's results."""
    if output.kind == "raw" or output.source is None:
        return dict(results)
    values = results[output.source]
    if output.kind == "embedding":
        return {"embedding": pool(values, attention_mask, output.pooling, output.normalize)}
    scores = values.reshape(values.shape[0], -1)
    probabilities = softmax(scores) if output.apply == "softmax" else scores.astype(np.float32)
    best = probabilities.argmax(axis=1)
    names = output.labels
    labels = np.array([names[i] if i < len(names) else str(int(i)) for i in best], dtype=object)
    return {"label": labels, "probabilities": probabilities}


def output_names(output: TextOutput) -> list[str] | None:
    """The model outputs ``session.run`` must compute (None: all of them)."""
    return None if output.kind == "raw" or output.source is None else [output.source]


# publishing --------------------------------------------------------------------------


def check_package(
    processing: Mapping[str, Any],
    signature: Signature,
    model_bytes: bytes,
    files: Mapping[str, bytes],
) -> TextProcessing:
    """The declared processing, checked against the model and the package's tokenizer.

    Refused: feeds that do not cover the model's inputs, an unknown pooling or kind, a
    missing tokenizer, and a tokenizer whose ids go past the model's embedding rows (which
    would fail, or read garbage, on the first rare word).
    """
    from maaskit.onnxmodel.graph import embedding_rows

    bound = TextProcessing.from_dict(processing).bind(signature)
    if bound.input is None:
        return bound
    tokenizer_file = bound.input.tokenizer
    if tokenizer_file not in files:
        raise _refuse(
            f"the processing names the tokenizer {tokenizer_file!r} but the package has no such "
            f"file (files: {', '.join(sorted(files)) or 'none'})"
        )
    try:
        tokenizer_json = files[tokenizer_file].decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidModel(f"{tokenizer_file} is not UTF-8 text") from None
    vocabulary = vocab_size(tokenizer_json)
    rows = embedding_rows(model_bytes, bound.input.feeds["input_ids"])
    if rows is not None and vocabulary > rows:
        raise InvalidModel(
            f"the tokenizer does not fit the model: its vocabulary has {vocabulary} tokens but "
            f"the model's embedding table has {rows} rows; publish the tokenizer the model "
            "was trained with"
        )
    labels = bound.output.labels
    if bound.output.kind == "classification" and labels:
        spec = next(s for s in signature.outputs if s.name == bound.output.source)
        classes = spec.shape[-1] if spec.shape else None
        if isinstance(classes, int) and classes > 0 and classes != len(labels):
            raise _refuse(
                f"{len(labels)} labels given but output {spec.name!r} has {classes} classes"
            )
    return bound


# serving -----------------------------------------------------------------------------

Runner = Callable[[Mapping[str, np.ndarray], "list[str] | None"], Mapping[str, np.ndarray]]


@dataclass(frozen=True)
class TextAnswer:
    outputs: dict[str, Any]  # embedding, or label + probabilities, or the raw tensors
    truncated: list[int]


@dataclass(frozen=True)
class TextModel:
    """What a loaded model that takes text adds to its session: processing and tokenizer."""

    processing: TextProcessing
    encoder: TextEncoder

    @classmethod
    def load(cls, processing: TextProcessing, tokenizer_json: str) -> TextModel:
        return cls(processing, TextEncoder(tokenizer_json, processing))

    @property
    def input_name(self) -> str:
        return self.encoder.spec.name

    def check(self, value: Any) -> list[str]:
        return check_texts(value, takes=describe_text_input(self.processing))

    def predict(self, texts: Sequence[str], run: Runner, *, truncate: bool = True) -> TextAnswer:
        """Encode ``texts`` in one batch, run the model, and shape the answer as declared."""
        encoded = self.encoder.encode(texts, truncate=truncate)
        results = run(encoded.feeds, output_names(self.processing.output))
        return TextAnswer(
            answer(self.processing.output, results, encoded.attention_mask), encoded.truncated
        )


def served_signature(processing: TextProcessing, signature: Signature) -> Signature:
    """What a text model takes and returns as callers see it: text in, answers out."""
    if processing.input is None:
        return signature
    text_input = TensorSpec(processing.input.name, "BYTES", ("batch",))
    output = processing.output
    source = next((s for s in signature.outputs if s.name == output.source), None)
    last = source.shape[-1] if source is not None and source.shape else None
    if output.kind == "embedding":
        outputs: tuple[TensorSpec, ...] = (TensorSpec("embedding", "FP32", ("batch", last)),)
    elif output.kind == "classification":
        outputs = (
            TensorSpec("label", "BYTES", ("batch",)),
            TensorSpec("probabilities", "FP32", ("batch", last)),
        )
    else:
        outputs = signature.outputs
    return Signature(inputs=(text_input,), outputs=outputs)


def describe_text_input(processing: TextProcessing) -> str:
    name = processing.input.name if processing.input is not None else DEFAULT_TEXT_INPUT
    return f'text: {{"input": "..."}} or {{"input": ["...", "..."]}} (V2: a BYTES input named {name!r})'
