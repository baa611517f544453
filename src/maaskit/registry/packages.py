"""Model packages as users already have them: export folders, archives, or a bare file.

A Hugging Face Optimum or sentence-transformers export folder says everything a text
package needs, so nothing is restated on the command line:

* ``model.onnx`` (or ``onnx/model.onnx``) and ``tokenizer.json``;
* ``1_Pooling/config.json``: mean or CLS pooling; a ``Normalize`` module (``modules.json``
  or a ``2_Normalize`` folder): L2 normalisation;
* ``config.json``: ``id2label`` (the class names of a classifier) and
  ``max_position_embeddings``;
* ``sentence_bert_config.json`` ``max_seq_length``, else ``tokenizer_config.json``
  ``model_max_length``: how many tokens a text may have.

Options given explicitly (``--pooling mean --normalize``) win over what the files say.
Archives (``.zip``, ``.tar.gz``) hold the same layout and are read in memory with every
member checked: no absolute or ``..`` paths, no links, a bounded total size.
"""

from __future__ import annotations

import io
import json
import tarfile
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from maaskit.errors import InvalidModel, InvalidRequest, PayloadTooLarge
from maaskit.onnxmodel.text import DEFAULT_MAX_LENGTH, ROLES, TOKENIZER_FILE

ARCHIVE_SUFFIXES = (".zip", ".tar.gz", ".tgz")
# The files of an export folder that a package uses; everything else is left behind.
_WANTED = (
    "model.onnx",
    "onnx/model.onnx",
    TOKENIZER_FILE,
    "config.json",
    "tokenizer_config.json",
    "sentence_bert_config.json",
    "modules.json",
    "1_Pooling/config.json",
)
_HUGE_MAX_LENGTH = 1_000_000  # tokenizer_config's "no limit" is 1e30


@dataclass(frozen=True)
class TextOptions:
    """What a user may say explicitly; ``None`` means: read it from the package's files."""

    tokenizer: bytes | None = None
    pooling: str | None = None
    normalize: bool | None = None
    max_length: int | None = None
    labels: tuple[str, ...] | None = None


@dataclass(frozen=True)
class Package:
    model: bytes
    files: dict[str, bytes] = field(default_factory=dict)
    processing: dict[str, Any] | None = None
    source: str = ""


def is_archive(name: str) -> bool:
    return name.lower().endswith(ARCHIVE_SUFFIXES)


def _json(entries: Mapping[str, bytes], name: str) -> dict[str, Any]:
    if name not in entries:
        return {}
    try:
        data = json.loads(entries[name])
    except (ValueError, UnicodeDecodeError) as err:
        raise InvalidModel(f"{name} is not valid JSON: {err}") from None
    if not isinstance(data, dict):
        raise InvalidModel(f"{name} must hold a JSON object")
    return data


def _model_entry(entries: Mapping[str, bytes]) -> bytes:
    for name in ("model.onnx", "onnx/model.onnx"):
        if name in entries:
            return entries[name]
    candidates = sorted(n for n in entries if n.endswith(".onnx"))
    if len(candidates) == 1:
        return entries[candidates[0]]
    if candidates:
        raise InvalidModel(
            f"the package has several ONNX files ({', '.join(candidates)}): keep one, named "
            "model.onnx"
        )
    raise InvalidModel("the package has no model.onnx")


def _pooling(entries: Mapping[str, bytes]) -> str | None:
    config = _json(entries, "1_Pooling/config.json")
    if not config:
        return None
    if config.get("pooling_mode_mean_tokens"):
        return "mean"
    if config.get("pooling_mode_cls_token"):
        return "cls"
    modes = sorted(k for k, v in config.items() if k.startswith("pooling_mode") and v)
    raise InvalidModel(
        f"1_Pooling/config.json asks for {', '.join(modes) or 'no pooling'}; maaskit pools by "
        "mean or CLS token: pass --pooling mean or --pooling cls"
    )


def _normalizes(entries: Mapping[str, bytes]) -> bool:
    if any(name.startswith("2_Normalize/") for name in entries):
        return True
    modules = entries.get("modules.json")
    if modules is None:
        return False
    try:
        listed = json.loads(modules)
    except ValueError:
        raise InvalidModel("modules.json is not valid JSON") from None
    return isinstance(listed, list) and any(
        isinstance(m, dict) and str(m.get("type", "")).endswith("Normalize") for m in listed
    )


