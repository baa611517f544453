"""Packages as users have them: export folders, archives, a bare file with options."""

from __future__ import annotations

import io
import json
import tarfile
import zipfile
from pathlib import Path

import pytest

from maaskit.errors import InvalidModel, InvalidRequest, PayloadTooLarge
from maaskit.registry.packages import TextOptions, read_archive, read_path
from tests.support import text

FEEDS = {"input_ids": "input_ids", "attention_mask": "attention_mask"}


def sentence_transformers_folder(root: Path, *, normalize: bool = True) -> Path:
    """The layout a sentence-transformers ONNX export leaves (only what a package reads)."""
    model, _ = text.embedding_model(text.vocab_size())
    (root / "onnx").mkdir(parents=True)
    (root / "onnx" / "model.onnx").write_bytes(model)
    (root / "tokenizer.json").write_text(text.tokenizer_json())
    (root / "1_Pooling").mkdir()
    (root / "1_Pooling" / "config.json").write_text(
        json.dumps({"word_embedding_dimension": 4, "pooling_mode_mean_tokens": True})
    )
    (root / "config.json").write_text(json.dumps({"max_position_embeddings": 512}))
    (root / "tokenizer_config.json").write_text(json.dumps({"model_max_length": 1e30}))
    (root / "sentence_bert_config.json").write_text(json.dumps({"max_seq_length": 128}))
    modules = [{"type": "sentence_transformers.models.Transformer"}]
    if normalize:
        modules.append({"type": "sentence_transformers.models.Normalize"})
    (root / "modules.json").write_text(json.dumps(modules))
    (root / "README.md").write_text("not part of the package")
    return root


def optimum_classifier_folder(root: Path) -> Path:
    model, _, _ = text.classifier_model(text.vocab_size(), classes=3)
    root.mkdir(parents=True)
    (root / "model.onnx").write_bytes(model)
    (root / "tokenizer.json").write_text(text.tokenizer_json())
    (root / "config.json").write_text(
        json.dumps(
            {
                "architectures": ["BertForSequenceClassification"],
                "id2label": {"2": "positive", "0": "negative", "1": "neutral"},
                "max_position_embeddings": 512,
            }
        )
    )
    (root / "tokenizer_config.json").write_text(json.dumps({"model_max_length": 64}))
    return root


def test_a_sentence_transformers_folder_reads_as_a_mean_pooled_normalised_embedding(
    tmp_path: Path,
) -> None:
    package = read_path(sentence_transformers_folder(tmp_path / "st"))
    assert package.files == {"tokenizer.json": text.tokenizer_json().encode()}
    assert package.processing == {
        "input": {
            "kind": "text",
            "tokenizer": "tokenizer.json",
            "max_length": 128,
            "truncation": True,
            "padding": "longest",
            "feeds": FEEDS,
        },
        "output": {"kind": "embedding", "pooling": "mean", "normalize": True},
    }


def test_an_optimum_classifier_folder_reads_its_labels_in_class_order(tmp_path: Path) -> None:
    package = read_path(optimum_classifier_folder(tmp_path / "clf"))
    assert package.processing is not None
    assert package.processing["output"] == {
        "kind": "classification",
        "apply": "softmax",
        "labels": ["negative", "neutral", "positive"],
    }
    assert package.processing["input"]["max_length"] == 64
    assert package.processing["input"]["feeds"] == {"input_ids": "input_ids"}


def test_explicit_options_win_over_the_folder(tmp_path: Path) -> None:
    folder = sentence_transformers_folder(tmp_path / "st")
    package = read_path(folder, TextOptions(pooling="cls", normalize=False, max_length=16))
    assert package.processing is not None
    assert package.processing["output"] == {
        "kind": "embedding",
        "pooling": "cls",
        "normalize": False,
    }
    assert package.processing["input"]["max_length"] == 16


def test_a_bare_file_with_a_tokenizer_and_pooling_options(tmp_path: Path) -> None:
    model, _ = text.embedding_model(text.vocab_size())
    path = tmp_path / "model.onnx"
    path.write_bytes(model)
    options = TextOptions(tokenizer=text.tokenizer_json().encode(), pooling="mean", normalize=True)
    package = read_path(path, options)
    assert package.model == model
    assert package.processing is not None
    assert package.processing["output"] == {
        "kind": "embedding",
        "pooling": "mean",
        "normalize": True,
    }
    assert package.processing["input"]["max_length"] == 512
    # and a bare file alone is today's tensor model
    assert read_path(path).processing is None
    with pytest.raises(InvalidRequest, match="text options need a tokenizer"):
        read_path(path, TextOptions(pooling="mean"))


def test_a_pooling_maaskit_does_not_do_is_refused_with_the_fix(tmp_path: Path) -> None:
    folder = sentence_transformers_folder(tmp_path / "st")
    (folder / "1_Pooling" / "config.json").write_text(json.dumps({"pooling_mode_max_tokens": True}))
    with pytest.raises(InvalidModel, match="pooling_mode_max_tokens; maaskit pools by mean or CLS"):
        read_path(folder)


def zip_of(folder: Path, prefix: str = "") -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for path in sorted(folder.rglob("*")):
            archive.write(path, prefix + path.relative_to(folder).as_posix())
    return buffer.getvalue()


def tar_gz_of(folder: Path, prefix: str = "") -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        archive.add(folder, arcname=prefix.rstrip("/") or ".")
    return buffer.getvalue()


@pytest.mark.parametrize(("pack", "name"), [(zip_of, "m.zip"), (tar_gz_of, "m.tar.gz")])
@pytest.mark.parametrize("prefix", ["", "all-minilm/"])
def test_archives_read_like_the_folder_inside_them(
    tmp_path: Path, pack: object, name: str, prefix: str
) -> None:
    folder = sentence_transformers_folder(tmp_path / "st")
    got = read_archive(pack(folder, prefix), name)  # type: ignore[operator]
    want = read_path(folder)
    assert (got.model, got.files, got.processing) == (want.model, want.files, want.processing)


def test_an_archive_with_a_path_outside_it_is_refused(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("model.onnx", text.embedding_model(text.vocab_size())[0])
        archive.writestr("../../etc/tokenizer.json", "{}")
    with pytest.raises(InvalidRequest, match=r"unsafe path '\.\./\.\./etc/tokenizer\.json'"):
        read_archive(buffer.getvalue(), "evil.zip")


def test_an_archive_with_a_link_is_refused() -> None:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        link = tarfile.TarInfo("tokenizer.json")
        link.type = tarfile.SYMTYPE
        link.linkname = "/etc/passwd"
        archive.addfile(link)
    with pytest.raises(InvalidRequest, match="links are refused"):
        read_archive(buffer.getvalue(), "evil.tar.gz")


def test_an_archive_that_unpacks_past_the_limit_is_refused_before_inflating(
    tmp_path: Path,
) -> None:
    data = zip_of(sentence_transformers_folder(tmp_path / "st"))
    with pytest.raises(PayloadTooLarge, match="unpacks to"):
        read_archive(data, "m.zip", max_bytes=100)


def test_an_archive_failing_its_checksum_is_refused(tmp_path: Path) -> None:
    data = bytearray(zip_of(sentence_transformers_folder(tmp_path / "st")))
    payload = text.tokenizer_json().encode()
    at = bytes(data).find(payload[:40])
    assert at > 0  # stored uncompressed: flip a byte of the tokenizer
    data[at + 10] ^= 0xFF
    with pytest.raises(InvalidModel, match="failing its checksum"):
        read_archive(bytes(data), "m.zip")
