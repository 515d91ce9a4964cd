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


class WriteError(LagaugError, OSError):
    """A file could not be written (disk full, no permission, a folder in its way): an ``OSError``
    (``errno``, ``strerror``) whose ``filename`` is the file meant, never a temporary name."""

    def __str__(self) -> str:
        return f"{self.filename}: cannot write ({self.strerror})"


class PluginWarning(UserWarning):
    """A plugin misbehaved (e.g. a logger hook raised); the run went on."""
