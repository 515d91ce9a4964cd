"""User-facing errors.

Anything a user can cause (bad data, a bad option, a wrong checkpoint) raises :class:`LagaugError`
with a single line that names the file or option and says what to do. The CLI prints that line and
exits non-zero; tracebacks are reserved for our own bugs.
"""

from __future__ import annotations


class LagaugError(Exception):
    """A problem with the user's input, reported as one clear line."""


class DataError(LagaugError):
    """The data (a folder, an image, an .npz file) cannot be used as given."""


class ConfigError(LagaugError):
    """An option, a ``--set`` key or a configuration value is invalid."""


class CheckpointError(LagaugError):
    """A saved generator or a foreign checkpoint cannot be loaded."""


class PluginError(LagaugError):
    """A plugin is missing, broken, or registers a conflicting method."""


class PluginWarning(UserWarning):
    """A plugin misbehaved (e.g. a logger hook raised); the run went on."""
