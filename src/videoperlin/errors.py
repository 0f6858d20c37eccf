"""Exception types shared across the package.

Every error a user can cause (bad value, missing file, mismatched checkpoint) is raised as a
:class:`VideoperlinError` whose message names the value or file at fault and says what to do.
The CLI prints such errors as one line and exits non-zero, without a traceback.
"""

from __future__ import annotations


class VideoperlinError(ValueError):
    """A user-facing error: the message is complete on its own and fits on one line."""


class ConfigError(VideoperlinError):
    """A configuration value (CLI flag, YAML field, constructor argument) is invalid."""


class NumericsError(VideoperlinError):
    """A computation came out wrong: a kernel that fails its check, or a training run whose weights or
    statistics are no longer finite."""
