"""User-facing errors: the CLI prints their message and exits non-zero, without a traceback."""

from __future__ import annotations


class GateboxError(Exception):
    """A problem the operator can fix (bad config, unreadable input, missing model)."""


class ConfigError(GateboxError):
    """The configuration file is missing, unreadable or invalid."""


class ModelError(GateboxError):
    """A model file is missing or does not match its manifest checksum."""


class InputError(GateboxError):
    """An input file (video, photo) cannot be used."""