def _labels(config: Mapping[str, Any]) -> tuple[str, ...] | None:
    id2label = config.get("id2label")
    if not isinstance(id2label, dict) or not id2label:
        return None
    try:
        ordered = sorted(id2label.items(), key=lambda item: int(item[0]))
    except ValueError:
        raise InvalidModel("config.json id2label keys must be class indices") from None
    return tuple(str(label) for _, label in ordered)


def _is_classifier(config: Mapping[str, Any]) -> bool:
    architectures = config.get("architectures") or []
    return any("Classification" in str(a) for a in architectures) or (
        "id2label" in config and config.get("problem_type") is not None
    )


def _max_length(entries: Mapping[str, bytes], config: Mapping[str, Any]) -> int:
    declared = _json(entries, "sentence_bert_config.json").get("max_seq_length")
    if not isinstance(declared, int) or declared <= 0:
        declared = _json(entries, "tokenizer_config.json").get("model_max_length")
    limit = config.get("max_position_embeddings")
    if not isinstance(declared, int | float) or not 0 < declared < _HUGE_MAX_LENGTH:
        declared = limit if isinstance(limit, int) and limit > 0 else DEFAULT_MAX_LENGTH
    if isinstance(limit, int) and limit > 0:
        declared = min(int(declared), limit)
    return int(declared)


def feeds_for(inputs: list[str]) -> dict[str, str]:
    """Roles fed by name: an export names its inputs input_ids, attention_mask, token_type_ids."""
    if "input_ids" not in inputs:
        raise InvalidModel(
            f"the model's inputs ({', '.join(map(repr, inputs))}) have no 'input_ids': a text "
            "package needs the token ids input named input_ids"
        )
    unknown = [name for name in inputs if name not in ROLES]
    if unknown:
        raise InvalidModel(
            f"the model takes {unknown[0]!r}, which a tokenizer does not produce (it makes "
            f"{', '.join(ROLES)})"
        )
    return {role: role for role in ROLES if role in inputs}


def build_package(
    entries: Mapping[str, bytes], options: TextOptions | None = None, *, source: str = ""
) -> Package:
    """A package from an export's files (relative POSIX paths), with ``options`` on top."""
    from maaskit.onnxmodel.graph import read_graph

    options = options or TextOptions()
    model = _model_entry(entries)
    tokenizer = options.tokenizer if options.tokenizer is not None else entries.get(TOKENIZER_FILE)
    if tokenizer is None:
        if options.pooling or options.normalize or options.labels:
            raise InvalidRequest(
                "text options need a tokenizer: add tokenizer.json to the folder, or pass "
                "--tokenizer tokenizer.json"
            )
        return Package(model=model, source=source)
    config = _json(entries, "config.json")
    text_input = {
        "kind": "text",
        "tokenizer": TOKENIZER_FILE,
        "max_length": options.max_length or _max_length(entries, config),
        "truncation": True,
        "padding": "longest",
        "feeds": feeds_for(read_graph(model).inputs),
    }
    pooling = options.pooling or _pooling(entries)
    labels = options.labels if options.labels is not None else _labels(config)
    output: dict[str, Any]
    if pooling is not None:
        normalize = options.normalize if options.normalize is not None else _normalizes(entries)
        output = {"kind": "embedding", "pooling": pooling, "normalize": normalize}
    elif labels is not None and (options.labels is not None or _is_classifier(config)):
        output = {"kind": "classification", "apply": "softmax", "labels": list(labels)}
    elif options.normalize:
        output = {"kind": "embedding", "pooling": "mean", "normalize": True}
    else:
        output = {"kind": "raw"}
    return Package(
        model=model,
        files={TOKENIZER_FILE: tokenizer},
        processing={"input": text_input, "output": output},
        source=source,
    )


# where packages come from -----------------------------------------------------------------


def read_folder(path: Path, options: TextOptions | None = None) -> Package:
    entries = {name: (path / name).read_bytes() for name in _WANTED if (path / name).is_file()}
    if (path / "2_Normalize").is_dir():
        entries["2_Normalize/"] = b""
    return build_package(entries, options, source=path.name)


