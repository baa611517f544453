"""Errors that carry their meaning to the edges.

Each error knows the HTTP status it stands for, so every adapter (API, batch report,
CLI) shows the same message for the same mistake without re-classifying exceptions.
"""

from __future__ import annotations


class MaaskitError(Exception):
    """Base class: ``str(err)`` is a message a person can act on."""

    http_status = 500

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidRequest(MaaskitError):
    """The caller sent something we cannot use (shape, type, name, JSON)."""

    http_status = 400


class InvalidName(InvalidRequest):
    """A model name, alias or key segment outside the allowed alphabet."""


class InvalidModel(InvalidRequest):
    """A file that is not a loadable ONNX model, or one we refuse to serve."""


class NotFound(MaaskitError):
    """A model, version, alias or object that does not exist."""

    http_status = 404


class AlreadyExists(MaaskitError):
    """A conditional write lost the race: the key is already taken."""

    http_status = 409


class PayloadTooLarge(MaaskitError):
    """A request or upload over the configured limit."""

    http_status = 413


class UnsupportedMediaType(MaaskitError):
    """A body in a content type or encoding the API does not read."""

    http_status = 415


class StoredObjectError(MaaskitError):
    """Something in the bucket is not what it should be: not the caller's fault, nor a bug.

    Answered as 502 (the store behind us gave a bad answer), so an alarm on 5xx still sees
    it, and told apart from a bug's 500 by its message and its error type in the logs.
    """

    http_status = 502


class CorruptObject(StoredObjectError):
    """An object that cannot be read as what its key says (not UTF-8, not JSON, wrong shape)."""


class UnreadableObject(StoredObjectError):
    """An object S3 will not hand us (access denied, archived, a key we cannot decrypt)."""


class StoreUnavailable(MaaskitError):
    """S3 kept failing (throttling, 5xx, dropped connections) after the configured retries."""

    http_status = 503


class ObjectChanged(StoreUnavailable):
    """An object was replaced while it was being read: read it again."""


class IntegrityError(StoredObjectError):
    """A stored artifact does not match its manifest: never served, never cached (502)."""


class SettingsError(MaaskitError):
    """The environment does not describe a working deployment."""
