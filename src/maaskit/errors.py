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


class IntegrityError(MaaskitError):
    """A stored artifact does not match its manifest: never served, never cached."""

    http_status = 500


class SettingsError(MaaskitError):
    """The environment does not describe a working deployment."""