def read_path(path: Path, options: TextOptions | None = None) -> Package:
    """A folder, an archive, or a bare ``.onnx`` file (its tokenizer from ``options``)."""
    if path.is_dir():
        return read_folder(path, options)
    if is_archive(path.name):
        return read_archive(path.read_bytes(), path.name, options=options)
    return build_package({"model.onnx": path.read_bytes()}, options, source=path.name)


def _member_name(raw: str, archive: str) -> str | None:
    """The member's path inside the package, or None for a folder; unsafe paths refused."""
    path = PurePosixPath(raw.replace("\\", "/"))
    if path.is_absolute() or ".." in path.parts or raw.startswith("/"):
        raise InvalidRequest(f"{archive} holds an unsafe path {raw!r}: members must stay inside it")
    parts = [p for p in path.parts if p not in ("", ".")]
    return "/".join(parts) if parts else None


def _strip_common_folder(entries: dict[str, bytes]) -> dict[str, bytes]:
    """An archive of a folder (``minilm/model.onnx``) reads as the folder itself."""
    tops = {name.split("/", 1)[0] for name in entries}
    if len(tops) == 1 and all("/" in name for name in entries):
        return {name.split("/", 1)[1]: data for name, data in entries.items()}
    return entries


def read_archive(
    data: bytes,
    name: str,
    *,
    options: TextOptions | None = None,
    max_bytes: int = 400 * 1024 * 1024,
) -> Package:
    """A ``.zip`` or ``.tar.gz`` package, read in memory; a damaged archive is refused.

    Only the files a package uses are extracted; their total size is bounded by
    ``max_bytes`` (read from the archive's own listing, before anything is inflated), and
    every member's checksum (zip CRC-32, gzip CRC) is checked as it is read.
    """
    lower = name.lower()
    try:
        if lower.endswith(".zip"):
            entries = _zip_entries(data, name, max_bytes)
        elif lower.endswith((".tar.gz", ".tgz")):
            entries = _tar_entries(data, name, max_bytes)
        else:
            raise InvalidRequest(f"{name}: packages are .zip or .tar.gz archives")
    except (zipfile.BadZipFile, tarfile.TarError, EOFError, OSError) as err:
        raise InvalidModel(
            f"{name} is not a readable archive (damaged, truncated or failing its checksum): {err}"
        ) from None
    return build_package(_strip_common_folder(entries), options, source=name)


def _zip_entries(data: bytes, name: str, max_bytes: int) -> dict[str, bytes]:
    entries: dict[str, bytes] = {}
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        members = []
        for member in archive.infolist():
            member_name = _member_name(member.filename, name)
            if member_name is None:
                continue
            if member.is_dir():
                _mark_folder(entries, member_name)
            elif _used(member_name):
                members.append((member, member_name))
        _check_size(name, sum(m.file_size for m, _ in members), max_bytes)
        for member, member_name in members:
            entries[member_name] = archive.read(member)  # raises on a bad CRC-32
    return entries


def _tar_entries(data: bytes, name: str, max_bytes: int) -> dict[str, bytes]:
    entries: dict[str, bytes] = {}
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as archive:
        members = []
        for member in archive.getmembers():
            member_name = _member_name(member.name, name)
            if member.issym() or member.islnk():
                raise InvalidRequest(f"{name} holds a link {member.name!r}: links are refused")
            if member_name is None:
                continue
            if member.isdir():
                _mark_folder(entries, member_name)
            elif member.isfile() and _used(member_name):
                members.append((member, member_name))
        _check_size(name, sum(m.size for m, _ in members), max_bytes)
        for member, member_name in members:
            extracted = archive.extractfile(member)
            if extracted is not None:
                entries[member_name] = extracted.read()
    return entries


def _mark_folder(entries: dict[str, bytes], member_name: str) -> None:
    """A folder that means something by being there (``2_Normalize``)."""
    if member_name.rsplit("/", 1)[-1] == "2_Normalize":
        entries[member_name + "/"] = b""


def _used(member_name: str) -> bool:
    tail = member_name.split("/", 1)[1] if member_name.count("/") >= 1 else member_name
    return (
        member_name.endswith(".onnx")
        or member_name in _WANTED
        or tail in _WANTED
        or "2_Normalize" in member_name
    )


def _check_size(name: str, total: int, limit: int) -> None:
    if total > limit:
        raise PayloadTooLarge(
            f"{name} unpacks to {total} bytes; the limit is {limit} (MAASKIT_MAX_MODEL_MB)"
        )
