"""Text packages: the processing block, the encoder, pooling, and what publishing refuses."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from maaskit.errors import IntegrityError, InvalidModel, InvalidRequest
from maaskit.onnxmodel.text import TextEncoder, TextProcessing, answer, check_texts, pool
from maaskit.registry.catalog import MODEL_FILE, Registry, file_key, manifest_key
from maaskit.serving.runtime import Runtime
from tests.support import text


def encoder(max_length: int = 8) -> TextEncoder:
    return TextEncoder(
        text.tokenizer_json(), TextProcessing.from_dict(text.embedding_processing(max_length))
    )


# the processing block -----------------------------------------------------------------


def test_processing_round_trips_through_its_dict() -> None:
    declared = TextProcessing.from_dict(text.embedding_processing(normalize=True))
    assert TextProcessing.from_dict(declared.to_dict()) == declared
    assert declared.to_dict()["input"]["padding"] == "longest"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"output": {"kind": "embedding", "pooling": "max"}}, "unknown pooling 'max'"),
        ({"output": {"kind": "summary"}}, "unknown output kind 'summary'"),
        ({"input": {"feeds": {"attention_mask": "m"}}}, 'must map "input_ids"'),
        ({"input": {"feeds": {"input_ids": "i", "segment": "s"}}}, "unknown feed role 'segment'"),
        ({"input": {"feeds": {"input_ids": "i"}, "padding": "max_length"}}, "unknown padding"),
        ({"input": {"feeds": {"input_ids": "i"}, "max_length": 0}}, "max_length"),
    ],
)
def test_a_malformed_processing_block_is_refused_with_what_to_fix(
    change: dict[str, Any], message: str
) -> None:
    declared = {**text.embedding_processing(), **change}
    with pytest.raises(InvalidModel, match=message):
        TextProcessing.from_dict(declared)


# encoding -------------------------------------------------------------------------------


def test_a_request_is_one_batch_padded_to_its_longest_text_not_to_max_length() -> None:
    encoded = encoder(max_length=32).encode(["hello world", "the movie is great"])
    ids = encoded.feeds["input_ids"]
    assert ids.dtype == np.int64
    assert ids.shape == (2, 6)  # [CLS] 4 words [SEP]
    assert ids[0].tolist() == [2, 4, 5, 3, 0, 0]
    assert encoded.feeds["attention_mask"].tolist() == [[1, 1, 1, 1, 0, 0], [1] * 6]
    assert encoded.truncated == []
    assert set(encoded.feeds) == {"input_ids", "attention_mask"}


def test_long_texts_are_cut_to_max_length_and_reported() -> None:
    encoded = encoder(max_length=4).encode(["hello", "the movie is great", "a good movie"])
    assert encoded.feeds["input_ids"].shape == (3, 4)
    assert encoded.feeds["input_ids"][1].tolist() == [2, 11, 8, 3]  # still ends with [SEP]
    assert encoded.truncated == [1, 2]


def test_truncation_refused_on_request_names_the_text() -> None:
    with pytest.raises(InvalidRequest, match="text 1 is longer than this model's 4 tokens"):
        encoder(max_length=4).encode(["hello", "the movie is great"], truncate=False)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("", "item 0 is an empty string"),
        (["good", "  "], "item 1 is an empty string"),
        (["good", 3], "item 1 is int, not a string"),
        ([], "send a string or a non-empty list of strings"),
        ([[1, 2]], "item 0 is list, not a string"),
    ],
)
def test_bad_texts_are_refused_saying_what_the_model_takes(value: Any, message: str) -> None:
    with pytest.raises(InvalidRequest, match=message):
        check_texts(value, takes='"text"')


def test_mean_pooling_ignores_padding_and_normalises() -> None:
    hidden = np.array([[[1.0, 0.0], [3.0, 4.0], [100.0, 100.0]]], np.float32)
    mask = np.array([[1, 1, 0]])
    np.testing.assert_allclose(pool(hidden, mask, "mean", False), [[2.0, 2.0]])
    np.testing.assert_allclose(pool(hidden, mask, "mean", True), [[2**-0.5, 2**-0.5]], rtol=1e-6)
    np.testing.assert_allclose(pool(hidden, mask, "cls", False), [[1.0, 0.0]])


def test_classification_answers_labels_and_softmax_probabilities() -> None:
    declared = TextProcessing.from_dict(text.classification_processing(["neg", "neu", "pos"]))
    logits = np.array([[0.0, 1.0, 3.0], [2.0, 0.0, 0.0]], np.float32)
    reply = answer(declared.output, {"logits": logits}, np.ones((2, 3), np.int64))
    assert reply["label"].tolist() == ["pos", "neg"]
    expected = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(reply["probabilities"], expected, rtol=1e-6)


# publishing and loading -----------------------------------------------------------------


def test_a_package_is_stored_file_by_file_with_checksums_and_served_as_text(
    registry: Registry, tmp_path: Path
) -> None:
    # Given an embedding model, its tokenizer and the processing that joins them
    model, weights = text.embedding_model(text.vocab_size())
    manifest = registry.publish(
        "words", model, files=text.files(), processing=text.embedding_processing()
    )
    # Then every file is stored and checksummed in the manifest
    stored = registry.store.get_json(manifest_key("words", 1))
    assert set(stored["files"]) == {MODEL_FILE, "tokenizer.json"}
    assert (
        registry.store.get_bytes(file_key("words", 1, "tokenizer.json"))
        == text.files()["tokenizer.json"]
    )
    assert stored["processing"]["output"]["pooling"] == "mean"
    assert manifest.files["tokenizer.json"].size == len(text.files()["tokenizer.json"])
    # And the loaded model turns texts into the mean of their token rows
    loaded = Runtime(registry, cache_dir=tmp_path / "cache").load("words")
    assert loaded.text is not None
    reply = loaded.text.predict(["hello world"], loaded.run)
    np.testing.assert_allclose(
        reply.outputs["embedding"], [weights[[2, 4, 5, 3]].mean(axis=0)], rtol=1e-5
    )


def test_a_tokenizer_larger_than_the_embedding_table_is_refused_at_publish(
    registry: Registry,
) -> None:
    model, _ = text.embedding_model(rows=text.vocab_size() - 3)
    with pytest.raises(
        InvalidModel, match="vocabulary has 14 tokens but the model's embedding table has 11 rows"
    ):
        registry.publish("words", model, files=text.files(), processing=text.embedding_processing())
    assert registry.list_versions("words") == []


def test_feeds_that_do_not_cover_the_model_inputs_are_refused_at_publish(
    registry: Registry,
) -> None:
    model, _ = text.embedding_model(text.vocab_size(), token_types=True)
    with pytest.raises(InvalidModel, match="do not cover 'token_type_ids'"):
        registry.publish("words", model, files=text.files(), processing=text.embedding_processing())


def test_an_unknown_pooling_or_a_missing_tokenizer_is_refused_at_publish(
    registry: Registry,
) -> None:
    model, _ = text.embedding_model(text.vocab_size())
    with pytest.raises(InvalidModel, match="unknown pooling 'max'"):
        registry.publish(
            "words", model, files=text.files(), processing=text.embedding_processing(pooling="max")
        )
    with pytest.raises(InvalidModel, match="no such file"):
        registry.publish("words", model, processing=text.embedding_processing())
    assert registry.list_versions("words") == []


def test_a_package_file_that_does_not_match_its_checksum_is_never_served_nor_cached(
    registry: Registry, tmp_path: Path
) -> None:
    # Given a published package whose tokenizer was replaced in the bucket afterwards
    model, _ = text.embedding_model(text.vocab_size())
    registry.publish("words", model, files=text.files(), processing=text.embedding_processing())
    tampered = text.tokenizer_json([*text.WORDS, "extra"]).encode()
    registry.store.put(file_key("words", 1, "tokenizer.json"), tampered)
    cache = tmp_path / "cache"
    # When it is loaded, Then it is refused, and nothing of it is left in /tmp
    with pytest.raises(IntegrityError, match=r"tokenizer\.json sha256"):
        Runtime(registry, cache_dir=cache).load("words")
    leftovers = sorted(p.name for p in cache.iterdir())
    assert all(p.endswith(".onnx") for p in leftovers), leftovers  # only the good model file


def test_a_numeric_model_loads_without_text_processing_or_the_tokenizers_package(
    registry: Registry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.support import models

    monkeypatch.setitem(sys.modules, "tokenizers", None)  # importing it now fails
    registry.publish("iris", models.linear()[0])
    loaded = Runtime(registry, cache_dir=tmp_path / "cache").load("iris")
    assert loaded.text is None
    assert registry.get_manifest("iris", 1).files.keys() == {MODEL_FILE}


# the real pretrained model ---------------------------------------------------------------


@pytest.mark.slow
def test_minilm_package_embeds_like_the_raw_path_and_ranks_meaning(
    registry: Registry, tmp_path: Path
) -> None:
    import onnxruntime as ort

    from maaskit.onnxmodel.graph import embedding_rows
    from tests.support import minilm

    # Given the int8 MiniLM published with its tokenizer, mean pooling and L2 norm
    model, files = minilm.package()
    assert embedding_rows(model, "input_ids") == 30522
    registry.publish("minilm", model, files=files, processing=minilm.PROCESSING)
    loaded = Runtime(registry, cache_dir=tmp_path / "cache").load("minilm")
    assert loaded.text is not None
    sentences = [
        "A man is eating food.",
        "A man is eating a piece of bread.",
        "The stock market fell sharply today.",
    ]
    # When the sentences are encoded, run and pooled as the package declares
    ours = loaded.text.predict(sentences, loaded.run).outputs
    # Then they equal the raw tokenizer + session.run + pooling path
    raw = minilm.raw_embeddings(ort.InferenceSession(str(minilm.model_path())), sentences)
    got = ours["embedding"]
    cosine = (got * raw).sum(axis=1) / np.linalg.norm(got, axis=1) / np.linalg.norm(raw, axis=1)
    assert cosine.min() >= 0.9999
    # And eating is closer to eating than to the stock market
    assert got[0] @ got[1] > got[0] @ got[2]
