"""Errors a user can cause. Each message names the input and says what to do; the CLI and server show it as is."""

from __future__ import annotations


class ViscoverError(Exception):
    """Base of every error caused by input (a file, a row, an id, a request), not by a bug."""


class ConfigError(ViscoverError):
    """A setting or option has an unusable value."""


class NotFoundError(ViscoverError):
    """An item, board, model or index that was asked for does not exist."""


class BadImageError(ViscoverError):
    """An image cannot be read, decoded or is refused (too large, not an image)."""


class BadManifestError(ViscoverError):
    """A manifest file or one of its rows cannot be used."""


class BadRequestError(ViscoverError):
    """A query parameter is malformed, e.g. a crop box outside the image."""


class ModelError(ViscoverError):
    """An embedding model cannot be found, exported or loaded."""


class UnavailableError(ViscoverError):
    """An optional feature that is not set up here, e.g. object detection without a detector model."""
