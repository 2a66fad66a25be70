"""Errors the CLI reports as one line (exit code 2) instead of a traceback.

Kept free of MLflow so every command, and the baked image that ships without the MLflow
client, can import them.
"""

from __future__ import annotations


class RegistryError(RuntimeError):
    """A registry operation was refused; the message says why and what to do."""


class ModelNotFound(RegistryError):
    """The registry answered: the model, version or alias does not exist."""


class RegistryUnavailable(RegistryError):
    """The registry could not be asked: unreachable, timed out, or it refused the credentials."""
